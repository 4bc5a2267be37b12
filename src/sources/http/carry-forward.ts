// An interval measured once, held on CLOCK_MONOTONIC_RAW: the one rule for how it widens as
// it ages. Whatever it is of (theta against a realtime timescale rebuilt from the raw clock,
// or ServerClock's phi), it moves only with the raw oscillator's drift against true time, so
// it stays true widened by `drift` times the raw seconds since (honest servers tell true
// time: their own drift is not added). Estimates (source.ts), priors and ServerClock's held
// bound all age by it.
import type { ClockPair } from '../../clock.js';
import { diffSeconds, type Timespec } from '../../time.js';
import type { Interval } from './interval.js';
import type { MeasurementResult } from './measure.js';

/** What an unsteered raw oscillator may drift from true time, ppm. */
export const DRIFT_PPM = 50;

/** How much an interval widens on each side over `elapsed` raw seconds (either way in time), at `driftPpm`. */
export const driftWidening = (elapsed: number, driftPpm = DRIFT_PPM): number => Math.abs(elapsed) * driftPpm * 1e-6;

/** An interval (seconds) that held at raw instant `at`. */
export interface HeldInterval extends Interval {
  at: Timespec;
}

/** `held` at raw instant `now`, widened for the raw seconds since at `driftPpm`. */
export function carry(held: HeldInterval, now: Timespec, driftPpm = DRIFT_PPM): HeldInterval {
  const widen = driftWidening(diffSeconds(now, held.at), driftPpm);
  return { low: held.low - widen, high: held.high + widen, at: now };
}

/**
 * A server's interval of theta (against realtime) `elapsed` raw seconds later, `shift`
 * seconds moved (what the realtime clock was stepped or slewed by, negated), widened as
 * `carry` widens.
 */
export function carryInterval(interval: Interval, elapsed: number, shift = 0): Interval {
  const widen = driftWidening(elapsed);
  return { low: interval.low + shift - widen, high: interval.high + shift + widen };
}

/** A measurement's per-server intervals, theta against realtime as it read at `at`: the next measurement's priors. */
export interface HeldPriors {
  intervals: (Interval | undefined)[];
  at: ClockPair;
}

/** What a measurement leaves to aim the next one (a failed server: nothing). */
export function priorsOf(result: MeasurementResult, at: ClockPair): HeldPriors {
  const intervals = result.servers.map(({ low, high }) => (low === null || high === null ? undefined : { low, high }));
  return { intervals, at };
}

/**
 * The priors moved to `now`: theta is server - realtime, so a realtime clock stepped or
 * slewed since shifts them; the raw clock may drift meanwhile. The result is against
 * realtime at `now`, where the next measurement's steady timescale starts (measure.ts).
 */
export function carryPriors(priors: HeldPriors, now: ClockPair): (Interval | undefined)[] {
  const elapsed = diffSeconds(now.monotonicRaw, priors.at.monotonicRaw);
  const shift = elapsed - diffSeconds(now.realtime, priors.at.realtime);
  return priors.intervals.map((interval) => interval && carryInterval(interval, elapsed, shift));
}
