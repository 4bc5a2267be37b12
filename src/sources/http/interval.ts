// The safety argument, and nothing else: what one probe proves about theta (server clock
// - local clock), when a server's probes cannot all come from one clock, and which region
// holds the truth when more than half of the servers are honest. Every published bound is
// made here; nothing in this file estimates (posterior.ts does). docs/http-estimator.md
// states the assumptions and the proof.
import { diffSeconds, type Timespec } from '../../time.js';

/** theta lies in [low, high] (seconds). */
export interface Interval {
  low: number;
  high: number;
}

/**
 * How long after its tick a server may still send the previous second's cached Date (nginx
 * caches per event-loop turn, Node per second on a timer, seen 1 ms late on an idle
 * loopback): part of what "an honest server" means (assumption A1).
 */
export const DATE_STALENESS = 0.002;

/**
 * How far a Date cache refreshed on a timer may lag the second it names (lighttpd
 * refreshes on its monotonic clock's second: any lag in [0, 1) s). A bound from one server
 * alone must leave room for it above.
 */
export const DATE_LAG = 1;

/**
 * One probe: sent at local `sendTime`, first byte at `receiveTime`, server stamped Date
 * second `dateSeconds` somewhere in between, so D - b < theta < D + 1 - a, the top widened
 * by `staleness` for a Date string cached past its tick.
 */
export function probeInterval(
  dateSeconds: number,
  sendTime: Timespec,
  receiveTime: Timespec,
  staleness = DATE_STALENESS,
): Interval {
  const stamp = { sec: dateSeconds, nsec: 0 };
  return { low: diffSeconds(stamp, receiveTime), high: diffSeconds(stamp, sendTime) + 1 + staleness };
}

/** The common part of two intervals, or undefined when they do not meet. */
export function intersect(a: Interval, b: Interval): Interval | undefined {
  const low = Math.max(a.low, b.low);
  const high = Math.min(a.high, b.high);
  return low <= high ? { low, high } : undefined;
}

/** The common part of all of `intervals` (undefined for none, or when they do not all meet). */
export function intersectAll(intervals: readonly Interval[]): Interval | undefined {
  const [first, ...rest] = intervals;
  return rest.reduce<Interval | undefined>((shared, interval) => shared && intersect(shared, interval), first);
}

export const midpoint = (interval: Interval): number => (interval.low + interval.high) / 2;

export const width = (interval: Interval): number => interval.high - interval.low;

/** The half-width around `offset` that still covers all of `interval`. */
export const errorAround = (offset: number, interval: Interval): number =>
  Math.max(offset - interval.low, interval.high - offset);

/** One server's probes so far, each with its Date second. */
export interface ProbeBounds extends Interval {
  dateSeconds: number;
}

/** What a server's probes prove: its interval, or why they cannot come from one steady clock. */
export type ServerBounds = { interval: Interval; fault?: undefined } | { interval?: undefined; fault: ClockFault };

/** Why a server's answers cannot come from one steady clock, and how far its time stepped where that shows. */
export interface ClockFault {
  reason: string;
  /** The reading given: one clock that stepped, a Date that stopped advancing, or several clocks (a balancer). */
  kind: 'stepped' | 'stuck' | 'clocks';
  /**
   * The step between the answers before and after it, seconds, where they split so (for several clocks too: a step seen
   * by a check or two may fit either reading); for a Date that stopped advancing, the least step back that explains it.
   */
  step: number | undefined;
}

const ms = (seconds: number): string => `${(seconds * 1000).toFixed(1)} ms`;

/**
 * The intersection of a server's probe intervals. An honest one-clock server's probes all
 * contain its theta, so they always meet; when they do not, the reason is named: a Date
 * that stopped advancing, a clock that stepped (the probes before and after a point agree
 * among themselves, and not with strictly alternating answers), or several clocks.
 */
export function serverBounds(probes: readonly ProbeBounds[]): ServerBounds {
  const interval = intersectAll(probes);
  if (interval !== undefined) return { interval };
  const last = probes[probes.length - 1];
  let sameSince = probes.length - 1;
  while (last && sameSince > 0 && probes[sameSince - 1]?.dateSeconds === last.dateSeconds) sameSince -= 1;
  const firstSame = probes[sameSince];
  // The same Date second although the last probe was sent more than a second (and the
  // staleness allowance) after the first of them was answered: its interval lies wholly below.
  // Two clocks answering in turn (a load balancer) can do that too, each advancing: with three
  // or more answers from each that meet among themselves, that is the reading given.
  const twoClocks = probes.length >= 6 && alternatingClocks(probes) !== undefined;
  if (last && firstSame && firstSame !== last && last.high < firstSame.low && !twoClocks) {
    // A clock stepped back: by at least the gap between the answers.
    const back = last.high - firstSame.low;
    return {
      fault: {
        reason:
          `Date does not advance with local time (stuck at second ${last.dateSeconds}): a cached or frozen Date, ` +
          `or a clock stepped back by ${ms(-back)} or more`,
        kind: 'stuck',
        step: back,
      },
    };
  }
  const split = stepPoint(probes);
  const apart = probes.length >= 4 ? alternatingClocks(probes) : undefined;
  if (split !== undefined && apart === undefined) {
    return {
      fault: {
        reason:
          `clock stepped by about ${ms(split.by)} between probes ${split.at} and ${split.at + 1}: the Date ` +
          `intervals before and after do not meet`,
        kind: 'stepped',
        step: split.by,
      },
    };
  }
  const alternate = apart === undefined ? '' : `, answers alternate between clocks about ${ms(apart)} apart`;
  // Where a step fits too (the few checks that can see one contradict, of either parity), it is named beside.
  const stepped = split === undefined ? '' : `; or one clock stepped by about ${ms(split.by)} after probe ${split.at}`;
  return {
    fault: {
      reason:
        `not one clock: Date intervals do not meet after ${probes.length} probes (a load balancer over backends ` +
        `whose clocks differ${alternate}${stepped})`,
      kind: 'clocks',
      step: split?.by,
    },
  };
}

/** How far apart two clocks are, when the even and the odd answers each meet among themselves. */
function alternatingClocks(probes: readonly ProbeBounds[]): number | undefined {
  const even = intersectAll(probes.filter((_, index) => index % 2 === 0));
  const odd = intersectAll(probes.filter((_, index) => index % 2 === 1));
  return even && odd ? Math.abs(midpoint(odd) - midpoint(even)) : undefined;
}

/** Where a server's probes split into a run before and a run after (two or more each) that each meet; its size. */
function stepPoint(probes: readonly ProbeBounds[]): { at: number; by: number } | undefined {
  for (let at = probes.length - 2; at >= 2; at -= 1) {
    const earlier = intersectAll(probes.slice(0, at));
    const later = intersectAll(probes.slice(at));
    if (earlier && later && !intersect(earlier, later)) return { at, by: midpoint(later) - midpoint(earlier) };
  }
  return undefined;
}

export interface Selection {
  /**
   * Every point covered by more than half of the intervals lies in here: it holds the
   * truth whenever more than half of the servers are honest, whichever they are (of two
   * servers that meet, every point either covers: it holds the truth if one is honest).
   */
  bound: Interval;
  /** The region covered by the most intervals (Marzullo's): where the estimate is made. */
  core: Interval;
  /** Indexes (into the input) of the intervals that contain the core. */
  truechimers: number[];
}

/**
 * Clock selection over servers' hard intervals (NTP's intersection algorithm with the
 * largest number of falsetickers fewer than half of the electorate tolerates). Without a
 * region the electorate lets publish (`publishable`: by default the electorate is
 * `intervals`): undefined. Touching intervals agree. Equal counts in disjoint regions: the
 * core is the narrowest (the bound spans them all).
 */
export function select(
  intervals: readonly Interval[],
  electorate: Electorate = { servers: intervals.length, pending: 0 },
): Selection | undefined {
  const edges = intervals.flatMap((interval) => [
    { at: interval.low, step: 1 },
    { at: interval.high, step: -1 },
  ]);
  // Starts before ends at the same point: touching intervals agree.
  edges.sort((x, y) => x.at - y.at || y.step - x.step);
  // The bound is every point covered by all but the tolerated liars of those that answered,
  // so it holds the truth whichever they are. Of two servers that meet either may be the
  // faulty one: the bound spans both.
  const tolerated = electorate.servers <= 1 ? 0 : Math.max(1, Math.ceil(electorate.servers / 2) - 1);
  const covering = Math.max(1, intervals.length - tolerated);
  let core: Interval | undefined;
  let coreCount = 0;
  let boundLow: number | undefined;
  let boundHigh: number | undefined;
  let count = 0;
  edges.forEach((edge, index) => {
    const before = count;
    count += edge.step;
    if (edge.step === 1 && count >= covering && boundLow === undefined) boundLow = edge.at;
    if (edge.step === -1 && before >= covering) boundHigh = edge.at;
    const next = edges[index + 1];
    if (edge.step !== 1 || next === undefined) return;
    const region = { low: edge.at, high: next.at };
    if (count > coreCount || (count === coreCount && core !== undefined && width(region) < width(core))) {
      coreCount = count;
      core = region;
    }
  });
  if (core === undefined || boundLow === undefined || boundHigh === undefined) return undefined;
  if (!publishable(coreCount, intervals.length, electorate)) return undefined;
  const region = core;
  const truechimers = intervals.flatMap((interval, index) =>
    interval.low <= region.low && interval.high >= region.high ? [index] : [],
  );
  return { bound: { low: boundLow, high: boundHigh }, core: region, truechimers };
}

/**
 * The latest verification probe of one side, when it could not have contradicted the interval (sent or answered late,
 * or answered on the near side of its tick), and what it did prove.
 */
export interface UnprovenCheck {
  side: 'low' | 'high';
  /** theta >= bound (a low check), theta <= bound (a high one), after any step before it. */
  bound: number;
}

/**
 * A server's interval once its probing is over. Its probes meet as long as its clock did
 * not step between them; the probes after a step can all fall on one side and meet the ones
 * before in a sliver that holds neither time, which only a check just outside the interval,
 * answered after the step, contradicts. Where the last check of a side could not have shown a
 * step beyond its margin, the interval reaches out to what that check did prove.
 */
export function checkedInterval(interval: Interval, unproven: readonly UnprovenCheck[]): Interval {
  return unproven.reduce(
    (reached, { side, bound }) =>
      side === 'low'
        ? { ...reached, low: Math.min(reached.low, bound) }
        : { ...reached, high: Math.max(reached.high, bound) },
    interval,
  );
}

/** Who votes: every distinct server configured, and how many of them have not yet answered or failed. */
export interface Electorate {
  /** Distinct servers configured (a duplicate is one clock, counted once). */
  servers: number;
  /** Of those, still being probed (neither an interval nor a failure yet). */
  pending: number;
  /**
   * Of those, failed with answers that a step of their clock fits (ClockFault.step): they answered, and what stepped
   * theirs may have stepped a survivor's by what its checks cannot resolve. One server alone is not published then.
   */
  stepped?: number;
}

/**
 * Whether a selection may be published: its truechimers are more than half of ALL the
 * distinct servers configured (one that failed or has not answered counts against it: an
 * attacker who silences honest servers gains nothing), or one server alone answered and
 * no other can any more, none having seen its clock step (the one-server caveat: publishedBound
 * leaves room for its Date lag).
 */
export function publishable(truechimers: number, answered: number, electorate: Electorate): boolean {
  return (
    truechimers * 2 > electorate.servers ||
    (answered === 1 && truechimers === 1 && electorate.pending === 0 && (electorate.stepped ?? 0) === 0)
  );
}

/**
 * The published bound from a selection among `answered` servers that gave an interval: with
 * one alone, room above for a Date that lags its second by up to `dateLag` (nothing can
 * outvote or expose such a cache); otherwise the selection's bound.
 */
export function publishedBound(selection: Selection, answered: number, dateLag = DATE_LAG): Interval {
  return answered >= 2 ? selection.bound : { low: selection.bound.low, high: selection.bound.high + dateLag };
}

/** Why a bound from one server alone is wider than its interval. */
export const oneServerCaveat = (dateLag: number): string =>
  `one server alone: the bound leaves ${dateLag} s above its interval for a Date cached on a timer (as lighttpd's), ` +
  'which no other server can expose';
