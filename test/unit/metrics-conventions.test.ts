// The metrics as operators meet them: htntp_up follows the last sample's age; the table in
// docs/service.md, the metrics ServiceMetrics registers and the Grafana dashboard's queries
// name the same series; names keep the Prometheus conventions.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { ServiceMetrics } from '../../src/metrics.js';
import { STALE_SAMPLE_SECONDS } from '../../src/sample.js';
import type { Timespec } from '../../src/time.js';
import { repoRoot } from '../helpers/process.js';

function metricsAt(now: { time: Timespec }): ServiceMetrics {
  const clock: Clock = { realtime: () => now.time, monotonicRaw: () => ({ sec: 0, nsec: 0 }) };
  return new ServiceMetrics({ unit: 2, source: 'fixed', clock, processMetrics: false });
}

async function value(metrics: ServiceMetrics, name: string): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  return metric?.values[0]?.value;
}

/** Every htntp_* series a feeder can expose, each path exercised once. */
async function registeredNames(): Promise<Set<string>> {
  const now = { time: { sec: 1001, nsec: 0 } };
  const metrics = metricsAt(now);
  metrics.published({ clockTime: { sec: 1000, nsec: 0 }, receiveTime: { sec: 1000, nsec: 0 }, precision: -10 }, 0);
  metrics.reattached();
  metrics.sinkResult('shm:2', true);
  metrics.server('https://example.org/', { status: 'ok', rtt: 0.02, offset: 0.001 });
  metrics.fix({ valid: true, consecutive: 3, satellites: 7 });
  return new Set(
    (await metrics.registry.getMetricsAsJSON()).map((entry) => entry.name).filter((name) => name.startsWith('htntp_')),
  );
}

describe('htntp_up', () => {
  it(`is 0 before the first sample, 1 while the last is at most ${STALE_SAMPLE_SECONDS} s old, 0 after`, async () => {
    const now = { time: { sec: 1000, nsec: 0 } };
    const metrics = metricsAt(now);
    expect(await value(metrics, 'htntp_up')).toBe(0);
    metrics.published({ clockTime: { sec: 999, nsec: 0 }, receiveTime: { sec: 1000, nsec: 0 }, precision: -10 }, 0);
    now.time = { sec: 1000 + STALE_SAMPLE_SECONDS, nsec: 0 };
    expect(await value(metrics, 'htntp_up')).toBe(1);
    now.time = { sec: 1000 + STALE_SAMPLE_SECONDS, nsec: 1 };
    expect(await value(metrics, 'htntp_up')).toBe(0);
  });
});

describe('one list of metrics', () => {
  it('the docs table names exactly the registered htntp_* metrics', async () => {
    const docs = readFileSync(join(repoRoot, 'docs', 'service.md'), 'utf8');
    const documented = new Set([...docs.matchAll(/^\| `(htntp_[a-z_]+)/gm)].map((match) => match[1] ?? ''));
    expect([...documented].sort()).toEqual([...(await registeredNames())].sort());
  });

  it('every series the Grafana dashboard queries is registered', async () => {
    const dashboard = readFileSync(join(repoRoot, 'contrib', 'grafana', 'htntp-dashboard.json'), 'utf8');
    JSON.parse(dashboard); // valid JSON
    const queried = new Set([...dashboard.matchAll(/htntp_[a-z_]+/g)].map((match) => match[0]));
    const registered = await registeredNames();
    for (const name of queried) expect(registered, name).toContain(name);
    // The panels the operators asked for are there.
    for (const name of [
      'htntp_offset_seconds',
      'htntp_error_bound_seconds',
      'htntp_sample_age_seconds',
      'htntp_http_server_status',
      'htntp_gps_fix',
      'htntp_up',
    ]) {
      expect(queried, name).toContain(name);
    }
  });

  it('names keep the conventions: counters end in _total, durations in _seconds', async () => {
    // Counters are all registered up front; the lazily made series are gauges.
    const types = new Map(
      (await metricsAt({ time: { sec: 0, nsec: 0 } }).registry.getMetricsAsJSON()).map((entry) => [
        entry.name,
        String(entry.type),
      ]),
    );
    for (const name of await registeredNames()) {
      if (types.get(name) === 'counter') expect(name).toMatch(/_total$/);
      expect(name).not.toMatch(/_(ms|milliseconds|us|ns)$/);
    }
  });
});
