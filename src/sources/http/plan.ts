// Where and when to probe next: pure functions from what the servers have answered to the
// next probes. No I/O, no timers, no clock: measure.ts (sockets) and the simulation
// (test/sim) both drive them, and a plan can only cost accuracy, never soundness (every
// answer is bounded by interval.ts whatever was aimed).
//
// A probe aims a server's stamp at one of its second boundaries: the answer tightens the
// upper bound if the stamp falls just before the tick, the lower one if just after. One
// tick per second, each a later one, so a Date that does not advance shows.
// - Alone, a server bisects its own posterior (inside its prior while the answers leave
//   the prior plausible: a wrong prior must not hold the probes at its edge).
// - Servers that agree measure one theta (web servers keep UTC) and aim as a team: each at
//   its own quantile of the joint posterior, so N servers split what is left N + 1 ways per
//   second instead of bisecting the same grid side by side.
// - In the last seconds each server adds verification probes just outside its hard
//   interval (first 10 ms from its aim, where the interval is wider), beyond the path's
//   noise: a one-clock server answers them as predicted; a second clock behind a load
//   balancer, or a clock that stepped, answers against its earlier probes, and
//   interval.ts names it.
import { diffSeconds, type Timespec } from '../../time.js';
import {
  checkedInterval,
  DATE_STALENESS,
  intersect,
  intersectAll,
  midpoint,
  probeInterval,
  select,
  serverBounds,
  width,
  type ClockFault,
  type Interval,
  type UnprovenCheck,
  type ProbeBounds,
} from './interval.js';
import {
  asymmetrySigma,
  bestLogLikelihood,
  logLikelihoodAt,
  madSigma,
  median,
  posteriorMedian,
  posteriorQuantiles,
  symmetricLow,
  typicalAsymmetrySigma,
  type ProbeGroup,
} from './posterior.js';

/** What is known of one server while it is being probed. */
export interface ServerState {
  /** The hard interval of its answers so far (undefined before the first, or after a failure). */
  interval: Interval | undefined;
  failed: boolean;
  /** Each answer's hard interval, in order. */
  bounds: readonly ProbeBounds[];
  /** Each answer's symmetric lower bound (posterior.ts). */
  lows: readonly number[];
  rtts: readonly number[];
  /**
   * How late the event loop released each aimed request after its planned instant, seconds (not a sweep's, which
   * waits for the answer before it).
   */
  sendLags: readonly number[];
  /** Where its theta is expected (aiming only, never a bound). */
  prior: Interval | undefined;
  /** The latest tick aimed at or Date second seen: the next tick is a later one. */
  lastTick: number;
  /** Each side whose latest verification probe could not have contradicted the interval: asked again. */
  unprovenChecks: readonly UnprovenCheck[];
}

export interface PlanState {
  servers: readonly ServerState[];
  /** The team once formed (it then only shrinks; empty: disbanded). */
  team: readonly number[] | undefined;
}

export const emptyServer = (prior: Interval | undefined): ServerState => ({
  interval: undefined,
  failed: false,
  bounds: [],
  lows: [],
  rtts: [],
  sendLags: [],
  prior,
  lastTick: -Infinity,
  unprovenChecks: [],
});

/**
 * A probe's aim is settled this long before it is sent, so that the other servers'
 * answers to the previous second are in (round trips up to ~0.7 s; slower ones aim with
 * what has arrived).
 */
export const DECIDE_AHEAD = 0.2;

/** The earliest tick leaves this long for the wait and the send (event-loop latency). */
const TICK_LEAD = 0.003;

/**
 * Quantiles of a server's own posterior: the part a prior must meet to be kept (1 % to
 * 99 %), the median, and the top a tick leaves room for (a team's aim may sit at the edge
 * of a member's own interval).
 */
const OWN_QUANTILES = [0.01, 0.5, 0.99, 0.999];

/** A member is out of the team where its own probes make the team's median e^4 (~55x) less likely than their best. */
const UNLIKELY = 4;

/**
 * Servers are "nearly the same" when their symmetric intervals share at least this much of
 * each: after one probe, clocks up to 50 ms apart. Clocks a fraction of a second apart must
 * not team up: each would spend its probes where the others' time is.
 */
const SAME = 0.95;

/** Both sides around the server's own interval: the last aimed second's checks, and every recheck second's. */
const BOTH_SIDES: readonly Check[] = [
  { side: 'high', near: false, own: true },
  { side: 'low', near: false, own: true },
];

/**
 * The verification probes of the last aimed seconds. A low one is sent after that second's
 * bisecting probe, a high one before it. The first two reach at most VERIFY_REACH from the
 * aim (they still narrow a wide interval); the rest aim just outside the hard interval,
 * each side once on an odd and once on an even request, so that a load balancer taking its
 * backends in turn cannot answer every check from the backend that passes it. The last
 * second checks both sides around the server's own interval: a step of its clock before
 * it is seen whichever way it went, and the estimate is as fresh as that second.
 */
const VERIFY_PLAN: readonly (readonly Check[])[] = [
  [{ side: 'low', near: true }],
  [{ side: 'high', near: true }],
  [{ side: 'low', near: false }],
  [
    { side: 'high', near: false },
    { side: 'low', near: false, own: true },
  ],
  BOTH_SIDES,
];

type CheckSide = UnprovenCheck['side'];

/**
 * Seconds added after the last aimed one, at most, to send again verification probes that came back too late to
 * contradict (a loaded machine, a congested path); after them the interval reaches out to what the last one proved.
 */
export const RECHECKS = 2;

interface Check {
  side: CheckSide;
  /** Within VERIFY_REACH of the aim, or just outside the interval. */
  near: boolean;
  /**
   * Outside the server's own interval even in a team (whose interval is narrower): only there can a check contradict
   * every answer so far, as the answers after a step of its clock must.
   */
  own?: boolean;
}

/**
 * A verification probe aims just outside the server's hard interval, this much at least
 * (and one round trip plus 4 sigma of asymmetry on noisy paths): a one-clock server then
 * answers it as predicted whatever its theta in there, and a clock beyond contradicts.
 */
const VERIFY_MARGIN = 0.002;

/** How far from the aim a near verification probe reaches at most (or the margin, if more). */
const VERIFY_REACH = 0.01;

/** Verification probes share a second with the bisecting one only within this much of its aim. */
const VERIFY_SPAN = 0.4;

export type ProbeKind = 'bisect' | 'verify-low' | 'verify-high' | 'sweep';

export interface PlannedProbe {
  kind: ProbeKind;
  /** The theta at which the stamp would fall exactly on `tick` (NaN for a sweep probe: it aims at no tick). */
  aim: number;
  /** Local (steady) time to send it. */
  sendAt: number;
}

export interface TickPlan {
  tick: number;
  /** When to settle the aims (DECIDE_AHEAD before the earliest send). */
  decideAt: number;
  /** The prior no longer meets the server's own 1-99 % posterior: stop aiming with it. */
  dropPrior: boolean;
}

/**
 * How a measurement begins. `bisect`: each later second one probe aimed at the middle of
 * what the server's answers allow (and verification probes at the end). `sweep`: first
 * SWEEP_SENDS sends spread over one second, until two Date seconds are seen, so the sends
 * either side of the server's tick bracket it to their spacing plus a round trip in about
 * a second, whatever its phase; then as `bisect`. For a first estimate soon (ServerClock's
 * ready()); without a prior the bisection needs a probe per halving.
 */
export type Strategy = 'bisect' | 'sweep';

/** Sends across the sweep's second: the tick bracketed to 50 ms plus a round trip. */
export const SWEEP_SENDS = 20;

/** The sweep after the first answer at local time `now` (steady timescale): sends over the next second, in order. */
export function planSweep(now: number, sends = SWEEP_SENDS): PlannedProbe[] {
  return Array.from({ length: sends }, (_, step): PlannedProbe => ({
    kind: 'sweep',
    aim: NaN,
    sendAt: now + (step + 1) / sends,
  }));
}

/** Whether a sweep is done: the server's answers name two Date seconds, so its tick lies between two of them. */
export const swept = (server: ServerState): boolean =>
  new Set(server.bounds.map((bounds) => bounds.dateSeconds)).size >= 2;

/** One answer: its Date second and local send and first-byte times (steady timescale). */
export interface Answer {
  dateSeconds: number;
  sendTime: Timespec;
  receiveTime: Timespec;
  /** The probe was a verification probe below or above the interval, aimed at `aim`. */
  check?: { side: CheckSide; aim: number } | undefined;
  /** An aimed probe: how late the event loop released it after its planned instant, seconds. */
  sendLag?: number | undefined;
}

/** The server after an answer, or why its answers cannot come from one steady clock. */
export function observe(
  server: ServerState,
  answer: Answer,
): { server: ServerState; fault?: undefined } | { server?: undefined; fault: ClockFault } {
  const { dateSeconds, sendTime, receiveTime, check, sendLag } = answer;
  const probe = probeInterval(dateSeconds, sendTime, receiveTime);
  const bounds = [...server.bounds, { ...probe, dateSeconds }];
  const checked = serverBounds(bounds);
  if (checked.fault !== undefined) return { fault: checked.fault };
  return {
    server: {
      ...server,
      interval: checked.interval,
      bounds,
      lows: [...server.lows, symmetricLow(dateSeconds, sendTime, receiveTime)],
      rtts: [...server.rtts, diffSeconds(receiveTime, sendTime)],
      sendLags: sendLag === undefined ? server.sendLags : [...server.sendLags, sendLag],
      lastTick: Math.max(server.lastTick, dateSeconds),
      unprovenChecks: check ? unprovenAfter(server, check, probe) : server.unprovenChecks,
    },
  };
}

/**
 * The server's unproven sides after check `check` was answered with `probe`. A check shows the clock is not beyond it
 * only where its own interval ends near its aim: sent late (behind a slow answer), answered late, or answered on the
 * near side of its tick, it proves too little, and both sides are asked again.
 */
function unprovenAfter(server: ServerState, check: NonNullable<Answer['check']>, probe: Interval): UnprovenCheck[] {
  const others = server.unprovenChecks.filter((unproven) => unproven.side !== check.side);
  const margin = verifyMargin(server);
  const proved = check.side === 'low' ? probe.low : probe.high;
  const short = check.side === 'low' ? proved < check.aim - margin : proved > check.aim + margin;
  return short ? [...others, { side: check.side, bound: proved }] : others;
}

/**
 * How late the loop released planned probe `planned` at local time `released`: not a sweep probe's, which waits for
 * the answer before it.
 */
export const sendLagOf = (planned: PlannedProbe | undefined, released: number): number | undefined =>
  planned && planned.kind !== 'sweep' ? released - planned.sendAt : undefined;

/** What a planned probe checks, if it is a verification probe. */
export function checkOf(planned: PlannedProbe | undefined): Answer['check'] {
  if (planned?.kind === 'verify-low') return { side: 'low', aim: planned.aim };
  if (planned?.kind === 'verify-high') return { side: 'high', aim: planned.aim };
  return undefined;
}

/** A server once its probing is over: its interval reaches out to what unproven checks proved (interval.ts). */
export function settled(server: ServerState): ServerState {
  const { interval, unprovenChecks } = server;
  return interval && unprovenChecks.length > 0
    ? { ...server, interval: checkedInterval(interval, unprovenChecks) }
    : server;
}

/** Why a settled server's interval is wider than its probes' (undefined where it is not). */
export function unprovenCheckNote(server: ServerState): string | undefined {
  if (server.unprovenChecks.length === 0) return undefined;
  const sides = server.unprovenChecks.map(({ side }) => (side === 'low' ? 'below' : 'above')).join(' and ');
  return `its last checks ${sides} its interval could not rule out a step of its clock: widened to what they proved`;
}

/** Whether aimed probe `aimed` (1-based) of `probes` is to be sent: one of them, or a recheck of an unproven side. */
export const aimedProbeDue = (server: ServerState, aimed: number, probes: number): boolean =>
  aimed < probes || (aimed < probes + RECHECKS && server.unprovenChecks.length > 0);

const ownGroup = (server: ServerState): ProbeGroup => ({ lows: server.lows, sigma: asymmetrySigma(server.rtts) });

/** The typical up-leg: aiming early by the jitter would waste the probe. */
const upDelay = (server: ServerState): number => median(server.rtts) / 2;

/**
 * How far outside the hard interval verification probes aim at least (seconds): more than a round trip, so the
 * bisecting probe's answer is in first, plus the Date staleness allowance, without which a low check answered
 * "before the tick" could never fall below the interval (interval.ts widens such an answer's top by it).
 */
export function verifyMargin(server: ServerState): number {
  // The spread without outliers: a few slow round trips must not push the checks past the step they are there to
  // see; a check that comes back late is sent again instead (RECHECKS).
  return (
    Math.max(VERIFY_MARGIN, median(server.rtts) + 4 * typicalAsymmetrySigma(server.rtts)) +
    DATE_STALENESS +
    sendLagAllowance(server)
  );
}

/**
 * How late the loop releases the server's requests, at worst but for outliers: the median and 4 sigma (from the
 * median absolute deviation); 50 servers' checks went out 2-4 ms late at the median, behind the others' answers. At
 * most CHECK_SPREAD: a check later than that is asked again (RECHECKS), not let off with a coarser margin.
 */
function sendLagAllowance({ sendLags }: ServerState): number {
  if (sendLags.length === 0) return 0;
  return Math.min(CHECK_SPREAD, median(sendLags) + 4 * madSigma(sendLags));
}

/**
 * The verification probes of aimed probe `aimed` (1-based) of `probes`. After them, both sides again: a step between
 * the last second's high check and a late low one is seen only by a high check.
 */
function checksOf(aimed: number, probes: number): readonly Check[] {
  if (aimed >= probes) return BOTH_SIDES;
  return aimed >= 1 ? (VERIFY_PLAN[aimed - (probes - VERIFY_PLAN.length)] ?? []) : [];
}

/**
 * Where a verification probe aims, or undefined where it would not fit the second: just
 * outside the server's own interval, or for a team member the team's, `teamSupport` (a member
 * whose Date lags the team's time answers every aim at that time "not later", and only a
 * check below the team's interval shows it is elsewhere).
 */
function checkAim(
  server: ServerState,
  teamSupport: Interval | undefined,
  aim: number,
  { side, near, own }: Check,
  spread: CheckSpread = NO_SPREAD,
): number | undefined {
  const around = (own ? undefined : teamSupport) ?? server.interval;
  if (around === undefined) return undefined;
  const margin = verifyMargin(server) + spread[side];
  const reach = near ? Math.max(VERIFY_REACH, margin) : Infinity;
  const target =
    side === 'low' ? Math.max(around.low - margin, aim - reach) : Math.min(around.high + margin, aim + reach);
  // A check around the server's own interval is sent whatever the span: without it a step could pass unseen.
  return own || Math.abs(target - aim) + median(server.rtts) <= VERIFY_SPAN ? target : undefined;
}

interface OwnQuantiles {
  first: number;
  half: number;
  last: number;
  top: number;
}

function ownQuantiles(server: ServerState, interval: Interval): OwnQuantiles {
  const [first = interval.low, half = midpoint(interval), last = interval.high, top = interval.high] =
    posteriorQuantiles([ownGroup(server)], interval, OWN_QUANTILES);
  return { first, half, last, top };
}

/** The prior still steering this server's aim (undefined once its answers left it behind). */
const livePrior = (server: ServerState, own: OwnQuantiles): Interval | undefined =>
  server.prior && intersect(server.prior, { low: own.first, high: own.last }) ? server.prior : undefined;

/**
 * Where a server's interval is at most this wide (seconds), its next tick is planned from the interval's top rather
 * than from its posterior, when that tick follows its last one anyway and every check fits the span from any aim in
 * the interval (`checksFitAnywhere`): the aims are then settled that much earlier at most. The posterior is the
 * costly part of planning, and each server plans its next tick as its last answer comes in, while the others' checks
 * of that second are still going out: 50 servers' plans took 10-18 ms of those ~70.
 */
const PLAN_FROM_TOP = 0.02;

/**
 * Whether every verification probe fits VERIFY_SPAN from any aim in the server's interval: then the room a tick leaves
 * for them rises no faster than the aim. Near the span's end (round trips of ~0.15 s and more) a check is dropped for
 * one aim and kept for one a few ms higher, and the room jumps by ~0.2 s.
 */
const checksFitAnywhere = (server: ServerState, interval: Interval): boolean =>
  width(interval) + verifyMargin(server) + CHECK_SPREAD + median(server.rtts) <= VERIFY_SPAN;

/**
 * The next tick of an answered server (aimed probe `aimed`, 1-based, of `probes`): the
 * earliest second boundary after `now` that leaves room for any aim up to the server's own
 * 99.9 % point (or its prior) and its verification probe.
 */
export function planTick(
  server: ServerState,
  now: number,
  aimed: number,
  probes: number,
  teamSupport?: Interval,
): TickPlan | undefined {
  const { interval } = server;
  if (interval === undefined) return undefined;
  const up = upDelay(server);
  const tickFor = (highest: number): TickPlan => {
    const top = withCheckRoom(server, teamSupport, highest, aimed, probes);
    const tick = Math.max(Math.ceil(now + TICK_LEAD + up + top), server.lastTick + 1);
    return { tick, decideAt: tick - top - up - DECIDE_AHEAD, dropPrior: false };
  };
  // Every aim lies within the interval (and, without a prior, below its top).
  if (server.prior === undefined && width(interval) <= PLAN_FROM_TOP && checksFitAnywhere(server, interval)) {
    const fromTop = tickFor(interval.high);
    if (fromTop.tick === server.lastTick + 1) return fromTop;
  }
  const own = ownQuantiles(server, interval);
  const prior = livePrior(server, own);
  const plan = tickFor(prior ? Math.min(own.top, Math.max(prior.high, own.first)) : own.top);
  return { ...plan, dropPrior: server.prior !== undefined && prior === undefined };
}

/**
 * The highest aim `highest` raised to leave room for a high verification probe: it aims at most this far above any
 * aim up to `highest` (a team formed by the time its aims are settled spreads it).
 */
function withCheckRoom(
  server: ServerState,
  teamSupport: Interval | undefined,
  highest: number,
  aimed: number,
  probes: number,
): number {
  let top = highest;
  for (const check of checksOf(aimed, probes))
    if (check.side === 'high') top = Math.max(top, checkAim(server, teamSupport, top, check, WIDEST_SPREAD) ?? top);
  return top;
}

/**
 * The probes of one tick, in sending order: the bisecting one (at the team's aim for it,
 * `teamAim`, or its own), and in the last seconds verification probes (around the team's
 * interval `teamSupport` for a member, `spread` farther out).
 */
export function planProbes(
  server: ServerState,
  tick: number,
  teamAim: number | undefined,
  aimed: number,
  probes: number,
  teamSupport?: Interval,
  spread?: CheckSpread,
): PlannedProbe[] {
  const { interval } = server;
  if (interval === undefined) return [];
  const own = ownQuantiles(server, interval);
  const prior = livePrior(server, own);
  const highest = prior ? Math.min(own.top, Math.max(prior.high, own.first)) : own.top;
  const inPrior = prior && intersect(prior, interval);
  const wanted = teamAim ?? (inPrior ? posteriorMedian(server.lows, asymmetrySigma(server.rtts), inPrior) : own.half);
  const aim = Math.min(highest, Math.min(interval.high, Math.max(interval.low, wanted)));
  const up = upDelay(server);
  // A recheck's second has no bisecting probe: a slow answer to it would hold the check back again.
  const planned: PlannedProbe[] = aimed < probes ? [{ kind: 'bisect', aim, sendAt: tick - aim - up }] : [];
  for (const check of checksOf(aimed, probes)) {
    const target = checkAim(server, teamSupport, aim, check, spread);
    if (target !== undefined)
      planned.push({
        kind: check.side === 'low' ? 'verify-low' : 'verify-high',
        aim: target,
        sendAt: tick - target - up,
      });
  }
  return planned.sort((a, b) => a.sendAt - b.sendAt);
}

/** The team and each member's aim (by server index). */
export interface TeamPlan {
  team: number[] | undefined;
  aims: ReadonlyMap<number, number>;
  /** The interval the team's members share (where the team's time is), with two or more members. */
  support: Interval | undefined;
  /** How much farther out than the margin each member's verification probes aim (by server index). */
  spreads: ReadonlyMap<number, CheckSpread>;
}

/** One server's part of a team plan: its aim, the team's interval and its checks' spread (undefined outside it). */
export interface MemberPlan {
  aim: number | undefined;
  support: Interval | undefined;
  spread: CheckSpread | undefined;
}

export const memberPlan = ({ team, aims, support, spreads }: TeamPlan, index: number): MemberPlan => ({
  aim: aims.get(index),
  support: team?.includes(index) ? support : undefined,
  spread: spreads.get(index),
});

interface Answered {
  index: number;
  interval: Interval;
}

const answeredOf = (state: PlanState, indexes?: readonly number[]): Answered[] =>
  (indexes ?? state.servers.map((_, index) => index)).flatMap((index) => {
    const interval = state.servers[index]?.interval;
    return interval ? [{ index, interval }] : [];
  });

/**
 * The interval `plan`'s team shares with its members' intervals as they stand in `state`
 * (undefined for a server outside it): the room a tick leaves for checks. The plan itself
 * (a joint posterior, N servers x their probes) is worked out only where aims are settled,
 * not after every answer: that made a measurement's work grow as N^2.
 */
export function standingSupport(state: PlanState, plan: TeamPlan | undefined, index: number): Interval | undefined {
  if (plan?.support === undefined || !plan.team?.includes(index)) return undefined;
  return intersectAll(answeredOf(state, plan.team).map((member) => member.interval));
}

/** Where a server's probes put theta taking each stamp at the middle of its round trip (a point where they cross). */
function symmetric(server: ServerState): Interval {
  const low = Math.max(...server.lows);
  const high = Math.min(...server.lows) + 1;
  return high >= low ? { low, high } : { low: (low + high) / 2, high: (low + high) / 2 };
}

/**
 * The largest set of servers whose symmetric intervals are nearly the same, if it is a
 * majority of those that answered; none until every server has answered (or failed), or a
 * second round has begun without the slow ones. Never from intervals that merely touch: a
 * sliver where two groups' edges meet looks like agreement.
 */
function formTeam(state: PlanState): number[] {
  const waiting = state.servers.some((server) => server.interval === undefined && !server.failed);
  if (waiting && !state.servers.some((server) => server.lows.length >= 2)) return [];
  const answered = answeredOf(state).map(({ index }) => ({
    index,
    interval: symmetric(state.servers[index] as ServerState),
  }));
  const alike = (a: Interval, b: Interval): boolean => {
    const shared = intersect(a, b);
    return shared !== undefined && width(shared) >= SAME * Math.max(width(a), width(b));
  };
  let best: number[] = [];
  for (const candidate of answered) {
    const group = answered.filter((other) => alike(candidate.interval, other.interval));
    if (group.length > best.length) best = group.map((other) => other.index);
  }
  return best.length * 2 > answered.length ? best : [];
}

/** Each server state's best log-likelihood (a state is never changed: an answer makes a new one). */
const bestOf = new WeakMap<ServerState, number>();

/**
 * Whether `theta` is plausible under server `index`'s own probes: no more than e^UNLIKELY less likely than their best.
 */
function plausible(server: ServerState | undefined, theta: number, best: WeakMap<ServerState, number>): boolean {
  if (!server?.interval) return false;
  if (server.lows.length === 0) return true;
  const group = ownGroup(server);
  let top = best.get(server);
  if (top === undefined) {
    top = bestLogLikelihood(group, server.interval);
    best.set(server, top);
  }
  return logLikelihoodAt(group, theta) - top > -UNLIKELY;
}

/** Where the k-th of `count` members aims: its own quantile, k / (count + 1). */
const teamQuantiles = (count: number): number[] => Array.from({ length: count }, (_, rank) => (rank + 1) / (count + 1));

/**
 * A team's aims, and so its sends, are kept at least this far apart (seconds). One event
 * loop sends a probe and reads its answer in 0.1-0.3 ms: members aimed within a fraction
 * of a millisecond queue there, the later answers read (and their first byte stamped)
 * milliseconds after they arrived and the sends after the tick going out late. 50 members
 * on 2 cores: round trips of 5-25 ms at once, 0.1 ms one loop turn apart.
 */
export const TEAM_SPACING = 0.0003;

/** Aims (ascending) moved away from their middle one where they are closer together than TEAM_SPACING. */
function spaced(aims: readonly number[]): number[] {
  const middle = Math.floor(aims.length / 2);
  const centre = aims[middle] ?? 0;
  return aims.map((aim, rank) => {
    const grid = centre + (rank - middle) * TEAM_SPACING;
    return Math.abs(aim - centre) >= Math.abs(grid - centre) ? aim : grid;
  });
}

/** The golden ratio's fraction: successive multiples of it mod 1 spread evenly. */
const GOLDEN = (Math.sqrt(5) - 1) / 2;

/** How much farther out than the margin a server's verification probes aim, below and above (seconds). */
export type CheckSpread = Readonly<Record<CheckSide, number>>;

const NO_SPREAD: CheckSpread = { low: 0, high: 0 };

/**
 * A team's verification probes are spread over this much at most, TEAM_SPACING apart by
 * rank (seconds). All aimed at the team's edge, 50 members' checks fell due at one instant
 * and went out one after another, the low ones each behind its own bisecting probe's answer:
 * 4 ms late at the median, 12 ms at the 90th percentile, and a quarter of them had to be
 * sent again in an added second. The member whose bisecting probe goes out last (the
 * lowest aim) sends its low check last, and the first its high check first.
 */
export const CHECK_SPREAD = 0.015;

const WIDEST_SPREAD: CheckSpread = { low: CHECK_SPREAD, high: CHECK_SPREAD };

/** The spread of the checks of the member of rank `rank` (its aim's, ascending) of `count`. */
function checkSpread(rank: number, count: number): CheckSpread {
  const step = Math.min(TEAM_SPACING, CHECK_SPREAD / Math.max(1, count - 1));
  return { low: (count - 1 - rank) * step, high: rank * step };
}

/**
 * The rank (quantile) of the member at `position` at tick `turn`: the ranks shift by the
 * golden fraction of the team each second, so that over a few seconds every member lands on
 * both sides of its tick, once near the team's median at least (in a fixed order the lowest
 * members would answer every aim "after the tick", and tighten only their lower bounds).
 */
const rankAt = (position: number, count: number, turn: number): number =>
  (position + turn * Math.round(count * GOLDEN)) % count;

const groupsOf = (state: PlanState, indexes: readonly number[]): ProbeGroup[] =>
  indexes.flatMap((index) => {
    const server = state.servers[index];
    return server && server.lows.length > 0 ? [ownGroup(server)] : [];
  });

/**
 * The team as it stands and its members' aims for tick `turn`. Members leave when their
 * intervals leave the rest (the team's own majority stays) or their own probes make the
 * team's median unlikely; a member takes its aim only where its own probes leave it
 * plausible (at the edge of its own interval is fine: that is where a member whose answers
 * all fell on one side is needed).
 */
export function planTeam(state: PlanState, turn = 0): TeamPlan {
  const formed = state.team ?? formTeam(state);
  if (formed.length < 2) return { team: state.team?.slice(), aims: new Map(), support: undefined, spreads: new Map() };
  const best = bestOf;
  let members = answeredOf(state, formed);
  const selection = select(members.map((member) => member.interval));
  members = selection ? selection.truechimers.flatMap((position) => members[position] ?? []) : [];
  // The median and the aims come from one posterior: it is the costly part (20 servers x 8
  // probes: ~6 ms), and it runs in the window before the next sends.
  let aims: number[] | undefined;
  for (let pass = 0; pass < 2 && members.length >= 2; pass += 1) {
    const support = intersectAll(members.map((member) => member.interval));
    if (support === undefined) break;
    const [teamMedian = midpoint(support), ...quantiles] = posteriorQuantiles(
      groupsOf(
        state,
        members.map((member) => member.index),
      ),
      support,
      [0.5, ...teamQuantiles(members.length)],
    );
    const consistent = members.filter((member) => plausible(state.servers[member.index], teamMedian, best));
    if (consistent.length === members.length) {
      aims = quantiles;
      break;
    }
    members = consistent;
  }
  const team = members.map((member) => member.index);
  const support = intersectAll(members.map((member) => member.interval));
  if (team.length < 2 || support === undefined)
    return { team, aims: new Map(), support: undefined, spreads: new Map() };
  // The priors only place the aim (never a bound): the region more than half of the team's
  // members share, where the answers so far allow it.
  const priors = team.flatMap((index) => state.servers[index]?.prior ?? []);
  const shared = select(priors);
  const prior = shared && shared.truechimers.length * 2 > team.length ? intersect(shared.core, support) : undefined;
  const quantiles = spaced(
    prior || !aims ? posteriorQuantiles(groupsOf(state, team), prior ?? support, teamQuantiles(team.length)) : aims,
  );
  return {
    team,
    support,
    spreads: new Map(
      team.map((index, position) => [index, checkSpread(rankAt(position, team.length, turn), team.length)]),
    ),
    aims: new Map(
      team.flatMap((index, position) => {
        const aim = quantiles[rankAt(position, team.length, turn)];
        return aim !== undefined && plausible(state.servers[index], aim, best)
          ? [[index, aim] as [number, number]]
          : [];
      }),
    ),
  };
}
