// Servers that agree are aimed as a team: each at its own quantile of the joint posterior.
import { describe, expect, it } from 'vitest';
import { Ensemble } from '../../../src/sources/http/ensemble.js';
import { posteriorQuantiles } from '../../../src/sources/http/estimate.js';

// One probe each: theta somewhere in [0.2, 1.2) (the stamp mid-round-trip), 1 ms round trips.
const firstProbe = { interval: { low: 0.2, high: 1.2 }, lows: [0.2], rtts: [0.001] };

describe('Ensemble', () => {
  it('spreads agreeing servers over the posterior, one quantile each', () => {
    const ensemble = new Ensemble([undefined, undefined, undefined]);
    for (const index of [0, 1, 2]) ensemble.update(index, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    const aims = [0, 1, 2].map((index) => ensemble.jointAim(index) ?? NaN);
    // A flat posterior over the second: its quartiles.
    expect(aims[0]).toBeCloseTo(0.45, 2);
    expect(aims[1]).toBeCloseTo(0.7, 2);
    expect(aims[2]).toBeCloseTo(0.95, 2);
  });

  it('leaves a server outside the majority, and a lone server, to aim on its own', () => {
    const ensemble = new Ensemble([undefined, undefined, undefined]);
    ensemble.update(0, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    expect(ensemble.jointAim(0)).toBeUndefined();
    ensemble.update(1, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    ensemble.update(2, { low: 5.2, high: 6.2 }, [5.2], [0.001]);
    expect(ensemble.jointAim(2)).toBeUndefined();
    // Two of three agree: a team of two, at the thirds.
    expect(ensemble.jointAim(0)).toBeCloseTo(0.2 + 1 / 3, 2);
    expect(ensemble.jointAim(1)).toBeCloseTo(0.2 + 2 / 3, 2);
    // A server that fails leaves the team; the one left aims alone.
    ensemble.update(1, undefined, [], []);
    expect(ensemble.jointAim(0)).toBeUndefined();
  });

  it('does not team up clocks a fraction of a second apart, even where their intervals mostly overlap', () => {
    const ensemble = new Ensemble([undefined, undefined, undefined]);
    // 0.15 s apart: after one probe each, 85 % of each interval is common.
    ensemble.update(0, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    ensemble.update(1, { low: 0.35, high: 1.35 }, [0.35], [0.001]);
    ensemble.update(2, { low: 0.5, high: 1.5 }, [0.5], [0.001]);
    expect([0, 1, 2].map((index) => ensemble.jointAim(index))).toEqual([undefined, undefined, undefined]);
    // A round trip's worth apart is one clock.
    ensemble.update(1, { low: 0.21, high: 1.21 }, [0.21], [0.001]);
    expect(ensemble.jointAim(0)).toBeCloseTo(0.21 + 0.99 / 3, 2);
  });

  it('aims a member at the edge of its own interval where the team needs it', () => {
    const ensemble = new Ensemble([undefined, undefined]);
    // Both saw theta in [0.2, 1.2): a team. Then member 0 learned theta < 0.47, member 1
    // theta > 0.469 (round trips of 1 ms: sharp).
    for (const index of [0, 1]) ensemble.update(index, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    expect(ensemble.jointAim(0)).toBeCloseTo(0.2 + 1 / 3, 2);
    ensemble.update(0, { low: 0.2, high: 0.47 }, [0.2, 0.47 - 1], [0.001, 0.001]);
    ensemble.update(1, { low: 0.469, high: 1.2 }, [0.2, 0.469], [0.001, 0.001]);
    // The team's time is in [0.469, 0.47]: above member 0's own 99 % point, at the top
    // edge of its 0.27 s interval. That is where its probe tells the team most.
    const aims = [0, 1].map((index) => ensemble.jointAim(index) ?? NaN);
    expect(aims[0]).toBeCloseTo(0.469 + 0.001 / 3, 4);
    expect(aims[1]).toBeCloseTo(0.469 + 0.002 / 3, 4);
    const [ownTop = NaN] = posteriorQuantiles([{ lows: [0.2, 0.47 - 1], sigma: 20e-6 }], { low: 0.2, high: 0.47 }, [0.99]);
    expect(aims[0]).toBeGreaterThan(ownTop);
  });

  it('aims inside the region most priors share, and ignores priors that disagree', () => {
    const agreeing = new Ensemble([{ low: 0.5, high: 0.6 }, { low: 0.55, high: 0.65 }, { low: 0.9, high: 1 }]);
    for (const index of [0, 1, 2]) agreeing.update(index, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    for (const index of [0, 1, 2]) {
      expect(agreeing.jointAim(index)).toBeGreaterThanOrEqual(0.55);
      expect(agreeing.jointAim(index)).toBeLessThanOrEqual(0.6);
    }
    const split = new Ensemble([{ low: 0.5, high: 0.6 }, { low: 0.9, high: 1 }]);
    for (const index of [0, 1]) split.update(index, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    expect(split.jointAim(0)).toBeCloseTo(0.2 + 1 / 3, 2);
  });
});

describe('posteriorQuantiles', () => {
  it('multiplies servers: two servers with crossing noisy bounds meet in the middle, narrower than either', () => {
    const noisy = { low: 0.4, high: 0.6 };
    const one = posteriorQuantiles([{ lows: [0.497, 0.503 - 1], sigma: 0.004 }], noisy, [0.25, 0.75]);
    const two = posteriorQuantiles(
      [
        { lows: [0.497, 0.503 - 1], sigma: 0.004 },
        { lows: [0.499, 0.501 - 1], sigma: 0.004 },
      ],
      noisy,
      [0.25, 0.5, 0.75],
    );
    expect(two[1]).toBeCloseTo(0.5, 3);
    expect((two[2] ?? NaN) - (two[0] ?? NaN)).toBeLessThan((one[1] ?? NaN) - (one[0] ?? NaN));
  });

  it('is not dragged by one server of the majority that is a few ms out', () => {
    // Three servers put theta at 0.300 (+-1 ms noise), a fourth at 0.306: all overlap the
    // same hard interval, so Marzullo keeps all four; the joint median stays with the three.
    const near = (centre: number): { lows: number[]; sigma: number } => ({ lows: [centre - 0.0005, centre + 0.0005 - 1], sigma: 0.0003 });
    const [median] = posteriorQuantiles([near(0.3), near(0.3), near(0.3), near(0.306)], { low: 0.25, high: 0.35 }, [0.5]);
    expect(Math.abs((median ?? NaN) - 0.3)).toBeLessThan(0.0001);
  });

  it('keeps its resolution when the posterior is far narrower than the support', () => {
    // Sharp bounds 10 us apart inside a 1 s support: the median lands between them.
    const [median] = posteriorQuantiles([{ lows: [0.30001, 0.30002 - 1], sigma: 1e-6 }], { low: 0, high: 1 }, [0.5]);
    expect(median).toBeGreaterThan(0.30001);
    expect(median).toBeLessThan(0.30002);
    // Several servers, each as a mixture with a flat part over the whole support.
    const sharp = { lows: [0.30001, 0.30002 - 1], sigma: 1e-6 };
    const [joint] = posteriorQuantiles([sharp, sharp, sharp], { low: 0, high: 1 }, [0.5]);
    expect(joint).toBeGreaterThan(0.30001);
    expect(joint).toBeLessThan(0.30002);
  });
});
