// Every HTTP server down: the feeder publishes nothing once the last estimate has aged
// out (2 x interval), and publishes again when the servers come back at their addresses.
// Real feeder, real segment, real servers on 127.0.0.1.
import { afterAll, describe, expect, it } from 'vitest';
import { monotonicRaw } from '../../../src/clock.js';
import { feed } from '../../../src/feeder.js';
import type { MeasurementResult } from '../../../src/sources/http/measure.js';
import { HttpSource } from '../../../src/sources/http/source.js';
import type { Sample } from '../../../src/sample.js';
import { diffSeconds, type Timespec } from '../../../src/time.js';
import { exclusiveSegment } from '../../helpers/exclusive.js';
import { readSegment, removeSegment } from '../../helpers/segments.js';
import { waitFor } from '../../helpers/wait.js';
import { closeAll, startTimeServer, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';
import { units } from '../../helpers/units.js';

const UNIT = units.httpOutage;
const OFFSET = 0.5;
const INTERVAL = 1; // seconds between measurements: the estimate lives 2 s

interface Published {
  at: Timespec;
  offset: number;
  /** the sample's own error bound, 2^precision */
  bound: number;
}

/** The servers' offset lies within the error bound the sample was published with. */
function expectWithinBound(samples: readonly Published[]): void {
  for (const { offset, bound } of samples) expect(Math.abs(offset - OFFSET)).toBeLessThanOrEqual(bound);
}

describe('all HTTP servers down, then back', () => {
  let servers: TimeServer[] = [];
  afterAll(async () => {
    await closeAll(servers);
    removeSegment(UNIT);
  });

  it(
    'publishes nothing once the estimate is older than 2 x interval, and resumes when the servers return',
    { timeout: 60_000 },
    async () => {
      (await exclusiveSegment(UNIT)).detach();
      servers = await startTimeServers([{ offset: OFFSET }, { offset: OFFSET }, { offset: OFFSET }]);
      const ports = servers.map((server) => server.port);

      const published: Published[] = [];
      const measurements: { at: Timespec; result: MeasurementResult }[] = [];
      const source = new HttpSource({
        servers: servers.map((server) => server.url),
        interval: INTERVAL,
        probes: 3,
        timeout: 3,
        onMeasurement: (result) => measurements.push({ at: monotonicRaw(), result }),
      });
      const stop = new AbortController();
      const running = feed(source, {
        unit: UNIT,
        signal: stop.signal,
        onSample: (sample: Sample) =>
          published.push({
            at: monotonicRaw(),
            offset: diffSeconds(sample.clockTime, sample.receiveTime),
            bound: 2 ** sample.precision,
          }),
      });
      try {
        // Up: samples with the servers' offset.
        await waitFor(() => (published.length >= 2 ? true : undefined), {
          what: 'two samples while the servers are up',
          timeoutMs: 15_000,
        });
        expectWithinBound(published);

        // Down: wait for three failed measurements after the outage began.
        await closeAll(servers);
        const outage = monotonicRaw();
        const failedSince = (since: Timespec): number =>
          measurements.filter(({ at, result }) => result.offset === null && diffSeconds(at, since) > 0).length;
        await waitFor(() => (failedSince(outage) >= 3 ? true : undefined), {
          what: 'three failed measurements',
          timeoutMs: 20_000,
        });
        const lastGood = measurements.filter(({ result }) => result.offset !== null).at(-1);
        expect(lastGood).toBeDefined();
        const expiry = 2 * INTERVAL;
        // Every sample came from an estimate at most 2 x interval old (plus the publishing tick's slack).
        const lateSamples = published.filter(({ at }) => diffSeconds(at, lastGood!.at) > expiry + 0.1);
        expect(lateSamples).toEqual([]);
        // And the segment saw nothing after them: count stands still across a further failed measurement.
        const countDuringOutage = readSegment(UNIT)?.count;
        const failedSoFar = failedSince(outage);
        await waitFor(() => (failedSince(outage) > failedSoFar ? true : undefined), {
          what: 'one more failed measurement',
          timeoutMs: 20_000,
        });
        expect(readSegment(UNIT)?.count).toBe(countDuringOutage);
        const silentFrom = published.length;

        // Back at the same addresses: samples again, with the right offset.
        servers = await Promise.all(ports.map((port) => startTimeServer({ offset: OFFSET, port })));
        const back = monotonicRaw();
        await waitFor(() => (published.length > silentFrom ? true : undefined), {
          what: 'a sample after the servers returned',
          timeoutMs: 20_000,
        });
        const resumed = published.slice(silentFrom);
        expect(diffSeconds(resumed[0]!.at, back)).toBeGreaterThan(0);
        expectWithinBound(resumed);
        expect(readSegment(UNIT)?.count).toBeGreaterThan(countDuringOutage ?? Infinity);
      } finally {
        stop.abort();
        await running;
      }
    },
  );
});
