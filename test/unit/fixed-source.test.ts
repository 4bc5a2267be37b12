// The fixed-offset source with a fake clock: exact offsets, a schedule held on the raw
// monotonic clock (no drift, no burst after a stall, no drag when realtime steps), --once,
// prompt abort, and refused options.
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import type { Sample } from '../../src/sample.js';
import { FixedSource, type FixedSourceOptions } from '../../src/sources/fixed/source.js';
import { addSeconds, diffSeconds, type Timespec } from '../../src/time.js';

/** Realtime and raw clocks that only move when told; sleep() moves both (plus `lateMs`). */
function fakeClock(start: Timespec = { sec: 1_800_000_000, nsec: 123_456_789 }) {
  let realtime = start;
  let raw: Timespec = { sec: 5_000, nsec: 0 };
  const clock: Clock = { realtime: () => realtime, monotonicRaw: () => raw };
  const advance = (seconds: number): void => {
    realtime = addSeconds(realtime, seconds);
    raw = addSeconds(raw, seconds);
  };
  return {
    clock,
    advance,
    stepRealtime: (seconds: number) => {
      realtime = addSeconds(realtime, seconds);
    },
    raw: () => raw,
    /** A sleep that wakes `lateMs` after the time asked for, like a busy event loop. */
    sleeper:
      (lateMs: number, sleeps: number[] = []) =>
      async (ms: number) => {
        sleeps.push(ms);
        advance((ms + lateMs) / 1000);
      },
  };
}

async function take(
  source: FixedSource,
  count: number,
  onSample?: (sample: Sample, index: number) => void,
): Promise<Sample[]> {
  const controller = new AbortController();
  const samples: Sample[] = [];
  for await (const sample of source.samples(controller.signal)) {
    onSample?.(sample, samples.length);
    samples.push(sample);
    if (samples.length === count) controller.abort();
  }
  return samples;
}

describe('FixedSource', () => {
  it('clock = realtime + offset, receive = the same realtime reading, exactly', async () => {
    const fake = fakeClock();
    const source = new FixedSource({ offset: -1.25, precision: -12, clock: fake.clock, sleep: fake.sleeper(0) });
    const samples = await take(source, 3);
    expect(samples).toHaveLength(3);
    samples.forEach((sample, index) => {
      expect(sample.receiveTime).toEqual(addSeconds({ sec: 1_800_000_000, nsec: 123_456_789 }, index));
      expect(diffSeconds(sample.clockTime, sample.receiveTime)).toBe(-1.25);
      expect(sample.precision).toBe(-12);
      expect(sample.leap).toBe(0);
    });
  });

  it('holds the schedule on the raw clock: late wake-ups do not accumulate', async () => {
    const fake = fakeClock();
    const start = fake.raw();
    const sleeps: number[] = [];
    const source = new FixedSource({ offset: 1, interval: 0.5, clock: fake.clock, sleep: fake.sleeper(7, sleeps) });
    const raws: Timespec[] = [];
    await take(source, 101, () => raws.push(fake.raw()));
    // Sample n comes 7 ms after its due time start + n * 0.5 s, never 7 ms x n late.
    raws.forEach((raw, n) => {
      if (n === 0) expect(diffSeconds(raw, start)).toBe(0);
      else expect(diffSeconds(raw, start)).toBeCloseTo(n * 0.5 + 0.007, 9);
    });
    // Every wait after the first is shortened by the 7 ms the previous one overslept.
    expect(sleeps[0]).toBeCloseTo(500, 6);
    expect(sleeps[1]).toBeCloseTo(493, 6);
  });

  it('after a stall it skips the ticks it missed instead of firing a burst', async () => {
    const fake = fakeClock();
    const start = fake.raw();
    const source = new FixedSource({ offset: 0, interval: 1, clock: fake.clock, sleep: fake.sleeper(0) });
    const raws: number[] = [];
    await take(source, 4, (_sample, index) => {
      raws.push(diffSeconds(fake.raw(), start));
      if (index === 1) fake.advance(3.4); // the process was stopped for 3.4 s after sample 1
    });
    expect(raws).toEqual([0, 1, 5, 6]);
  });

  it('a realtime step moves the samples, not the schedule', async () => {
    const fake = fakeClock();
    const start = fake.raw();
    const source = new FixedSource({ offset: -1, interval: 1, clock: fake.clock, sleep: fake.sleeper(0) });
    const seen: { raw: number; receive: Timespec }[] = [];
    await take(source, 3, (sample, index) => {
      seen.push({ raw: diffSeconds(fake.raw(), start), receive: sample.receiveTime });
      if (index === 0) fake.stepRealtime(-30); // ntpd steps the clock back
    });
    expect(seen.map((entry) => entry.raw)).toEqual([0, 1, 2]);
    expect(diffSeconds(seen[1]!.receive, seen[0]!.receive)).toBeCloseTo(1 - 30, 9);
  });

  it('once: exactly one sample, then the source ends by itself', async () => {
    const fake = fakeClock();
    const sleeps: number[] = [];
    const source = new FixedSource({ offset: -1, once: true, clock: fake.clock, sleep: fake.sleeper(0, sleeps) });
    const samples: Sample[] = [];
    for await (const sample of source.samples(new AbortController().signal)) samples.push(sample);
    expect(samples).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('stops promptly on abort while waiting (real timers, 60 s interval)', async () => {
    const source = new FixedSource({ offset: -1, interval: 60 });
    const controller = new AbortController();
    const started = performance.now();
    const samples: Sample[] = [];
    const run = (async () => {
      for await (const sample of source.samples(controller.signal)) samples.push(sample);
    })();
    setTimeout(() => controller.abort(), 50);
    await run;
    expect(samples).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it.each<[string, Partial<FixedSourceOptions>, ErrorConstructor]>([
    ['offset NaN', { offset: Number.NaN }, RangeError],
    ['offset Infinity', { offset: Number.POSITIVE_INFINITY }, RangeError],
    ['offset as a string', { offset: '-1' as unknown as number }, TypeError],
    ['offset beyond 1e6 s', { offset: -2e6 }, RangeError],
    ['interval 0', { interval: 0 }, RangeError],
    ['interval negative', { interval: -1 }, RangeError],
    ['precision -10.5', { precision: -10.5 }, RangeError],
    ['precision 1', { precision: 1 }, RangeError],
  ])('refuses %s', (_name, bad, errorType) => {
    expect(() => new FixedSource({ offset: -1, ...bad })).toThrow(errorType);
  });
});
