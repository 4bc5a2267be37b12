// The Prometheus endpoint: scraped over HTTP on 127.0.0.1 while the feeder
// publishes; what sources report through SourceMetrics; the address parser.
import { afterEach, describe, expect, it } from 'vitest';
import { feed } from '../../../src/feeder.js';
import { ServiceMetrics, parseMetricsAddress, serveMetrics, type MetricsServer } from '../../../src/metrics.js';
import type { Clock } from '../../../src/clock.js';
import type { Sample, SampleSource } from '../../../src/sample.js';
import { removeSegment } from '../../helpers/segments.js';
import { units } from '../../helpers/units.js';

const UNIT = units.metrics;
let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  removeSegment(UNIT);
});

/** name{labels} -> value, from the text exposition format. */
function parseExposition(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    values.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return values;
}

async function scrape(
  url: string,
): Promise<{ status: number; type: string | null; values: Map<string, number>; text: string }> {
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type'), values: parseExposition(text), text };
}

describe('ServiceMetrics over HTTP', () => {
  it('exposes what the feeder published and what the source reported, credentials removed', async () => {
    // receive times are 1000.0, 1001.0, 1002.0; the fake clock says 1004.25 at the scrape
    const clock: Clock = {
      realtime: () => ({ sec: 1004, nsec: 250_000_000 }),
      monotonicRaw: () => ({ sec: 0, nsec: 0 }),
    };
    const metrics = new ServiceMetrics({ unit: UNIT, clock, processMetrics: false });
    server = await serveMetrics(metrics.registry, { host: '127.0.0.1', port: 0 });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);

    const empty = await scrape(server.url);
    expect(empty.values.get(`htntp_samples_published_total{unit="${UNIT}"}`)).toBe(0);
    expect(empty.text).not.toMatch(/^htntp_offset_seconds/m);
    expect(empty.text).not.toMatch(/^htntp_sample_age_seconds/m);
    expect(empty.text).not.toMatch(/^htntp_gps_fix/m);

    const samples: Sample[] = [0, 1, 2].map((index) => ({
      clockTime: { sec: 1000 + index, nsec: 500_000_000 },
      receiveTime: { sec: 1000 + index, nsec: 0 },
      precision: -10,
    }));
    const source: SampleSource = {
      name: 'list',
      async *samples() {
        yield* samples;
      },
    };
    metrics.setSource(source.name);
    await feed(source, { unit: UNIT, signal: new AbortController().signal, metrics });
    metrics.server('https://alice:secret@www.example.com/', { status: 'ok', rtt: 0.0125, offset: 0.5 });
    metrics.server('https://down.example/', { status: 'failed' });
    metrics.fix({ valid: true, consecutive: 4, satellites: 9 });

    const { status, type, values, text } = await scrape(server.url);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const get = (name: string, labels = ''): number | undefined =>
      values.get(`${name}{${labels}${labels ? ',' : ''}unit="${UNIT}"}`);
    expect(get('htntp_info', 'source="list"')).toBe(1);
    expect(get('htntp_samples_published_total')).toBe(3);
    expect(get('htntp_offset_seconds')).toBe(0.5);
    expect(get('htntp_error_bound_seconds')).toBe(2 ** -10);
    expect(get('htntp_leap_indicator')).toBe(0);
    expect(get('htntp_last_sample_timestamp_seconds')).toBe(1002);
    expect(get('htntp_sample_age_seconds')).toBe(2.25);
    expect(get('htntp_segment_reattaches_total')).toBe(0);
    expect(get('htntp_http_server_status', 'server="https://***@www.example.com/",status="ok"')).toBe(1);
    expect(get('htntp_http_server_status', 'server="https://***@www.example.com/",status="failed"')).toBe(0);
    expect(get('htntp_http_server_rtt_seconds', 'server="https://***@www.example.com/"')).toBe(0.0125);
    expect(get('htntp_http_server_status', 'server="https://down.example/",status="failed"')).toBe(1);
    expect(get('htntp_http_server_rtt_seconds', 'server="https://down.example/"')).toBeUndefined();
    expect(get('htntp_gps_fix')).toBe(1);
    expect(get('htntp_gps_satellites')).toBe(9);
    expect(text).not.toContain('secret');

    expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
  });

  it('refuses an address that is taken', async () => {
    const metrics = new ServiceMetrics({ unit: UNIT, processMetrics: false });
    server = await serveMetrics(metrics.registry, { host: '127.0.0.1', port: 0 });
    await expect(serveMetrics(metrics.registry, { host: '127.0.0.1', port: server.port })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  });
});

describe('parseMetricsAddress', () => {
  it('takes [host:]port, loopback by default', () => {
    expect(parseMetricsAddress('9815')).toEqual({ host: '127.0.0.1', port: 9815 });
    expect(parseMetricsAddress(':9900')).toEqual({ host: '127.0.0.1', port: 9900 });
    expect(parseMetricsAddress('0.0.0.0:9815')).toEqual({ host: '0.0.0.0', port: 9815 });
    expect(parseMetricsAddress('[::1]:9815')).toEqual({ host: '::1', port: 9815 });
    for (const bad of ['', 'localhost', '127.0.0.1:99999', '::1:9815', '127.0.0.1:-1']) {
      expect(() => parseMetricsAddress(bad)).toThrow(TypeError);
    }
  });
});
