// The arithmetic of Date probes: one probe's hard bounds on theta (server clock - local
// clock), their intersection per server, and Marzullo's selection across servers.
import { addSeconds, diffSeconds, type Timespec } from '../../time.js';

/** theta lies in [low, high] (seconds). */
export interface Interval {
  low: number;
  high: number;
}

/**
 * One probe: sent at local `sendTime`, first byte at `receiveTime`, server stamped Date
 * second `dateSeconds` somewhere in between, so D - b < theta < D + 1 - a. A server that
 * caches its Date string (nginx per event-loop turn, Node per second on a timer) may hand
 * out the previous second for `staleness` seconds after its tick: that widens the top.
 */
export function probeInterval(dateSeconds: number, sendTime: Timespec, receiveTime: Timespec, staleness = 0): Interval {
  const stamp = { sec: dateSeconds, nsec: 0 };
  return { low: diffSeconds(stamp, receiveTime), high: diffSeconds(stamp, sendTime) + 1 + staleness };
}

/**
 * The same probe's lower bound with the stamp taken at the middle of its round trip
 * (symmetric legs), its upper bound one second above: not hard, but what the estimate is
 * made of (estimate.ts).
 */
export function symmetricLow(dateSeconds: number, sendTime: Timespec, receiveTime: Timespec): number {
  return diffSeconds({ sec: dateSeconds, nsec: 0 }, addSeconds(sendTime, diffSeconds(receiveTime, sendTime) / 2));
}

/** The common part of two intervals, or undefined when they do not meet. */
export function intersect(a: Interval, b: Interval): Interval | undefined {
  const low = Math.max(a.low, b.low);
  const high = Math.min(a.high, b.high);
  return low <= high ? { low, high } : undefined;
}

export const midpoint = (interval: Interval): number => (interval.low + interval.high) / 2;

export interface Selection {
  /** The region every truechimer contains. */
  interval: Interval;
  /** Indexes (into the input) of the servers that contain it. */
  truechimers: number[];
}

/**
 * Marzullo's algorithm (NTP's clock selection without the distance weighting): the
 * region covered by the most intervals. It decides only with a majority (more than
 * half of `intervals`); otherwise undefined. Equal counts in disjoint regions: the
 * narrowest region wins.
 */
export function selectMajority(intervals: readonly Interval[]): Selection | undefined {
  const edges = intervals.flatMap((interval) => [
    { at: interval.low, step: 1 },
    { at: interval.high, step: -1 },
  ]);
  // Starts before ends at the same point: touching intervals agree.
  edges.sort((x, y) => x.at - y.at || y.step - x.step);
  let best: Interval | undefined;
  let bestCount = 0;
  let count = 0;
  edges.forEach((edge, index) => {
    count += edge.step;
    const next = edges[index + 1];
    if (edge.step !== 1 || next === undefined) return;
    const region = { low: edge.at, high: next.at };
    const narrower = best !== undefined && region.high - region.low < best.high - best.low;
    if (count > bestCount || (count === bestCount && narrower)) {
      bestCount = count;
      best = region;
    }
  });
  if (best === undefined || bestCount * 2 <= intervals.length) return undefined;
  const region = best;
  const truechimers = intervals.flatMap((interval, index) => (interval.low <= region.low && interval.high >= region.high ? [index] : []));
  return { interval: region, truechimers };
}
