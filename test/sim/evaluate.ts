// Many seeded runs of one scenario, summed up: how often the published bound holds the
// truth, how often each faulty server is named, and the error against the oracle's.
import type { Strategy } from '../../src/sources/http/plan.js';
import type { Conclusion } from '../../src/sources/http/conclusion.js';
import { median } from '../../src/sources/http/posterior.js';
import { seededRandom } from '../helpers/random.js';
import { oracle, simulate } from './run.js';
import type { Scenario } from './scenarios.js';

export interface Figures {
  runs: number;
  /** Runs that published an estimate. */
  estimates: number;
  /** Estimates whose bound holds the truth. */
  covered: number;
  /** Honest servers' own intervals that hold the truth, of all honest servers that gave one. */
  honestCovered: number;
  honestIntervals: number;
  /** Runs in which every faulty server was left out (failed or falseticker). */
  named: number;
  /** Reasons given for faulty servers that were left out, that do not match the scenario's. */
  wrongReasons: string[];
  /** |estimate - truth| of each estimate, seconds. */
  errors: number[];
  /** Published half-widths, seconds. */
  bounds: number[];
  /** |oracle - truth| of each run, seconds (honest scenarios only). */
  floor: number[];
  /** Strategy `sweep`: runs with an interim estimate, and those whose interim bound holds the truth. */
  interims: number;
  interimsCovered: number;
  /** Interim half-widths, seconds. */
  interimBounds: number[];
}

const holds = (conclusion: Conclusion, truth: number): boolean =>
  conclusion.bound !== undefined && conclusion.bound.low <= truth + 1e-9 && truth <= conclusion.bound.high + 1e-9;

export function evaluate(
  scenario: Scenario,
  runs: number,
  {
    probes = 8,
    seed = 1,
    withOracle = false,
    strategy = 'bisect',
  }: { probes?: number; seed?: number; withOracle?: boolean; strategy?: Strategy } = {},
): Figures {
  const figures: Figures = {
    runs,
    estimates: 0,
    covered: 0,
    honestCovered: 0,
    honestIntervals: 0,
    named: 0,
    wrongReasons: [],
    errors: [],
    bounds: [],
    floor: [],
    interims: 0,
    interimsCovered: 0,
    interimBounds: [],
  };
  for (let run = 0; run < runs; run += 1) {
    const runSeed = seed * 100_003 + run;
    const { servers, truth, earlier, faulty } = scenario.draw(seededRandom(runSeed));
    const outcome = simulate(servers, { probes, seed: runSeed, strategy });
    const { interim } = outcome;
    if (interim?.bound) {
      figures.interims += 1;
      if (holds(interim, truth) || (earlier !== undefined && holds(interim, earlier))) figures.interimsCovered += 1;
      figures.interimBounds.push((interim.bound.high - interim.bound.low) / 2);
    }
    const { theta } = outcome.conclusion;
    if (theta !== undefined && outcome.error !== undefined) {
      figures.estimates += 1;
      // Whole nanoseconds: the send and receive times are rounded to them.
      if (Math.abs(theta - truth) <= outcome.error + 1e-9) figures.covered += 1;
      figures.errors.push(Math.abs(theta - truth));
      figures.bounds.push(outcome.error);
    }
    outcome.servers.forEach(({ state }, index) => {
      if (faulty.includes(index) || state.interval === undefined || state.failed) return;
      figures.honestIntervals += 1;
      if (state.interval.low <= truth + 1e-9 && truth <= state.interval.high + 1e-9) figures.honestCovered += 1;
    });
    const verdicts = faulty.map((index) => outcome.conclusion.servers[index]);
    if (verdicts.every((verdict) => verdict?.status !== 'ok')) figures.named += 1;
    for (const verdict of verdicts) {
      if (verdict && verdict.status !== 'ok' && scenario.reason && !scenario.reason.test(verdict.reason ?? ''))
        figures.wrongReasons.push(verdict.reason ?? '');
    }
    if (withOracle) figures.floor.push(Math.abs(oracle(servers, truth, { probes, seed: runSeed }).joint - truth));
  }
  return figures;
}

/** The q-quantile (0..1) of `values`, NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);
}

export { median };
