// The point estimate inside a server's hard interval. Taking each probe's stamp at the
// middle of its round trip gives bounds L <= theta < L + 1 that are off by the legs'
// asymmetry e = (up - down) / 2: exact at no delay, noisy with jitter. The posterior
// median of theta under that noise (logistic, scale from the round trips' spread, flat
// prior on the hard interval) is the middle of the bounds when they are sharp, and an
// average of the probes near the tick when they are noisy (where max/min would pick the
// outliers).

/** log of the logistic CDF, stable for any z. */
function logCdf(z: number): number {
  return z > 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

/** The logistic scale for a noise of standard deviation `sigma` (matches the normal's slope). */
const LOGISTIC = Math.sqrt(3) / Math.PI;

// The median is interpolated inside a cell: 256 cells keep one call near 0.15 ms, which
// matters because it runs while other servers' answers may be arriving.
const GRID = 256;

/** The asymmetry's standard deviation from the round trips: Var(e) = Var(up - down) / 4 = Var(rtt) / 4 for independent legs. */
export function asymmetrySigma(rtts: readonly number[]): number {
  const mean = rtts.reduce((sum, rtt) => sum + rtt, 0) / rtts.length;
  const variance = rtts.reduce((sum, rtt) => sum + (rtt - mean) ** 2, 0) / Math.max(1, rtts.length - 1);
  // A floor keeps the posterior proper when every round trip is alike.
  return Math.max(Math.sqrt(variance) / 2, 20e-6);
}

/**
 * Posterior median of theta on [support.low, support.high] given each probe's symmetric
 * lower bound `lows[i]` (its upper bound is lows[i] + 1) and the noise's standard
 * deviation `sigma` (seconds, > 0).
 */
export function posteriorMedian(lows: readonly number[], sigma: number, support: { low: number; high: number }): number {
  // Outside max(lows) - 8 sigma .. min(lows) + 1 + 8 sigma the posterior is negligible.
  const low = Math.max(support.low, Math.max(...lows) - 8 * sigma);
  const high = Math.min(support.high, Math.min(...lows) + 1 + 8 * sigma);
  if (!(high > low)) return (support.low + support.high) / 2;
  const scale = sigma * LOGISTIC;
  const step = (high - low) / GRID;
  const logs = new Float64Array(GRID);
  let best = -Infinity;
  for (let index = 0; index < GRID; index += 1) {
    const theta = low + (index + 0.5) * step;
    let sum = 0;
    for (const lower of lows) sum += logCdf((theta - lower) / scale) + logCdf((lower + 1 - theta) / scale);
    logs[index] = sum;
    if (sum > best) best = sum;
  }
  let total = 0;
  for (let index = 0; index < GRID; index += 1) total += Math.exp((logs[index] ?? -Infinity) - best);
  let running = 0;
  for (let index = 0; index < GRID; index += 1) {
    const weight = Math.exp((logs[index] ?? -Infinity) - best);
    if (running + weight >= total / 2) return low + (index + (total / 2 - running) / weight) * step;
    running += weight;
  }
  return (low + high) / 2;
}
