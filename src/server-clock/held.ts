// Intervals for phi = server time - u(raw), where u is the clock's own steady timescale:
// realtime as it read when the clock was made, plus the raw seconds elapsed since. phi
// does not move when the local realtime clock is stepped or slewed, only with the raw
// oscillator's drift, so an interval measured once stays true, widened with age.
import { diffSeconds, type Timespec } from '../time.js';
import { intersect, selectMajority, type Interval } from '../sources/http/interval.js';

/**
 * How far a Date cache refreshed on a timer may lag the second it names (lighttpd refreshes
 * on its monotonic clock's second: any lag in [0, 1) s).
 */
export const DATE_LAG = 1;

/** An interval of phi (seconds) that held at raw instant `at`. */
export interface HeldInterval extends Interval {
  at: Timespec;
}

/** `held` at raw instant `now`, widened `drift` (a fraction, 50 ppm = 50e-6) of the raw seconds since. */
export function carry(held: HeldInterval, now: Timespec, drift: number): HeldInterval {
  const widen = Math.abs(diffSeconds(now, held.at)) * drift;
  return { low: held.low - widen, high: held.high + widen, at: now };
}

/**
 * A new measurement of one server against what is held: their intersection when they
 * meet, else the new one (the server's clock moved, or the old bound was broken by a
 * fault no arithmetic sees); `replaced` says which.
 */
export function merge(held: HeldInterval | undefined, fresh: HeldInterval, drift: number): { interval: HeldInterval; replaced: boolean } {
  if (held === undefined) return { interval: fresh, replaced: false };
  const common = intersect(carry(held, fresh.at, drift), fresh);
  return common ? { interval: { ...common, at: fresh.at }, replaced: false } : { interval: fresh, replaced: true };
}

export interface HeldSelection {
  /**
   * Every point covered by more than half of the intervals (of two that meet, by either):
   * it holds the truth whenever more than half of the servers are honest, whichever they
   * are. Marzullo's region alone would not: a liar overlapping the honest servers' edge
   * narrows it to a part the truth may lie outside.
   */
  interval: HeldInterval;
  /** The region covered by the most intervals (Marzullo's): where the point estimate goes. */
  core: Interval;
  /** Indexes (into the input) of the servers that contain the core. */
  truechimers: number[];
  /** Servers with an interval. */
  candidates: number;
}

/** The span of the points covered by at least `covering` of `intervals`. */
function coveredSpan(intervals: readonly Interval[], covering: number): Interval | undefined {
  const edges = intervals.flatMap((interval) => [
    { at: interval.low, step: 1 },
    { at: interval.high, step: -1 },
  ]);
  // Starts before ends at the same point: touching intervals agree.
  edges.sort((x, y) => x.at - y.at || y.step - x.step);
  let low: number | undefined;
  let high: number | undefined;
  let count = 0;
  for (const edge of edges) {
    if (edge.step === -1 && count >= covering) high = edge.at;
    count += edge.step;
    if (edge.step === 1 && count >= covering) low ??= edge.at;
  }
  return low === undefined || high === undefined ? undefined : { low, high };
}

/** Every server's interval carried to `now`, then Marzullo's majority, as `htntp http` selects. */
export function selectHeld(intervals: readonly (HeldInterval | undefined)[], now: Timespec, drift: number): HeldSelection | undefined {
  const candidates = intervals.flatMap((held, index) => (held ? [{ index, interval: carry(held, now, drift) }] : []));
  const carried = candidates.map((candidate) => candidate.interval);
  const selection = selectMajority(carried);
  const span = coveredSpan(carried, carried.length === 2 ? 1 : Math.floor(carried.length / 2) + 1);
  if (selection === undefined || span === undefined) return undefined;
  return {
    interval: { ...span, at: now },
    core: selection.interval,
    truechimers: selection.truechimers.map((position) => candidates[position]?.index ?? -1),
    candidates: candidates.length,
  };
}
