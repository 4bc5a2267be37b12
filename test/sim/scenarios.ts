// The cases the simulation runs: honest servers on clean and jittery paths, and every fault
// real servers were seen to show. Each run draws its truth and faults from its seed.
import type { SimPath, SimServer } from './model.js';

export interface Scenario {
  name: string;
  /**
   * Servers for one run and the true offset (server UTC - local) at the end; `earlier`, what it
   * was before a step of the servers' clocks, which an interim estimate may still hold.
   */
  draw(uniform: () => number): { servers: SimServer[]; truth: number; earlier?: number; faulty: number[] };
  /**
   * More than half of the distinct servers honest (one clock, Date fresh within the
   * staleness allowance), or fewer than three servers and none worse than a lagging Date:
   * then the published bound must hold the truth, every run.
   */
  sound: boolean;
  /** The reason a faulty server must be named with, when it is caught. */
  reason?: RegExp;
}

export const PATHS: Record<string, SimPath> = {
  loopback: { up: 0.0001, down: 0.0001, jitter: 0.00003 },
  'loopback, 5 % of legs stalled up to 0.5 s': {
    up: 0.0001,
    down: 0.0001,
    jitter: 0.00003,
    spikes: { probability: 0.05, max: 0.5 },
  },
  '20±5 ms': { up: 0.02, down: 0.02, jitter: 0.005 },
  '50±10 ms': { up: 0.05, down: 0.05, jitter: 0.01 },
  'asymmetric 40/5 ms': { up: 0.04, down: 0.005, jitter: 0.002 },
};

const between = (uniform: () => number, low: number, high: number): number => low + uniform() * (high - low);

/** An honest server: its clock the truth, its Date cached up to 2 ms past the tick now and then (nginx, Node). */
const honest = (truth: number, path: SimPath, uniform: () => number): SimServer => ({
  clocks: [truth],
  stale: uniform() < 0.5 ? 0.0015 : 0,
  path,
});

export function honestScenario(count: number, pathName: string): Scenario {
  const path = PATHS[pathName] as SimPath;
  return {
    name: `${count} honest, ${pathName}`,
    sound: true,
    draw(uniform) {
      const truth = between(uniform, -2, 2);
      return { servers: Array.from({ length: count }, () => honest(truth, path, uniform)), truth, faulty: [] };
    },
  };
}

/** The reasons a server that is not one clock (backends apart behind a balancer) may be named with. */
const ONE_CLOCK_BROKEN = /not one clock|clock stepped|excludes the majority|does not advance/;

/** `good` honest servers plus the faulty ones `fault` makes. */
function mixed(
  name: string,
  good: number,
  fault: (truth: number, uniform: () => number) => SimServer[],
  sound: boolean,
  reason?: RegExp,
): Scenario {
  return {
    name,
    sound,
    ...(reason ? { reason } : {}),
    draw(uniform) {
      const truth = between(uniform, -2, 2);
      const servers = Array.from({ length: good }, () => honest(truth, PATHS.loopback as SimPath, uniform));
      const faulty = fault(truth, uniform);
      return { servers: [...servers, ...faulty], truth, faulty: faulty.map((_, index) => good + index) };
    },
  };
}

const loopback = PATHS.loopback as SimPath;

/** The reasons a server whose clock stepped may be named with. */
const STEPPED = /clock stepped|not one clock|does not advance|excludes the majority/;

/**
 * Three servers whose clocks all step by `by` (drawn) at once, 2.5-5 s into the measurement
 * (an upstream they all follow stepped): the truth is the new time, `earlier` the old one.
 */
function allStep(name: string, path: SimPath, by: (uniform: () => number) => number, sound: boolean): Scenario {
  return {
    name,
    sound,
    reason: STEPPED,
    draw(uniform) {
      const before = between(uniform, -2, 2);
      const step = { at: 1_000_000 + between(uniform, 2.5, 5), by: (uniform() < 0.5 ? -1 : 1) * by(uniform) };
      const servers = [0, 1, 2].map((): SimServer => ({ clocks: [before], step, path }));
      return { servers, truth: before + step.by, earlier: before, faulty: [0, 1, 2] };
    },
  };
}

export const FAULTS: Scenario[] = [
  // A Date cache refreshed on its own monotonic second (lighttpd): any lag in [0, 1) s.
  mixed(
    '2 honest + lagging Date (0-1 s)',
    2,
    (truth, uniform) => [{ clocks: [truth], lag: between(uniform, 0, 1), path: loopback }],
    true,
    /lags the majority/,
  ),
  mixed(
    '2 honest + lagging Date (3-5 ms)',
    2,
    (truth, uniform) => [{ clocks: [truth], lag: between(uniform, 0.003, 0.005), path: loopback }],
    true,
  ),
  mixed(
    '1 honest + lagging Date (0-1 s)',
    1,
    (truth, uniform) => [{ clocks: [truth], lag: between(uniform, 0, 1), path: loopback }],
    true,
  ),
  mixed(
    'lagging Date alone (0-1 s)',
    0,
    (truth, uniform) => [{ clocks: [truth], lag: between(uniform, 0, 1), path: loopback }],
    true,
  ),
  // Configured three, two refuse: the one that answers is alone, whatever was configured.
  mixed(
    '2 dead + lagging Date (0.6 s)',
    0,
    (truth) => [
      { clocks: [truth], dead: true, path: loopback },
      { clocks: [truth], lag: 0.6, path: loopback },
      { clocks: [truth], dead: true, path: loopback },
    ],
    true,
  ),
  // Two that agree of five configured are no majority, whatever they say.
  mixed(
    '2 liars agreeing + 3 dead',
    0,
    (truth) =>
      [0, 1, 2]
        .map((): SimServer => ({ clocks: [truth], dead: true, path: loopback }))
        .concat([
          { clocks: [truth + 0.4], path: loopback },
          { clocks: [truth + 0.4], path: loopback },
        ]),
    true,
  ),
  // A load balancer over backends whose clocks differ.
  mixed(
    '2 honest + load balancer (backends 0.25 s apart, round robin)',
    2,
    (truth) => [{ clocks: [truth, truth + 0.25], path: loopback }],
    true,
    ONE_CLOCK_BROKEN,
  ),
  mixed(
    '2 honest + load balancer (backends 0.25 s apart, random)',
    2,
    (truth) => [{ clocks: [truth, truth + 0.25], balance: 'random', path: loopback }],
    true,
    ONE_CLOCK_BROKEN,
  ),
  mixed(
    '2 honest + load balancer (backends 20 ms apart)',
    2,
    (truth) => [{ clocks: [truth - 0.02, truth], path: loopback }],
    true,
  ),
  mixed(
    'load balancer alone (0.25 s apart)',
    0,
    (truth) => [{ clocks: [truth, truth + 0.25], path: loopback }],
    false,
    ONE_CLOCK_BROKEN,
  ),
  // A clock that steps by a fraction of a second during the measurement.
  mixed(
    '2 honest + clock step (0.05-0.9 s)',
    2,
    (truth, uniform) => [
      {
        clocks: [truth],
        step: {
          at: 1_000_000 + between(uniform, 1.5, 6.5),
          by: (uniform() < 0.5 ? -1 : 1) * between(uniform, 0.05, 0.9),
        },
        path: loopback,
      },
    ],
    true,
    STEPPED,
  ),
  // Liars: a clock years off, and clocks a few ms off, a minority.
  mixed(
    '3 honest + 2 liars (5 years ahead, 0.1 s behind)',
    3,
    (truth) => [
      { clocks: [truth + 5 * 365.25 * 86400], path: loopback },
      { clocks: [truth - 0.1], path: loopback },
    ],
    true,
    /excludes the majority/,
  ),
  mixed(
    '3 honest + 2 liars 7 ms off',
    3,
    (truth) => [
      { clocks: [truth - 0.007], path: loopback },
      { clocks: [truth + 0.007], path: loopback },
    ],
    true,
  ),
  // Every server's clock steps at once while legs stall now and then (a loaded machine):
  // the answer must hold the new time or be none.
  allStep(
    'all 3 step together (0.05-0.9 s), 5 % of legs stalled up to 0.5 s',
    { ...loopback, spikes: { probability: 0.05, max: 0.5 } },
    (uniform) => between(uniform, 0.05, 0.9),
    true,
  ),
  // On 50 ± 10 ms paths a step within about two check margins (a round trip and more) of the
  // interval's edge can pass unseen: outside what the checks resolve, reported.
  allStep(
    'all 3 step together (0.13-0.4 s), 50±10 ms paths',
    PATHS['50±10 ms'] as SimPath,
    (uniform) => between(uniform, 0.13, 0.4),
    false,
  ),
  mixed(
    '1 honest + 1 liar 5 years ahead',
    1,
    (truth) => [{ clocks: [truth + 5 * 365.25 * 86400], path: loopback }],
    false,
  ),
];
