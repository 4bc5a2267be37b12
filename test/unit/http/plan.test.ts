// plan.ts: servers that agree are aimed as a team (each at its own quantile of the joint
// posterior); verification probes flank a server's own estimate in the last seconds.
import { describe, expect, it } from 'vitest';
import type { Interval } from '../../../src/sources/http/interval.js';
import { fromSeconds } from '../../../src/time.js';
import {
  aimedProbeDue,
  checkOf,
  emptyServer,
  observe,
  planProbes,
  planTeam,
  planTick,
  standingSupport,
  RECHECKS,
  TEAM_SPACING,
  CHECK_SPREAD,
  settled,
  type PlannedProbe,
  type ServerState,
} from '../../../src/sources/http/plan.js';
import { posteriorQuantiles } from '../../../src/sources/http/posterior.js';

/** The team's state as measure.ts keeps it: servers replaced on each answer, the team carried. */
class Ensemble {
  servers: ServerState[];
  team: readonly number[] | undefined;
  constructor(priors: readonly (Interval | undefined)[]) {
    this.servers = priors.map(emptyServer);
  }
  update(index: number, interval: Interval | undefined, lows: readonly number[], rtts: readonly number[]): void {
    this.servers[index] = {
      ...(this.servers[index] as ServerState),
      interval,
      failed: interval === undefined,
      lows,
      rtts,
    };
  }
  jointAim(index: number): number | undefined {
    const plan = planTeam({ servers: this.servers, team: this.team });
    this.team = plan.team;
    return plan.aims.get(index);
  }
}

// One probe each: theta somewhere in [0.2, 1.2) (the stamp mid-round-trip), 1 ms round trips.
const firstProbe = { interval: { low: 0.2, high: 1.2 }, lows: [0.2], rtts: [0.001] };

describe('planTeam', () => {
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
    const [ownTop = NaN] = posteriorQuantiles(
      [{ lows: [0.2, 0.47 - 1], sigma: 20e-6 }],
      { low: 0.2, high: 0.47 },
      [0.99],
    );
    expect(aims[0]).toBeGreaterThan(ownTop);
  });

  it('aims inside the region most priors share, and ignores priors that disagree', () => {
    const agreeing = new Ensemble([
      { low: 0.5, high: 0.6 },
      { low: 0.55, high: 0.65 },
      { low: 0.9, high: 1 },
    ]);
    for (const index of [0, 1, 2]) agreeing.update(index, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    for (const index of [0, 1, 2]) {
      expect(agreeing.jointAim(index)).toBeGreaterThanOrEqual(0.55);
      expect(agreeing.jointAim(index)).toBeLessThanOrEqual(0.6);
    }
    const split = new Ensemble([
      { low: 0.5, high: 0.6 },
      { low: 0.9, high: 1 },
    ]);
    for (const index of [0, 1]) split.update(index, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    expect(split.jointAim(0)).toBeCloseTo(0.2 + 1 / 3, 2);
  });
});

describe('planTeam with many members', () => {
  // A team of 50 formed on first answers: since then half saw theta in [0.4999, 0.5101],
  // half in [0.4899, 0.5001] (round trips of 0.2 and 10.2 ms: noisy), so the team's time
  // is within 0.2 ms and its quantiles a few microseconds apart.
  const ensemble = new Ensemble(Array.from({ length: 50 }, () => undefined));
  for (let index = 0; index < 50; index += 1) {
    const interval = index % 2 === 0 ? { low: 0.4999, high: 0.5101 } : { low: 0.4899, high: 0.5001 };
    ensemble.update(index, interval, [interval.low, interval.high - 1], [0.0002, 0.0102]);
  }
  const aimsAt = (turn: number): Map<number, number> => {
    const plan = planTeam({ servers: ensemble.servers, team: ensemble.servers.map((_, index) => index) }, turn);
    expect(plan.team).toHaveLength(50);
    return new Map(plan.aims);
  };

  it("keeps the members' aims, and so their sends, TEAM_SPACING apart", () => {
    const aims = [...aimsAt(0).values()].sort((a, b) => a - b);
    expect(aims.length).toBeGreaterThan(25);
    for (let rank = 1; rank < aims.length; rank += 1) {
      expect((aims[rank] ?? NaN) - (aims[rank - 1] ?? NaN)).toBeGreaterThanOrEqual(TEAM_SPACING * (1 - 1e-9));
    }
    // Around the team's time, not beside it.
    expect(aims[0]).toBeLessThan(0.5);
    expect(aims[aims.length - 1]).toBeGreaterThan(0.5);
  });

  it('moves each member across the ranks: within five ticks, to both sides of the median', () => {
    const sides = new Map<number, Set<string>>();
    for (let turn = 1000; turn < 1005; turn += 1) {
      const aims = aimsAt(turn);
      const sorted = [...aims.values()].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
      for (const [index, aim] of aims) {
        sides.set(index, (sides.get(index) ?? new Set()).add(aim < median ? 'below' : 'above'));
      }
    }
    expect(sides.size).toBeGreaterThan(25);
    for (const seen of sides.values()) expect([...seen].sort()).toEqual(['above', 'below']);
  });
});

describe("a team's checks", () => {
  // 50 members on one clock, each [0.5, 0.502] from 1 ms round trips, at their last seconds (checks just outside).
  const ensemble = new Ensemble(Array.from({ length: 50 }, () => undefined));
  for (let index = 0; index < 50; index += 1) ensemble.update(index, { low: 0.5, high: 0.502 }, [0.5, -0.498], [0.001]);
  const team = ensemble.servers.map((_, index) => index);

  it('go out TEAM_SPACING apart by rank, over CHECK_SPREAD at most, not at one instant', () => {
    const plan = planTeam({ servers: ensemble.servers, team }, 6);
    const planned = team.map((index) =>
      planProbes(
        ensemble.servers[index] as ServerState,
        101,
        plan.aims.get(index),
        6,
        8,
        plan.support,
        plan.spreads.get(index),
      ),
    );
    const sends = (kind: string): number[] =>
      planned.flatMap((probes) => probes.filter((probe) => probe.kind === kind).map((probe) => probe.sendAt));
    for (const kind of ['verify-low', 'verify-high']) {
      const sorted = sends(kind).sort((a, b) => a - b);
      expect(sorted).toHaveLength(50);
      for (let rank = 1; rank < sorted.length; rank += 1)
        expect((sorted[rank] ?? NaN) - (sorted[rank - 1] ?? NaN)).toBeGreaterThanOrEqual(TEAM_SPACING * (1 - 1e-9));
      expect((sorted[49] ?? NaN) - (sorted[0] ?? NaN)).toBeLessThanOrEqual(CHECK_SPREAD * (1 + 1e-9));
    }
    // By aim, ascending (the order the bisecting probes go out, reversed): low checks go out latest first, high ones
    // earliest first, so that each member's check stays as far from its own bisecting probe.
    // (Members whose aim their own probes make implausible take none, and still check.)
    const byAim = team
      .flatMap((index) => {
        const aim = plan.aims.get(index);
        return aim === undefined ? [] : [{ aim, probes: planned[index] ?? [] }];
      })
      .sort((a, b) => a.aim - b.aim);
    expect(byAim.length).toBeGreaterThan(3);
    const sendOf = (probes: readonly PlannedProbe[], kind: string): number =>
      probes.find((probe) => probe.kind === kind)?.sendAt ?? NaN;
    for (let rank = 1; rank < byAim.length; rank += 1) {
      const [before, after] = [byAim[rank - 1]?.probes ?? [], byAim[rank]?.probes ?? []];
      expect(sendOf(after, 'verify-low')).toBeLessThan(sendOf(before, 'verify-low'));
      expect(sendOf(after, 'verify-high')).toBeLessThan(sendOf(before, 'verify-high'));
    }
    // Below and above the team's interval, by more than the noise and the Date staleness allowance.
    for (const probes of planned) {
      const low = probes.find((probe) => probe.kind === 'verify-low');
      const high = probes.find((probe) => probe.kind === 'verify-high');
      expect(low?.aim).toBeLessThanOrEqual(0.5 - 0.004 + 1e-9);
      expect(high?.aim).toBeGreaterThanOrEqual(0.502 + 0.004 - 1e-9);
    }
  });

  it("aim beyond the loop's usual lag: a server whose requests went out late checks farther out", () => {
    const server = ensemble.servers[0] as ServerState;
    const [onTime] = planProbes(server, 101, undefined, 5, 8).filter((probe) => probe.kind === 'verify-low');
    const lagging = { ...server, sendLags: [0.002, 0.003, 0.002, 0.004] };
    const [late] = planProbes(lagging, 101, undefined, 5, 8).filter((probe) => probe.kind === 'verify-low');
    // Median 2.5 ms, and 4 sigma of the spread (MAD 0.5 ms).
    expect((onTime?.aim ?? NaN) - (late?.aim ?? NaN)).toBeCloseTo(0.0025 + 4 * 1.4826 * 0.0005, 6);
    // A loop (or a path) that late gets no coarser checks than CHECK_SPREAD: its late checks are asked again.
    const stalled = { ...server, sendLags: [0.1, 0.3, 0.2] };
    const [capped] = planProbes(stalled, 101, undefined, 5, 8).filter((probe) => probe.kind === 'verify-low');
    expect((onTime?.aim ?? NaN) - (capped?.aim ?? NaN)).toBeCloseTo(CHECK_SPREAD, 6);
  });
});

describe('standingSupport', () => {
  it("is the team's interval as its members' intervals stand, between plans", () => {
    const ensemble = new Ensemble([undefined, undefined, undefined, undefined]);
    for (const index of [0, 1, 2]) ensemble.update(index, firstProbe.interval, firstProbe.lows, firstProbe.rtts);
    ensemble.update(3, { low: 5.2, high: 6.2 }, [5.2], [0.001]);
    const plan = planTeam({ servers: ensemble.servers, team: undefined });
    expect(plan.team).toEqual([0, 1, 2]);
    const state = (): { servers: ServerState[]; team: readonly number[] | undefined } => ({
      servers: ensemble.servers,
      team: plan.team,
    });
    expect(standingSupport(state(), plan, 0)).toEqual(plan.support);
    // Member 1 learns more: the team's interval narrows with it, without a new plan.
    ensemble.update(1, { low: 0.3, high: 0.9 }, [0.2, 0.3], [0.001, 0.001]);
    expect(standingSupport(state(), plan, 0)).toEqual({ low: 0.3, high: 0.9 });
    expect(standingSupport(state(), plan, 2)).toEqual({ low: 0.3, high: 0.9 });
    // A member that failed no longer narrows it; a server outside the team has none.
    ensemble.update(1, undefined, [], []);
    expect(standingSupport(state(), plan, 0)).toEqual(firstProbe.interval);
    expect(standingSupport(state(), plan, 3)).toBeUndefined();
    expect(standingSupport(state(), undefined, 0)).toBeUndefined();
  });
});

describe('posteriorQuantiles', () => {
  it('answers the same whether a server is gridded afresh or its grid is reused', () => {
    const lows = [0.30012, 0.3003 - 1, 0.3001];
    const other = [0.3002, 0.30025 - 1];
    const support = { low: 0.29, high: 0.31 };
    const fresh = (sigma: number, within = support): number[] =>
      posteriorQuantiles(
        [
          { lows: [...lows], sigma },
          { lows: [...other], sigma: 0.0002 },
        ],
        within,
        [0.1, 0.5, 0.9],
      );
    const reused = (sigma: number, within = support): number[] =>
      posteriorQuantiles(
        [
          { lows, sigma },
          { lows: other, sigma: 0.0002 },
        ],
        within,
        [0.1, 0.5, 0.9],
      );
    // The same probes with another noise or inside another support are another grid.
    for (const [sigma, within] of [
      [0.0001, support],
      [0.0004, support],
      [0.0001, { low: 0.3, high: 0.3003 }],
      [0.0001, support],
    ] as const) {
      expect(reused(sigma, within)).toEqual(fresh(sigma, within));
    }
    expect(reused(0.0001)).not.toEqual(reused(0.0004));
  });

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
    const near = (centre: number): { lows: number[]; sigma: number } => ({
      lows: [centre - 0.0005, centre + 0.0005 - 1],
      sigma: 0.0003,
    });
    const [median] = posteriorQuantiles(
      [near(0.3), near(0.3), near(0.3), near(0.306)],
      { low: 0.25, high: 0.35 },
      [0.5],
    );
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

describe('planTick and planProbes', () => {
  const sharp: ServerState = {
    ...emptyServer(undefined),
    interval: { low: 0.3, high: 0.302 },
    lows: [0.3, 0.302 - 1],
    rtts: [0.001, 0.001],
    lastTick: 100,
  };

  it("aims one probe per later tick at the server's own estimate, early by the up-leg", () => {
    const tick = planTick(sharp, 100.2, 1, 8);
    expect(tick?.tick).toBe(101);
    const [probe, ...rest] = planProbes(sharp, 101, undefined, 1, 8);
    expect(rest).toEqual([]);
    expect(probe?.kind).toBe('bisect');
    expect(probe?.aim).toBeCloseTo(0.301, 3);
    expect(probe?.sendAt).toBeCloseTo(101 - 0.301 - 0.0005, 3);
  });

  it('flanks the hard interval with checks beyond the noise at the end, each side on odd and even requests', () => {
    const kinds = [3, 4, 5, 6, 7].map((aimed) =>
      planProbes(sharp, 101, undefined, aimed, 8).map((probe) => probe.kind),
    );
    expect(kinds).toEqual([
      ['bisect', 'verify-low'],
      ['verify-high', 'bisect'],
      ['bisect', 'verify-low'],
      ['verify-high', 'bisect', 'verify-low'],
      // The last second checks both sides: a step before it is seen whichever way it went.
      ['verify-high', 'bisect', 'verify-low'],
    ]);
    // Requests 3.. in order (0 is the unaimed first, 1 and 2 bisect): the checks just outside
    // the interval (the last three seconds) ask each side on both parities.
    const order = [5, 6, 7].flatMap((aimed) => planProbes(sharp, 101, undefined, aimed, 8).map((probe) => probe.kind));
    const parities = (kind: string): number[] =>
      [...new Set(order.flatMap((each, position) => (each === kind ? [(position + 7) % 2] : [])))].sort();
    expect(parities('verify-low')).toEqual([0, 1]);
    expect(parities('verify-high')).toEqual([0, 1]);
    // Just outside the hard interval [0.3, 0.302], by more than the noise and the Date staleness allowance.
    const [low] = planProbes(sharp, 101, undefined, 5, 8).filter((probe) => probe.kind === 'verify-low');
    expect(low?.aim).toBeCloseTo(0.3 - 0.002 - 0.002, 4);
    // Earlier seconds bisect only.
    expect(planProbes(sharp, 101, undefined, 2, 8).map((probe) => probe.kind)).toEqual(['bisect']);
  });

  it('keeps the first checks near the aim where the interval is still wide', () => {
    const wide: ServerState = { ...sharp, interval: { low: 0.2, high: 0.4 }, lows: [0.2, 0.4 - 1] };
    const [low] = planProbes(wide, 101, 0.3, 3, 8).filter((probe) => probe.kind === 'verify-low');
    expect(low?.aim).toBeCloseTo(0.29, 4);
    const [edge] = planProbes(wide, 101, 0.3, 5, 8).filter((probe) => probe.kind === 'verify-low');
    expect(edge?.aim).toBeCloseTo(0.196, 4);
  });

  // [0.3, 0.302] from answers of second 100, 1 ms round trips.
  const answered: ServerState = {
    ...sharp,
    rtts: Array.from({ length: 6 }, () => 0.001),
    bounds: [
      { low: 0.3, high: 1.302, dateSeconds: 100 },
      { low: -0.7, high: 0.302, dateSeconds: 100 },
    ],
  };
  /** The answer to `planned`, sent on time, from a clock at `theta`, its legs `up` and `down` long. */
  const answerTo = (
    planned: { aim: number; sendAt: number } | undefined,
    theta: number,
    up = 0.0005,
    down = 0.0005,
  ) => {
    const sendAt = planned?.sendAt ?? NaN;
    return {
      dateSeconds: Math.floor(sendAt + up + theta),
      sendTime: fromSeconds(sendAt),
      receiveTime: fromSeconds(sendAt + up + down),
    };
  };
  const lowCheck = (server: ServerState, aimed: number) =>
    planProbes(server, 101, undefined, aimed, 8).find((probe) => probe.kind === 'verify-low');

  it('a low check answered before its tick contradicts the interval when the clock stepped back', () => {
    const check = lowCheck(answered, 5);
    // Stepped back 50 ms: the check's stamp falls before the tick, its top (staleness included) below 0.3.
    const stepped = observe(answered, { ...answerTo(check, 0.25), check: checkOf(check) });
    expect(stepped.fault?.reason).toMatch(/clock stepped|not one clock|does not advance/);
    // The clock it had: the answer fits, and the check counts.
    const steady = observe(answered, { ...answerTo(check, 0.301), check: checkOf(check) });
    expect(steady.server?.unprovenChecks).toEqual([]);
  });

  it('asks both sides again after a late check, in a second of their own; then reaches out to what it proved', () => {
    const check = lowCheck(answered, 7 - 1);
    // Held up 300 ms on the way back: "after the tick" proves only theta > aim - 0.3 s.
    let server = observe(answered, { ...answerTo(check, 0.301, 0.0005, 0.3), check: checkOf(check) }).server;
    expect(server?.unprovenChecks.map(({ side }) => side)).toEqual(['low']);
    if (!server) return;
    expect(aimedProbeDue(server, 8, 8)).toBe(true);
    const recheck = planProbes(server, 102, undefined, 8, 8);
    // No bisecting probe; the high side too, for a step after the last second's high check is seen only there.
    expect(recheck.map((probe) => probe.kind)).toEqual(['verify-high', 'verify-low']);
    const lowRecheck = recheck.find((probe) => probe.kind === 'verify-low');
    expect(lowRecheck?.aim).toBeLessThan(0.3);
    // Late every time: after RECHECKS more seconds the interval reaches down to what the last check proved.
    let proved = NaN;
    for (let aimed = 8; aimed < 8 + RECHECKS; aimed += 1) {
      const again: PlannedProbe | undefined = planProbes(server, 102 + aimed, undefined, aimed, 8).find(
        (probe) => probe.kind === 'verify-low',
      );
      const answer = answerTo(again, 0.301, 0.0005, 0.2 + aimed / 100);
      proved = 102 + aimed - (again?.sendAt ?? NaN) - (0.0005 + 0.2 + aimed / 100);
      server = observe(server, { ...answer, check: checkOf(again) }).server ?? server;
    }
    expect(aimedProbeDue(server, 8 + RECHECKS, 8)).toBe(false);
    expect(server.interval).toEqual({ low: 0.3, high: 0.302 });
    const reached = settled(server).interval;
    expect(reached?.low).toBeCloseTo(proved, 6);
    expect(reached?.low).toBeLessThan(0.3 - 0.2);
    expect(reached?.high).toBe(0.302);
    // Answered in time once: done, the interval its probes' own.
    const quick = observe(server, { ...answerTo(lowRecheck, 0.301), check: checkOf(lowRecheck) }).server;
    expect(quick && aimedProbeDue(quick, 9, 8)).toBe(false);
    expect(quick && settled(quick).interval).toEqual(quick?.interval);
  });

  it('leaves room in the tick for a verification probe above the estimate', () => {
    // The bisecting probe alone would be sent 0.302 s + the up-leg (0.5 ms) before its tick,
    // 3 ms ahead: 101 would do. The high probe is sent 2 ms earlier still: 101 is too near.
    expect(planTick(sharp, 100.6935, 2, 8)?.tick).toBe(101);
    expect(planTick(sharp, 100.6935, 6, 8)?.tick).toBe(102);
  });

  it('plans a narrow interval from its top to the tick its posterior gives, deciding at most its width earlier', () => {
    // A prior equal to the interval steers nothing but makes planTick work from the posterior.
    const fromPosterior = (server: ServerState, now: number, aimed: number, support?: Interval) =>
      planTick({ ...server, prior: server.interval }, now, aimed, 8, support);
    // Round trips of 1 ms, and of 0.19 s, where a check near the span's end is kept for one aim and not another.
    const paths = [
      { lows: sharp.lows, rtts: sharp.rtts },
      { lows: [0.3, 0.305 - 1, 0.301, 0.304 - 1], rtts: [0.19, 0.19, 0.19, 0.19] },
    ];
    let compared = 0;
    for (const path of paths)
      for (const width of [0.0005, 0.002, 0.01, 0.019])
        for (const teamed of [false, true])
          for (let now = 100.1; now < 101.5; now += 0.025)
            for (let aimed = 1; aimed <= 9; aimed += 1) {
              const server = { ...sharp, ...path, interval: { low: 0.3, high: 0.3 + width } };
              const support = teamed ? { low: 0.3 + width / 4, high: 0.3 + width / 2 } : undefined;
              const fromTop = planTick(server, now, aimed, 8, support);
              const exact = fromPosterior(server, now, aimed, support);
              expect(fromTop?.tick).toBe(exact?.tick);
              const earlier = (exact?.decideAt ?? NaN) - (fromTop?.decideAt ?? NaN);
              expect(earlier).toBeGreaterThanOrEqual(0);
              expect(earlier).toBeLessThanOrEqual(width + 1e-9);
              compared += 1;
            }
    expect(compared).toBe(2 * 4 * 2 * 56 * 9);
  });

  it('plans from the posterior where the interval is wider, or a prior may have to be dropped', () => {
    const wide = { ...sharp, interval: { low: 0.3, high: 0.33 } };
    for (const aimed of [1, 6, 8])
      expect(planTick(wide, 100.2, aimed, 8)).toEqual(planTick({ ...wide, prior: wide.interval }, 100.2, aimed, 8));
    // A prior the server's own answers left behind is dropped, however narrow the interval.
    expect(planTick({ ...sharp, prior: { low: 0.5, high: 0.6 } }, 100.2, 1, 8)?.dropPrior).toBe(true);
  });
});
