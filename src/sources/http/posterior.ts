// What the probes say beyond the hard bounds: each server's likelihood of theta and its
// posterior, and the joint posterior of the servers that keep one time. Nothing here is a
// bound (interval.ts makes those; conclusion.ts clamps the point estimate into the bound).
//
// Taking each probe's stamp at the middle of its round trip gives bounds L <= theta < L + 1
// that are off by the legs' asymmetry e = (up - down) / 2: exact at no delay, noisy with
// jitter. The posterior median of theta under that noise (logistic, scale from the round
// trips' spread, flat prior on the hard interval) is the middle of the bounds when they are
// sharp, and an average of the probes near the tick when they are noisy (where max/min
// would pick the outliers). Servers that agree measure one theta: their likelihoods
// multiply, each mixed with a little of a flat density so one server a few ms out cannot
// drag the rest. docs/http-estimator.md has the equations.
import { addSeconds, diffSeconds, type Timespec } from '../../time.js';

/**
 * A probe's lower bound with the stamp taken at the middle of its round trip (symmetric
 * legs), its upper bound one second above: not hard, but what the estimate is made of.
 */
export function symmetricLow(dateSeconds: number, sendTime: Timespec, receiveTime: Timespec): number {
  return diffSeconds({ sec: dateSeconds, nsec: 0 }, addSeconds(sendTime, diffSeconds(receiveTime, sendTime) / 2));
}

/**
 * Beyond this |z| the logistic tail is below 2^-54 of 1: log1p(x) returns x itself, and
 * z - x rounds to z, so the short forms below give the very same doubles.
 */
const TAIL = 38;

/** log of the logistic CDF, stable for any z. */
function logCdf(z: number): number {
  if (z > TAIL) return -Math.exp(-z);
  if (z < -TAIL) return z;
  return z > 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

/** The logistic scale for a noise of standard deviation `sigma` (matches the normal's slope). */
const LOGISTIC = Math.sqrt(3) / Math.PI;

/** The least asymmetry assumed (seconds): keeps a posterior proper when every round trip is alike. */
const SIGMA_FLOOR = 20e-6;

// Quantiles are interpolated inside a cell: 256 cells keep one server's call near 0.15 ms,
// which matters because it runs while other servers' answers may be arriving.
const GRID = 256;
const COARSE = GRID / 4;

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? NaN)
    : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
}

/** A standard deviation from the median absolute deviation: what a few outliers do not move. */
export function madSigma(values: readonly number[]): number {
  const typical = median(values);
  return 1.4826 * median(values.map((value) => Math.abs(value - typical)));
}

/**
 * The asymmetry's spread from the round trips' median absolute deviation (halved as asymmetrySigma is): what a few
 * stalled round trips do not move.
 */
export const typicalAsymmetrySigma = (rtts: readonly number[]): number => madSigma(rtts) / 2;

/**
 * The asymmetry's standard deviation from the round trips: Var(e) = Var(up - down) / 4 = Var(rtt) / 4 for independent
 * legs.
 */
export function asymmetrySigma(rtts: readonly number[]): number {
  const mean = rtts.reduce((sum, rtt) => sum + rtt, 0) / rtts.length;
  const variance = rtts.reduce((sum, rtt) => sum + (rtt - mean) ** 2, 0) / Math.max(1, rtts.length - 1);
  // A floor keeps the posterior proper when every round trip is alike.
  return Math.max(Math.sqrt(variance) / 2, SIGMA_FLOOR);
}

/** One server's probes for the posterior: each probe's symmetric lower bound, and the server's noise. */
export interface ProbeGroup {
  lows: readonly number[];
  /** Standard deviation of the legs' asymmetry on this server's path, seconds (> 0). */
  sigma: number;
}

/**
 * The chance that a server of an agreeing majority is off by more than its probes can show
 * (its own clock a few ms out, one path's legs lopsided): each server's likelihood, as a
 * density, is mixed with this much of a flat one over the support, so one such server
 * cannot drag the joint estimate.
 */
const OUTLIER = 0.05;

interface GriddedLikelihood {
  sigma: number;
  low: number;
  high: number;
  cells: number;
  values: Float64Array;
  /** log of the integral over the grid (logMass), once worked out. */
  mass?: number;
  /** The values mixed with the flat part (logPosterior), for the last density and flat level. */
  mixed?: { logDensity: number; logFlat: number; values: Float64Array };
}

// A server's probes (an array never changed once made) gridded lately: a team's posterior
// is worked out again after each member's answer, over the grid the others' ranges still
// set, so all but the one that answered find theirs here. Read only: callers share them.
const gridded = new WeakMap<readonly number[], GriddedLikelihood[]>();
const GRIDS_KEPT = 4;

/** One server's log-likelihood at the centres of `cells` cells over [low, high] (shared: never written to). */
function logLikelihoods(group: ProbeGroup, low: number, high: number, cells: number): Float64Array {
  return griddedLikelihood(group, low, high, cells).values;
}

function griddedLikelihood({ lows, sigma }: ProbeGroup, low: number, high: number, cells: number): GriddedLikelihood {
  const kept = gridded.get(lows) ?? [];
  const found = kept.find(
    (grid) => grid.cells === cells && grid.low === low && grid.high === high && grid.sigma === sigma,
  );
  if (found) return found;
  const grid = { sigma, low, high, cells, values: computeLikelihoods(lows, sigma, low, high, cells) };
  gridded.set(lows, [grid, ...kept.slice(0, GRIDS_KEPT - 1)]);
  return grid;
}

function computeLikelihoods(
  lows: readonly number[],
  sigma: number,
  low: number,
  high: number,
  cells: number,
): Float64Array {
  const scale = sigma * LOGISTIC;
  const step = (high - low) / cells;
  const values = new Float64Array(cells);
  for (let index = 0; index < cells; index += 1) {
    const theta = low + (index + 0.5) * step;
    let sum = 0;
    for (const lower of lows) sum += logCdf((theta - lower) / scale) + logCdf((lower + 1 - theta) / scale);
    values[index] = sum;
  }
  return values;
}

/** Where one server's likelihood lives: outside max(lows) - 8 sigma .. min(lows) + 1 + 8 sigma it is negligible. */
function ownRange({ lows, sigma }: ProbeGroup, support: { low: number; high: number }): { low: number; high: number } {
  const low = Math.max(support.low, Math.max(...lows) - 8 * sigma);
  const high = Math.min(support.high, Math.min(...lows) + 1 + 8 * sigma);
  return high > low ? { low, high } : support;
}

const logSumExp = (a: number, b: number): number =>
  a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));

/** log of the integral of one server's likelihood, on a fine grid over where it lives. */
function logMass(group: ProbeGroup, support: { low: number; high: number }): number {
  const range = ownRange(group, support);
  // Coarse is enough: the range hugs the likelihood, whose ramps are smooth on its scale.
  const grid = griddedLikelihood(group, range.low, range.high, COARSE);
  if (grid.mass !== undefined) return grid.mass;
  const values = grid.values;
  const peak = Math.max(...values);
  const sum = values.reduce((total, value) => total + Math.exp(value - peak), 0);
  grid.mass = peak + Math.log((sum * (range.high - range.low)) / COARSE);
  return grid.mass;
}

/** How `groups` combine: one server alone, or several as mixtures (their masses and the flat part). */
interface Combination {
  masses: number[] | undefined;
  logFlat: number;
}

function combination(groups: readonly ProbeGroup[], support: { low: number; high: number }): Combination {
  return groups.length === 1
    ? { masses: undefined, logFlat: 0 }
    : {
        masses: groups.map((group) => logMass(group, support)),
        logFlat: Math.log(OUTLIER / (support.high - support.low)),
      };
}

/** Log-posterior of theta at the centres of `cells` cells over [low, high] (flat prior), and its maximum. */
function logPosterior(
  groups: readonly ProbeGroup[],
  low: number,
  high: number,
  cells: number,
  { masses, logFlat }: Combination,
): { logs: Float64Array; best: number } {
  const perGroup = groups.map((group) => griddedLikelihood(group, low, high, cells));
  if (masses === undefined) {
    const logs = perGroup[0]?.values ?? new Float64Array(cells);
    return { logs, best: Math.max(...logs) };
  }
  const logs = new Float64Array(cells);
  perGroup.forEach((grid, group) => {
    const mixed = mixedLikelihood(grid, Math.log(1 - OUTLIER) - (masses[group] ?? 0), logFlat);
    for (let index = 0; index < cells; index += 1) logs[index] = (logs[index] ?? 0) + (mixed[index] ?? 0);
  });
  return { logs, best: Math.max(...logs) };
}

/** One server's likelihood as a density mixed with the flat part, per cell (kept with its grid). */
function mixedLikelihood(grid: GriddedLikelihood, logDensity: number, logFlat: number): Float64Array {
  if (grid.mixed?.logDensity === logDensity && grid.mixed.logFlat === logFlat) return grid.mixed.values;
  const values = new Float64Array(grid.cells);
  for (let index = 0; index < grid.cells; index += 1)
    values[index] = logSumExp((grid.values[index] ?? -Infinity) + logDensity, logFlat);
  grid.mixed = { logDensity, logFlat, values };
  return values;
}

// Cells below a millionth of the peak carry nothing a quantile can see.
const NEGLIGIBLE = Math.log(1e6);

/**
 * Quantiles (each in (0, 1)) of theta's posterior on [support.low, support.high] given
 * several servers' probes, all measuring the same theta (one server: its own estimate;
 * the servers that agree: the joint one). A coarse pass finds where the mass is and the
 * fine one grids just that, so a posterior much narrower than the support keeps its
 * resolution (20 servers x 8 probes: about 3 ms).
 */
export function posteriorQuantiles(
  groups: readonly ProbeGroup[],
  support: { low: number; high: number },
  quantiles: readonly number[],
): number[] {
  const probes = groups.filter((group) => group.lows.length > 0);
  const middle = (support.low + support.high) / 2;
  if (probes.length === 0) return quantiles.map((quantile) => support.low + quantile * (support.high - support.low));
  // Where the servers' likelihoods live (any one of them may be the outlier, so where any
  // of them lives): elsewhere only the flat parts remain, and a sharp peak could fall
  // between the cells of a grid over the whole support.
  const ranges = probes.map((group) => ownRange(group, support));
  let low = Math.min(...ranges.map((range) => range.low));
  let high = Math.max(...ranges.map((range) => range.high));
  if (!(high > low)) return quantiles.map(() => middle);
  const mixing = combination(probes, support);
  const coarse = logPosterior(probes, low, high, COARSE, mixing);
  const coarseStep = (high - low) / COARSE;
  const carrying = [...coarse.logs.keys()].filter(
    (index) => (coarse.logs[index] ?? -Infinity) > coarse.best - NEGLIGIBLE,
  );
  // A cell either side: a peak narrower than a coarse cell may sit just past the best centre.
  const first = Math.max(0, (carrying[0] ?? 0) - 1);
  const last = Math.min(COARSE - 1, (carrying[carrying.length - 1] ?? COARSE - 1) + 1);
  [low, high] = [low + first * coarseStep, low + (last + 1) * coarseStep];
  const { logs, best } = logPosterior(probes, low, high, GRID, mixing);
  const step = (high - low) / GRID;
  const weights = Array.from(logs, (value) => Math.exp(value - best));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  return quantiles.map((quantile) => {
    let running = 0;
    for (let index = 0; index < GRID; index += 1) {
      const weight = weights[index] ?? 0;
      if (running + weight >= total * quantile && weight > 0)
        return low + (index + (total * quantile - running) / weight) * step;
      running += weight;
    }
    return high;
  });
}

/** One server's log-likelihood at `theta` (0 without probes). */
export function logLikelihoodAt({ lows, sigma }: ProbeGroup, theta: number): number {
  const [at = -Infinity] = computeLikelihoods(lows, sigma, theta, theta, 1);
  return at;
}

/**
 * The most one server's log-likelihood reaches in `support` (0 without probes): what logLikelihoodAt is measured
 * against.
 */
export function bestLogLikelihood(group: ProbeGroup, support: { low: number; high: number }): number {
  return group.lows.length === 0 ? 0 : Math.max(...logLikelihoods(group, support.low, support.high, GRID));
}

/**
 * Posterior median of theta on [support.low, support.high] given one server's probes:
 * each probe's symmetric lower bound `lows[i]` (its upper bound is lows[i] + 1) and the
 * noise's standard deviation `sigma` (seconds, > 0).
 */
export function posteriorMedian(
  lows: readonly number[],
  sigma: number,
  support: { low: number; high: number },
): number {
  return posteriorQuantiles([{ lows, sigma }], support, [0.5])[0] ?? (support.low + support.high) / 2;
}
