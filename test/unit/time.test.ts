// Exact time helpers (src/time.ts) and the addon's clocks (src/clock.ts).
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readClockPair, monotonicRaw, realtime, systemClock } from '../../src/clock.js';
import { addSeconds, compare, diffSeconds, formatUtc, fromSeconds, toSeconds, toTimespec } from '../../src/time.js';

describe('time helpers', () => {
  it('fromSeconds rounds to the nearest nanosecond and carries into seconds', () => {
    expect(fromSeconds(1.5)).toEqual({ sec: 1, nsec: 500_000_000 });
    expect(fromSeconds(0.9999999999)).toEqual({ sec: 1, nsec: 0 });
    expect(fromSeconds(0)).toEqual({ sec: 0, nsec: 0 });
    expect(toSeconds({ sec: 2, nsec: 250_000_000 })).toBe(2.25);
  });

  it('toTimespec accepts float seconds and exact { sec, nsec }, and rejects the rest with Node codes', () => {
    expect(toTimespec(1_700_000_000.5, 't')).toEqual({ sec: 1_700_000_000, nsec: 500_000_000 });
    expect(toTimespec({ sec: 3, nsec: 999_999_999 }, 't')).toEqual({ sec: 3, nsec: 999_999_999 });
    for (const bad of [
      -1,
      Number.NaN,
      Infinity,
      { sec: -1, nsec: 0 },
      { sec: 1, nsec: 1e9 },
      { sec: 1.5, nsec: 0 },
      { sec: 2 ** 53, nsec: 0 },
    ]) {
      expect(() => toTimespec(bad, 't'), JSON.stringify(bad)).toThrow(RangeError);
    }
    for (const bad of ['1', null, undefined, { sec: 1 }, { sec: '1', nsec: 0 }, 1n]) {
      const error = (() => {
        try {
          toTimespec(bad, 'clockTime');
        } catch (caught) {
          return caught as NodeJS.ErrnoException;
        }
        return undefined;
      })();
      expect(error, inspect(bad)).toBeInstanceOf(TypeError);
      expect(error?.code).toBe('ERR_INVALID_ARG_TYPE');
      expect(error?.message).toContain('"clockTime"');
    }
  });

  it('diffSeconds is the nearest double to the exact difference', () => {
    expect(diffSeconds({ sec: 1_700_000_002, nsec: 1 }, { sec: 1_700_000_000, nsec: 999_999_999 })).toBe(1.000000002);
    expect(diffSeconds({ sec: 1_700_000_000, nsec: 999_999_999 }, { sec: 1_700_000_002, nsec: 1 })).toBe(-1.000000002);
    expect(diffSeconds({ sec: 5, nsec: 0 }, { sec: 5, nsec: 0 })).toBe(0);
    expect(diffSeconds({ sec: 2e9, nsec: 0 }, { sec: 0, nsec: 0 })).toBe(2e9); // beyond exact nanoseconds
  });

  it('addSeconds, compare and formatUtc', () => {
    expect(addSeconds({ sec: 10, nsec: 900_000_000 }, 0.2)).toEqual({ sec: 11, nsec: 100_000_000 });
    expect(addSeconds({ sec: 10, nsec: 100_000_000 }, -0.2)).toEqual({ sec: 9, nsec: 900_000_000 });
    expect(compare({ sec: 1, nsec: 2 }, { sec: 1, nsec: 3 })).toBeLessThan(0);
    expect(compare({ sec: 2, nsec: 0 }, { sec: 1, nsec: 999_999_999 })).toBeGreaterThan(0);
    expect(formatUtc({ sec: 1_700_000_000, nsec: 1 })).toBe('2023-11-14T22:13:20.000000001Z');
  });
});

describe('clocks', () => {
  it('realtime() and monotonicRaw() return normalised { sec, nsec } that do not go back', () => {
    for (const read of [realtime, monotonicRaw, () => systemClock.realtime(), () => systemClock.monotonicRaw()]) {
      const first = read();
      const second = read();
      expect(Number.isInteger(first.sec) && Number.isInteger(first.nsec)).toBe(true);
      expect(first.nsec).toBeGreaterThanOrEqual(0);
      expect(first.nsec).toBeLessThan(1e9);
      expect(compare(second, first)).toBeGreaterThanOrEqual(0);
      expect(second).not.toBe(first); // a fresh object each call, not the shared array
    }
    expect(realtime().sec).toBeGreaterThan(1_600_000_000);
  });

  it('readClockPair() reads both clocks between two plain readings', () => {
    const rawBefore = monotonicRaw();
    const realBefore = realtime();
    const pair = readClockPair();
    const realAfter = realtime();
    const rawAfter = monotonicRaw();
    expect(compare(pair.monotonicRaw, rawBefore)).toBeGreaterThanOrEqual(0);
    expect(compare(rawAfter, pair.monotonicRaw)).toBeGreaterThanOrEqual(0);
    expect(compare(pair.realtime, realBefore)).toBeGreaterThanOrEqual(0);
    expect(compare(realAfter, pair.realtime)).toBeGreaterThanOrEqual(0);
  });
});
