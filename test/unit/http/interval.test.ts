import { describe, expect, it } from 'vitest';
import { asymmetrySigma, posteriorMedian } from '../../../src/sources/http/estimate.js';
import { intersect, probeInterval, selectMajority } from '../../../src/sources/http/interval.js';

describe('probeInterval', () => {
  it('gives D - b < theta < D + 1 - a exactly, from nanosecond timestamps', () => {
    const sendTime = { sec: 1_795_000_000, nsec: 250_000_000 };
    const receiveTime = { sec: 1_795_000_000, nsec: 260_000_001 };
    const interval = probeInterval(1_795_000_003, sendTime, receiveTime);
    expect(interval.low).toBeCloseTo(2.739_999_999, 9);
    expect(interval.high).toBeCloseTo(3.75, 9);
  });

  it('intersects or reports no overlap', () => {
    expect(intersect({ low: 0, high: 2 }, { low: 1, high: 3 })).toEqual({ low: 1, high: 2 });
    expect(intersect({ low: 0, high: 1 }, { low: 1.5, high: 3 })).toBeUndefined();
  });
});

describe('selectMajority (Marzullo)', () => {
  it('finds the region most servers share and names the falsetickers', () => {
    const selection = selectMajority([
      { low: 0.1, high: 0.3 },
      { low: 0.2, high: 0.35 },
      { low: 5, high: 5.1 }, // liar
      { low: 0.15, high: 0.25 },
    ]);
    expect(selection).toEqual({ interval: { low: 0.2, high: 0.25 }, truechimers: [0, 1, 3] });
  });

  it('gives nothing without a majority', () => {
    expect(selectMajority([{ low: 0, high: 1 }, { low: 2, high: 3 }])).toBeUndefined();
    expect(selectMajority([{ low: 0, high: 1 }, { low: 2, high: 3 }, { low: 4, high: 5 }])).toBeUndefined();
    expect(selectMajority([])).toBeUndefined();
  });

  it('counts touching intervals as agreeing and decides with one server', () => {
    expect(selectMajority([{ low: 0, high: 1 }, { low: 1, high: 2 }])).toEqual({ interval: { low: 1, high: 1 }, truechimers: [0, 1] });
    expect(selectMajority([{ low: 0.5, high: 0.6 }])).toEqual({ interval: { low: 0.5, high: 0.6 }, truechimers: [0] });
  });
});

describe('posteriorMedian (the estimate inside the hard interval)', () => {
  it('is the middle of sharp symmetric bounds', () => {
    // Probes put theta in [0.30, 0.31]: lows 0.28, 0.30 and an upper bound 0.31 (= low - 0.69 + 1).
    const estimate = posteriorMedian([0.28, 0.3, -0.69], 1e-6, { low: 0.25, high: 0.35 });
    expect(estimate).toBeCloseTo(0.305, 4);
  });

  it('averages crossing noisy bounds instead of trusting the extremes', () => {
    // Lows above highs by noise around 0.5: the posterior centres between them.
    const estimate = posteriorMedian([0.503, 0.499, 0.501 - 1, 0.497 - 1], 0.004, { low: 0.4, high: 0.6 });
    expect(estimate).toBeGreaterThan(0.498);
    expect(estimate).toBeLessThan(0.502);
    // Always inside the hard interval it is given.
    expect(posteriorMedian([0.503, 0.499], 0.004, { low: 0.45, high: 0.46 })).toBeLessThanOrEqual(0.46);
  });

  it('reads the asymmetry from the round trips spread, with a floor', () => {
    expect(asymmetrySigma([0.04, 0.04, 0.04])).toBe(20e-6);
    expect(asymmetrySigma([0.03, 0.05])).toBeCloseTo(Math.sqrt(0.0002) / 2, 9);
  });
});

describe('probeInterval with a stale Date allowance', () => {
  it('widens only the top', () => {
    const sendTime = { sec: 100, nsec: 0 };
    const receiveTime = { sec: 100, nsec: 1_000_000 };
    expect(probeInterval(100, sendTime, receiveTime, 0.002)).toEqual({ low: -0.001, high: 1.002 });
  });
});
