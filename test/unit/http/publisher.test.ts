// The publisher holds an estimate on CLOCK_MONOTONIC_RAW: whatever the realtime clock
// does afterwards (steps, slews), clock - receive follows it.
import { afterAll, describe, expect, it } from 'vitest';
import { readClockPair, type Clock } from '../../../src/clock.js';
import type { Estimate } from '../../../src/sources/http/measure.js';
import { DRIFT_PPM, HttpSource, precisionOf, sampleAt } from '../../../src/sources/http/source.js';
import { addSeconds, diffSeconds, fromSeconds, type Timespec } from '../../../src/time.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';

/** Raw advances only when told; realtime = raw + epoch + `realtimeError`, which the test steps and slews. */
class FakeClockPair implements Clock {
  raw: Timespec = { sec: 5_000, nsec: 0 };
  realtimeError = 0;
  readonly epoch = 1_795_000_000;
  monotonicRaw(): Timespec {
    return this.raw;
  }
  realtime(): Timespec {
    return addSeconds(addSeconds(this.raw, this.epoch), this.realtimeError);
  }
  advance(seconds: number): void {
    this.raw = addSeconds(this.raw, seconds);
  }
}

describe('publishing an estimate', () => {
  const TRUE_OFFSET = 0.25; // true time - realtime when the estimate is made
  const INTERVAL = 64;

  it('follows the realtime clock through steps and slews, and ages out', () => {
    const clock = new FakeClockPair();
    const at = readClockPair(clock);
    const estimate: Estimate = {
      monotonicRaw: at.monotonicRaw,
      trueTime: addSeconds(at.realtime, TRUE_OFFSET),
      error: 0.001,
      low: -0.001,
      high: 0.001,
    };
    const source = new HttpSource({ servers: ['http://127.0.0.1:1/'], interval: INTERVAL, clock });
    source.hold(estimate);
    const offsets: { expected: number; published: number; precision: number }[] = [];
    for (let second = 1; second <= 2 * INTERVAL; second += 1) {
      clock.advance(1);
      if (second === 10) clock.realtimeError += 1; // ntpd steps the clock 1 s ahead
      if (second > 20 && second <= 60) clock.realtimeError -= 0.0005; // then slews 500 ppm back
      const sample = source.sample();
      if (!sample) throw new Error(`no sample at ${second} s`);
      offsets.push({
        expected: TRUE_OFFSET - clock.realtimeError,
        published: diffSeconds(sample.clockTime, sample.receiveTime),
        precision: sample.precision,
      });
    }
    for (const { expected, published } of offsets) expect(published).toBeCloseTo(expected, 7);
    expect(offsets[8]?.published).toBeCloseTo(0.25, 8);
    expect(offsets[9]?.published).toBeCloseTo(-0.75, 8);
    expect(offsets[59]?.published).toBeCloseTo(-0.75 + 0.02, 8);
    // 1 ms at age 0 (2^-10 < 0.001 <= 2^-9); 50 ppm x 128 s more makes 7.4 ms.
    expect(offsets[0]?.precision).toBe(-9);
    expect(offsets.at(-1)?.precision).toBe(precisionOf(0.001 + 2 * INTERVAL * DRIFT_PPM * 1e-6));
    expect(offsets.at(-1)?.precision).toBe(-7);
    clock.advance(1);
    expect(source.sample()).toBeUndefined(); // older than 2 x interval
  });

  it('never publishes from before its estimate', () => {
    const clock = new FakeClockPair();
    const estimate: Estimate = {
      monotonicRaw: addSeconds(clock.raw, 5),
      trueTime: fromSeconds(1_795_000_000),
      error: 0.01,
      low: -0.01,
      high: 0.01,
    };
    expect(sampleAt(estimate, readClockPair(clock), 100)).toBeUndefined();
    expect(precisionOf(0)).toBe(-30);
    expect(precisionOf(0.5)).toBe(-1);
    expect(precisionOf(0.6)).toBe(0);
  });
});

describe('HttpSource', () => {
  let servers: TimeServer[] = [];
  afterAll(async () => {
    await closeAll(servers);
  });

  it('yields the measured offset about once a second; with once, ends when the estimate expires', async () => {
    servers = await startTimeServers([{ offset: 1.375 }, { offset: 1.375 }, { offset: 1.375 }]);
    const results: (number | null)[] = [];
    const source = new HttpSource({
      servers: servers.map((server) => server.url),
      interval: 1.5,
      once: true,
      probes: 3,
      onMeasurement: (result) => results.push(result.offset),
    });
    const received: { offset: number; at: number }[] = [];
    const signal = AbortSignal.timeout(20_000);
    for await (const sample of source.samples(signal)) {
      received.push({ offset: diffSeconds(sample.clockTime, sample.receiveTime), at: performance.now() });
    }
    expect(signal.aborted).toBe(false); // the source ended by itself, not by the timeout
    expect(results).toHaveLength(1);
    // 3 s of life (2 x interval) at 1 Hz: 3 or 4 samples, depending on the phase (2 on a
    // machine so busy that a whole second's turn comes late).
    expect(received.length).toBeGreaterThanOrEqual(2);
    expect(received.length).toBeLessThanOrEqual(4);
    for (const { offset } of received) expect(Math.abs(offset - 1.375)).toBeLessThan(0.15);
    const gaps = received.slice(1).map((sample, index) => sample.at - (received[index]?.at ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThan(500);
  });

  it('ends without a sample when no estimate can be made', async () => {
    const source = new HttpSource({ servers: ['http://127.0.0.1:1/'], interval: 5, once: true, probes: 1 });
    const received = [];
    const signal = AbortSignal.timeout(10_000);
    for await (const sample of source.samples(signal)) received.push(sample);
    expect(signal.aborted).toBe(false); // the source ended by itself, not by the timeout
    expect(received).toEqual([]);
  });
});
