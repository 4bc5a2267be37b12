// The point estimate inside a server's hard interval. Taking each probe's stamp at the
// middle of its round trip gives bounds L <= theta < L + 1 that are off by the legs'
// asymmetry e = (up - down) / 2: exact at no delay, noisy with jitter. The posterior
// median of theta under that noise (logistic, scale from the round trips' spread, flat
// prior on the hard interval) is the middle of the bounds when they are sharp, and an
// average of the probes near the tick when they are noisy (where max/min would pick the
// outliers). Servers that agree measure one theta: their likelihoods multiply, which is
// how several servers' probes add up to a finer estimate than any one of them.

/** log of the logistic CDF, stable for any z. */
function logCdf(z: number): number {
  return z > 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

/** The logistic scale for a noise of standard deviation `sigma` (matches the normal's slope). */
const LOGISTIC = Math.sqrt(3) / Math.PI;

// Quantiles are interpolated inside a cell: 256 cells keep one server's call near 0.15 ms,
// which matters because it runs while other servers' answers may be arriving.
const GRID = 256;

/** The asymmetry's standard deviation from the round trips: Var(e) = Var(up - down) / 4 = Var(rtt) / 4 for independent legs. */
export function asymmetrySigma(rtts: readonly number[]): number {
  const mean = rtts.reduce((sum, rtt) => sum + rtt, 0) / rtts.length;
  const variance = rtts.reduce((sum, rtt) => sum + (rtt - mean) ** 2, 0) / Math.max(1, rtts.length - 1);
  // A floor keeps the posterior proper when every round trip is alike.
  return Math.max(Math.sqrt(variance) / 2, 20e-6);
}

/** One server's probes for the posterior: each probe's symmetric lower bound, and the server's noise. */
export interface ProbeGroup {
  lows: readonly number[];
  /** Standard deviation of the legs' asymmetry on this server's path, seconds (> 0). */
  sigma: number;
}

/**
 * The chance that a server of an agreeing majority is off by more than its probes can show
 * (its own clock a few ms out, one path's legs lopsided): each server's likelihood is a
 * mixture with this much of "anything", so one such server cannot drag the joint estimate.
 */
const OUTLIER = 0.05;

/** Log-posterior of theta at the centres of `cells` cells over [low, high] (flat prior), and its maximum. */
function logPosterior(groups: readonly ProbeGroup[], low: number, high: number, cells: number): { logs: Float64Array; best: number } {
  const step = (high - low) / cells;
  const perGroup = groups.map(({ lows, sigma }) => {
    const scale = sigma * LOGISTIC;
    const values = new Float64Array(cells);
    for (let index = 0; index < cells; index += 1) {
      const theta = low + (index + 0.5) * step;
      let sum = 0;
      for (const lower of lows) sum += logCdf((theta - lower) / scale) + logCdf((lower + 1 - theta) / scale);
      values[index] = sum;
    }
    return values;
  });
  const logs = perGroup.length === 1 ? (perGroup[0] ?? new Float64Array(cells)) : new Float64Array(cells);
  if (perGroup.length > 1) {
    for (const values of perGroup) {
      const peak = Math.max(...values);
      for (let index = 0; index < cells; index += 1) {
        // log((1 - OUTLIER) L / max L + OUTLIER), stable for any log-likelihood.
        const relative = (values[index] ?? -Infinity) - peak;
        logs[index] = (logs[index] ?? 0) + Math.log(OUTLIER + (1 - OUTLIER) * Math.exp(relative));
      }
    }
  }
  return { logs, best: Math.max(...logs) };
}

// Cells whose posterior is below e^-30 of the peak carry nothing a quantile can see.
const NEGLIGIBLE = 30;
const COARSE = GRID / 4;

/**
 * Quantiles (each in (0, 1)) of theta's posterior on [support.low, support.high] given
 * several servers' probes, all measuring the same theta (one server: its own estimate;
 * the servers that agree: the joint one). A coarse pass finds where the mass is and the
 * fine one grids just that, so a posterior much narrower than the support keeps its
 * resolution (20 servers x 8 probes: about 3 ms).
 */
export function posteriorQuantiles(groups: readonly ProbeGroup[], support: { low: number; high: number }, quantiles: readonly number[]): number[] {
  const probes = groups.filter((group) => group.lows.length > 0);
  const middle = (support.low + support.high) / 2;
  if (probes.length === 0) return quantiles.map((quantile) => support.low + quantile * (support.high - support.low));
  // One server: outside max(lows) - 8 sigma .. min(lows) + 1 + 8 sigma its posterior is
  // negligible. Several: any one of them may be the outlier, so the whole support counts.
  let low = support.low;
  let high = support.high;
  for (const { lows, sigma } of probes.length === 1 ? probes : []) {
    low = Math.max(low, Math.max(...lows) - 8 * sigma);
    high = Math.min(high, Math.min(...lows) + 1 + 8 * sigma);
  }
  // The probes' own bounds miss the support (noise, or servers that disagree): its middle.
  if (!(high > low)) return quantiles.map(() => middle);
  const coarse = logPosterior(probes, low, high, COARSE);
  const coarseStep = (high - low) / COARSE;
  const carrying = [...coarse.logs.keys()].filter((index) => (coarse.logs[index] ?? -Infinity) > coarse.best - NEGLIGIBLE);
  // A cell either side: a peak narrower than a coarse cell may sit just past the best centre.
  const first = Math.max(0, (carrying[0] ?? 0) - 1);
  const last = Math.min(COARSE - 1, (carrying[carrying.length - 1] ?? COARSE - 1) + 1);
  [low, high] = [low + first * coarseStep, low + (last + 1) * coarseStep];
  const { logs, best } = logPosterior(probes, low, high, GRID);
  const step = (high - low) / GRID;
  const weights = Array.from(logs, (value) => Math.exp(value - best));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  return quantiles.map((quantile) => {
    let running = 0;
    for (let index = 0; index < GRID; index += 1) {
      const weight = weights[index] ?? 0;
      if (running + weight >= total * quantile && weight > 0) return low + (index + (total * quantile - running) / weight) * step;
      running += weight;
    }
    return high;
  });
}

/**
 * How much less likely `theta` is than the most likely theta in `support`, for one
 * server's probes: log L(theta) - max log L (0 at the best, negative elsewhere).
 */
export function relativeLogLikelihood(group: ProbeGroup, support: { low: number; high: number }, theta: number): number {
  if (group.lows.length === 0) return 0;
  const at = logPosterior([group], theta, theta, 1).best;
  return Math.min(0, at - logPosterior([group], support.low, support.high, GRID).best);
}

/**
 * Posterior median of theta on [support.low, support.high] given one server's probes:
 * each probe's symmetric lower bound `lows[i]` (its upper bound is lows[i] + 1) and the
 * noise's standard deviation `sigma` (seconds, > 0).
 */
export function posteriorMedian(lows: readonly number[], sigma: number, support: { low: number; high: number }): number {
  return posteriorQuantiles([{ lows, sigma }], support, [0.5])[0] ?? (support.low + support.high) / 2;
}
