// Per-sink counters: samples sent and errors for each sink, labelled shm:UNIT / sock:PATH;
// a socket-only feeder's metrics carry no unit label.
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { feed } from '../../src/feeder.js';
import { ServiceMetrics } from '../../src/metrics.js';
import { realtime } from '../../src/clock.js';
import { addSeconds } from '../../src/time.js';
import type { Sample, SampleSource } from '../../src/sample.js';
import { removeSegment } from '../helpers/segments.js';
import { memoryLogger } from '../helpers/log-capture.js';
import { units } from '../helpers/units.js';

/** Units 241-246 are the SOCK tests'. */
const UNIT = units.sinkMetrics;
afterAll(() => removeSegment(UNIT));

function list(count: number): SampleSource {
  return {
    name: 'list',
    async *samples() {
      for (let i = 0; i < count; i += 1) {
        const receiveTime = realtime();
        yield { clockTime: addSeconds(receiveTime, -1), receiveTime, precision: -10 } satisfies Sample;
      }
    },
  };
}

describe('sink metrics', () => {
  it('counts each sink apart: the segment takes every sample, a socket with no reader none', async () => {
    const path = join(tmpdir(), `htntp-no-reader-${process.pid}.sock`);
    const metrics = new ServiceMetrics({ unit: UNIT, processMetrics: false });
    const log = memoryLogger();
    const result = await feed(list(4), {
      unit: UNIT,
      sockets: [path],
      signal: new AbortController().signal,
      metrics,
      logger: log.logger,
    });
    expect(result.published).toBe(4);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`htntp_sink_samples_sent_total{sink="shm:${UNIT}",unit="${UNIT}"} 4`);
    expect(text).toContain(`htntp_sink_errors_total{sink="shm:${UNIT}",unit="${UNIT}"} 0`);
    expect(text).toContain(`htntp_sink_samples_sent_total{sink="sock:${path}",unit="${UNIT}"} 0`);
    expect(text).toContain(`htntp_sink_errors_total{sink="sock:${path}",unit="${UNIT}"} 4`);
    expect(text).toContain(`htntp_samples_published_total{unit="${UNIT}"} 4`);
    // One warning for the missing socket, not one per sample.
    expect(log.events().filter((event) => event === 'warn socket unavailable')).toHaveLength(1);
  });

  it('a feeder without a unit has no unit label', async () => {
    const metrics = new ServiceMetrics({ processMetrics: false });
    metrics.sinkResult('sock:/run/x.sock', undefined);
    metrics.sinkResult('sock:/run/x.sock', false);
    const text = await metrics.registry.metrics();
    expect(text).toContain('htntp_sink_errors_total{sink="sock:/run/x.sock"} 1');
    expect(text).not.toContain('unit=');
  });
});
