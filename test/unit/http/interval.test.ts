import { describe, expect, it } from 'vitest';
import {
  intersect,
  probeInterval,
  publishable,
  publishedBound,
  select,
  serverBounds,
  type ProbeBounds,
} from '../../../src/sources/http/interval.js';
import { asymmetrySigma, posteriorMedian } from '../../../src/sources/http/posterior.js';

describe('probeInterval', () => {
  it('gives D - b < theta < D + 1 - a exactly, from nanosecond timestamps', () => {
    const sendTime = { sec: 1_795_000_000, nsec: 250_000_000 };
    const receiveTime = { sec: 1_795_000_000, nsec: 260_000_001 };
    const interval = probeInterval(1_795_000_003, sendTime, receiveTime, 0);
    expect(interval.low).toBeCloseTo(2.739_999_999, 9);
    expect(interval.high).toBeCloseTo(3.75, 9);
  });

  it('intersects or reports no overlap', () => {
    expect(intersect({ low: 0, high: 2 }, { low: 1, high: 3 })).toEqual({ low: 1, high: 2 });
    expect(intersect({ low: 0, high: 1 }, { low: 1.5, high: 3 })).toBeUndefined();
  });
});

describe('select (clock selection)', () => {
  it('finds the region most servers share and names the falsetickers', () => {
    const selection = select([
      { low: 0.1, high: 0.3 },
      { low: 0.2, high: 0.35 },
      { low: 5, high: 5.1 }, // liar
      { low: 0.15, high: 0.25 },
    ]);
    // Three of four share [0.2, 0.25]; points three or more cover span [0.2, 0.25] too.
    expect(selection).toEqual({
      bound: { low: 0.2, high: 0.25 },
      core: { low: 0.2, high: 0.25 },
      truechimers: [0, 1, 3],
    });
  });

  it('gives nothing without a majority', () => {
    expect(
      select([
        { low: 0, high: 1 },
        { low: 2, high: 3 },
      ]),
    ).toBeUndefined();
    expect(
      select([
        { low: 0, high: 1 },
        { low: 2, high: 3 },
        { low: 4, high: 5 },
      ]),
    ).toBeUndefined();
    expect(select([])).toBeUndefined();
  });

  it('counts touching intervals as agreeing and decides with one server', () => {
    expect(
      select([
        { low: 0, high: 1 },
        { low: 1, high: 2 },
      ]),
    ).toEqual({ bound: { low: 0, high: 2 }, core: { low: 1, high: 1 }, truechimers: [0, 1] });
    expect(select([{ low: 0.5, high: 0.6 }])).toEqual({
      bound: { low: 0.5, high: 0.6 },
      core: { low: 0.5, high: 0.6 },
      truechimers: [0],
    });
  });

  it('bounds by every point a majority covers: a liar overlapping a sliver of the truth cannot cut it', () => {
    // Two honest servers share [0.40, 0.50] (the truth at 0.41); a liar covers [0.48, 0.60].
    // The most-covered region is the sliver [0.48, 0.50], which misses the truth; the bound
    // is everything two of three cover.
    const selection = select([
      { low: 0.3, high: 0.5 },
      { low: 0.4, high: 0.7 },
      { low: 0.48, high: 0.6 },
    ]);
    expect(selection?.core).toEqual({ low: 0.48, high: 0.5 });
    expect(selection?.bound).toEqual({ low: 0.4, high: 0.6 });
  });
});

describe('the electorate: a majority of all the servers configured', () => {
  const agreeing = [
    { low: 0, high: 1 },
    { low: 0.5, high: 1.5 },
  ];

  it('publishes two that agree of three configured, not of five (three silenced servers count against)', () => {
    expect(select(agreeing, { servers: 3, pending: 0 })?.truechimers).toEqual([0, 1]);
    expect(select(agreeing, { servers: 5, pending: 0 })).toBeUndefined();
    expect(publishable(2, 2, { servers: 4, pending: 0 })).toBe(false);
    expect(publishable(3, 4, { servers: 5, pending: 0 })).toBe(true);
  });

  it('publishes one server alone once no other can answer, with room for its Date lag', () => {
    const one = [{ low: 0.2, high: 0.3 }];
    expect(select(one, { servers: 3, pending: 1 })).toBeUndefined();
    const selection = select(one, { servers: 3, pending: 0 });
    expect(selection?.bound).toEqual({ low: 0.2, high: 0.3 });
    expect(selection && publishedBound(selection, 1, 1)).toEqual({ low: 0.2, high: 1.3 });
    expect(selection && publishedBound(selection, 1, 0)).toEqual({ low: 0.2, high: 0.3 });
  });

  it('publishes no server alone where another saw its clock step: the survivor may have stepped unseen', () => {
    const one = [{ low: 0.2, high: 0.3 }];
    expect(select(one, { servers: 3, pending: 0, stepped: 1 })).toBeUndefined();
    expect(select(one, { servers: 3, pending: 0, stepped: 0 })?.truechimers).toEqual([0]);
  });

  it('spans every interval the tolerated liars of the electorate could leave: the truth is in the honest ones', () => {
    // Five configured, four answered: two may lie, so every point two cover is bounded (the
    // region three cover, where the two liars and one honest server meet, is not enough).
    const intervals = [
      { low: 0, high: 1 },
      { low: 0.8, high: 2 },
      { low: 0.9, high: 2 },
      { low: 0.95, high: 2 },
    ];
    expect(select(intervals)?.bound).toEqual({ low: 0.9, high: 2 });
    expect(select(intervals, { servers: 5, pending: 0 })?.bound).toEqual({ low: 0.8, high: 2 });
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

describe('serverBounds (one server, one clock?)', () => {
  // Probes of a clock at theta, each 1 ms wide around it: [theta - 0.0005, theta + 0.0005].
  const at = (theta: number, dateSeconds = 100): ProbeBounds => ({
    low: theta - 0.0005,
    high: theta + 0.0005,
    dateSeconds,
  });

  it('intersects the probes of one clock', () => {
    expect(serverBounds([at(0.3), at(0.3002)])).toEqual({ interval: { low: 0.3002 - 0.0005, high: 0.3 + 0.0005 } });
  });

  it('names a step: the probes before and after a point each meet', () => {
    const { fault } = serverBounds([at(0.3), at(0.3), at(0.3), at(0.6), at(0.6)]);
    expect(fault?.reason).toMatch(/^clock stepped by about 300\.0 ms between probes 3 and 4/);
    expect(fault?.kind).toBe('stepped');
    expect(fault?.step).toBeCloseTo(0.3, 6);
  });

  it('names several clocks when the answers alternate', () => {
    const { fault } = serverBounds([at(0.3), at(0.55), at(0.3), at(0.55)]);
    expect(fault?.reason).toMatch(/^not one clock: .*alternate between clocks about 250\.0 ms apart/);
    expect(fault?.kind).toBe('clocks');
    expect(fault?.step).toBeUndefined();
  });

  it('names two clocks answering in turn even where they repeat a second across more than one', () => {
    // Clocks at 0.3 and 0.8 answering in turn, round trips of 0-0.3 s: the last three answers
    // share second 102 and the last lies below the first of them, yet each clock advances.
    const probes: ProbeBounds[] = [
      [-0.3, 1, 100],
      [0.4, 1.7, 101],
      [-0.1, 0.9, 101],
      [0.6, 1.6, 102],
      [-0.1, 1.1, 102],
      [-0.2, 0.9, 102],
      [-0.5, 0.5, 102],
    ].map(([low = 0, high = 0, dateSeconds = 0]) => ({ low, high, dateSeconds }));
    const { fault } = serverBounds(probes);
    expect(fault?.reason).toMatch(/^not one clock: .*alternate between clocks/);
    // The first five meet at 0.8, the last two at 0.3: one clock stepping back fits as well, and is named beside.
    expect(fault?.kind).toBe('clocks');
    expect(fault?.step).toBeCloseTo(-0.6, 9);
    expect(fault?.reason).toMatch(/or one clock stepped by about -600\.0 ms after probe 5\)$/);
  });

  it('names a Date that does not advance', () => {
    // The same second, the later probe sent more than a second after the first was answered.
    const { fault } = serverBounds([
      { low: 0.2, high: 1.2, dateSeconds: 100 },
      { low: -0.9, high: 0.1, dateSeconds: 100 },
    ]);
    expect(fault?.reason).toMatch(/^Date does not advance/);
    // At least back from the first of them (0.2) to below the last (0.1).
    expect(fault?.kind).toBe('stuck');
    expect(fault?.step).toBeCloseTo(-0.1, 9);
  });
});
