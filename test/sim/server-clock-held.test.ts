// The arithmetic under ServerClock, on a simulated clock: intervals held on the raw clock
// (carried with drift, as priors across a realtime step) and a provider round's timed calls.
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { carry, carryPriors, driftWidening } from '../../src/sources/http/carry-forward.js';
import { callProvider, providerRound } from '../../src/server-clock/provider.js';
import { addSeconds, type Timespec } from '../../src/time.js';

const at = (seconds: number): Timespec => addSeconds({ sec: 1000, nsec: 0 }, seconds);

/** A clock whose realtime and raw advance only when told; the provider moves it by `callSeconds`. */
function simClock(startRealtime = 1_800_000_000): Clock & { advance(seconds: number): void } {
  let elapsed = 0;
  return {
    realtime: () => addSeconds({ sec: startRealtime, nsec: 0 }, elapsed),
    monotonicRaw: () => at(elapsed),
    advance(seconds: number) {
      elapsed += seconds;
    },
  };
}

describe('held intervals', () => {
  it('carry widens both ends by drift x raw seconds, either way in time', () => {
    const held = { low: 0.1, high: 0.2, at: at(0) };
    const later = carry(held, at(1000), 50);
    expect(later.low).toBeCloseTo(0.05, 12);
    expect(later.high).toBeCloseTo(0.25, 12);
    expect(later.at).toEqual(at(1000));
    expect(carry(held, at(-1000), 50).low).toBeCloseTo(0.05, 12);
    expect(carry(held, at(1000)).high).toBeCloseTo(0.2 + driftWidening(1000), 12);
  });

  it('priors carried to a later clock pair shift with a realtime step and widen with the raw seconds', () => {
    const pair = (raw: number, real: number) => ({
      monotonicRaw: at(raw),
      realtime: addSeconds({ sec: 1_800_000_000, nsec: 0 }, real),
    });
    const priors = { intervals: [{ low: 0.1, high: 0.2 }, undefined], at: pair(0, 0) };
    // 100 raw seconds later realtime reads 2 s ahead (stepped): theta against it is 2 s less.
    const [moved, none] = carryPriors(priors, pair(100, 102));
    expect(none).toBeUndefined();
    expect(moved?.low).toBeCloseTo(0.1 - 2 - 100 * 50e-6, 9);
    expect(moved?.high).toBeCloseTo(0.2 - 2 + 100 * 50e-6, 9);
  });
});

describe('provider calls', () => {
  it('one call: phi in [T - b, T + resolution - a] on the clock it is given', async () => {
    const clock = simClock();
    const signal = new AbortController().signal;
    // The server reads 2.5 s ahead at the call's middle; the call takes 4 ms.
    const interval = await callProvider(
      () => {
        clock.advance(0.002);
        const ms = (clock.realtime().sec + clock.realtime().nsec / 1e9 + 2.5) * 1000;
        clock.advance(0.002);
        return Math.floor(ms);
      },
      { clock, resolution: 0.001, timeout: 1, signal },
    );
    expect(interval.low).toBeLessThanOrEqual(2.5);
    expect(interval.high).toBeGreaterThanOrEqual(2.5);
    expect(interval.high - interval.low).toBeCloseTo(0.005, 4);
  });

  it('a round outvotes a stale answer, counts failures and stops early at the target', async () => {
    const clock = simClock();
    const signal = new AbortController().signal;
    let call = 0;
    const provider = (): number => {
      call += 1;
      clock.advance(0.001);
      if (call === 2) throw new Error('flaky');
      const ms = (clock.realtime().sec + clock.realtime().nsec / 1e9 + 2.5) * 1000 - (call === 3 ? 1500 : 0);
      clock.advance(0.001);
      return ms;
    };
    const roundOptions = { clock, calls: 10, resolution: 0.001, timeout: 1, target: 0.01, signal };
    const round = await providerRound(provider, roundOptions);
    expect(round.failed).toBe(1);
    expect(round.falsetickers).toBe(1);
    expect(round.interval?.low).toBeLessThanOrEqual(2.5);
    expect(round.interval?.high).toBeGreaterThanOrEqual(2.5);
    // The stale third call keeps the round from stopping at three agreeing answers: all ten run.
    expect(call).toBe(10);
    call = 100;
    const quick = await providerRound(provider, roundOptions);
    expect(quick.answered).toBe(3);
  });

  it('a non-number, a non-finite or a non-positive answer is a TypeError with a code', async () => {
    const clock = simClock();
    const signal = new AbortController().signal;
    for (const value of [Number.NaN, Infinity, -5, '1800000000000' as unknown as number]) {
      await expect(callProvider(() => value, { clock, resolution: 0.001, timeout: 1, signal })).rejects.toMatchObject({
        code: 'ERR_INVALID_RETURN_VALUE',
        name: 'TypeError',
      });
    }
  });
});
