import { describe, expect, it } from 'vitest';
import { intersect, probeInterval, selectMajority } from '../src/sources/http/interval.js';

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
