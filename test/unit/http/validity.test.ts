// Selection within certificate validity: pure interval arithmetic.
import { describe, expect, it } from 'vitest';
import { select } from '../../../src/sources/http/interval.js';
import { commonWindow, selectWithinValidity, thetaWithin } from '../../../src/sources/http/validity.js';

const around = (theta: number, half = 0.01) => ({ low: theta - half, high: theta + half });
const run = (candidates: Parameters<typeof selectWithinValidity>[0]) =>
  selectWithinValidity(candidates, select, (found) => found.bound);

describe('selectWithinValidity', () => {
  it('keeps a majority whose every validity holds the agreed interval', () => {
    const { selection, outside } = run([
      { interval: around(5), validity: { low: 0, high: 10 } },
      { interval: around(5), validity: undefined },
      { interval: around(9), validity: undefined },
    ]);
    expect(selection?.truechimers).toEqual([0, 1]);
    expect(outside.size).toBe(0);
  });

  it('drops a truechimer whose validity excludes the agreed interval and selects again', () => {
    const { selection, outside } = run([
      { interval: around(5), validity: undefined },
      { interval: around(5), validity: { low: 0, high: 4 } },
      { interval: around(5), validity: undefined },
      { interval: around(5), validity: undefined },
    ]);
    expect(selection?.truechimers).toEqual([0, 2, 3]);
    expect([...outside.keys()]).toEqual([1]);
  });

  it('counts a dropped server against the majority', () => {
    // Two agree, one of them expired at that time: one of two is no majority.
    expect(
      run([
        { interval: around(5), validity: undefined },
        { interval: around(5), validity: { low: 6, high: 9 } },
      ]).selection,
    ).toBeUndefined();
    // Three, one expired, one elsewhere: the remaining honest one alone is one of three.
    expect(
      run([
        { interval: around(5), validity: undefined },
        { interval: around(5), validity: { low: 6, high: 9 } },
        { interval: around(7), validity: undefined },
      ]).selection,
    ).toBeUndefined();
  });

  it('needs the whole agreed interval inside, edges included', () => {
    expect(run([{ interval: { low: 1, high: 2 }, validity: { low: 1, high: 2 } }]).selection?.truechimers).toEqual([0]);
    expect(run([{ interval: { low: 1, high: 2 }, validity: { low: 1, high: 1.999 } }]).selection).toBeUndefined();
  });
});

describe('windows as theta', () => {
  it('takes the narrowest window of a chain and needs it over the whole measurement', () => {
    const window = commonWindow([
      { subject: 'leaf', notBefore: '2026-01-01T00:00:00Z', notAfter: '2026-06-01T00:00:00Z' },
      { subject: 'root', notBefore: '2020-01-01T00:00:00Z', notAfter: '2030-01-01T00:00:00Z' },
    ]);
    expect(window).toEqual({ low: Date.UTC(2026, 0, 1) / 1000, high: Date.UTC(2026, 5, 1) / 1000 });
    expect(commonWindow([])).toBeUndefined();
    // Local steady clock from 1000 to 1010: theta must put both ends inside.
    expect(thetaWithin({ low: 2000, high: 3000 }, 1000, 1010)).toEqual({ low: 1000, high: 1990 });
  });
});
