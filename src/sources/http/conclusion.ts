// A measurement's conclusion: the published bound from clock selection over the servers'
// hard intervals (interval.ts, within their certificates' windows: validity.ts), the point
// inside it from the truechimers' joint posterior (posterior.ts), and a verdict per server.
import { DATE_LAG, errorAround, midpoint, publishedBound, select } from './interval.js';
import type { ClockFault, Electorate, Interval, Selection } from './interval.js';
import { formatDuration } from '../../time.js';
import { asymmetrySigma, median, posteriorMedian, posteriorQuantiles, type ProbeGroup } from './posterior.js';
import { selectWithinValidity } from './validity.js';

/** One server at the end of a measurement: its hard interval and probes, or why it has none. */
export interface ServerEvidence {
  interval: Interval | undefined;
  lows: readonly number[];
  rtts: readonly number[];
  /** Why the server gave no interval (failed, duplicate, not one clock...). */
  failure: string | null;
  /** Its answers came from more than one clock (interval.ts serverBounds): a step, a stuck Date, a balancer. */
  clockFault?: ClockFault | undefined;
  /**
   * https: where theta must lie for its certificates to be valid over the whole measurement (validity.ts); undefined
   * for http.
   */
  validity?: Interval | undefined;
}

export type ServerStatus = 'ok' | 'falseticker' | 'failed';

export interface ServerConclusion {
  /** That server's own posterior median, inside its own interval. */
  offset: number | undefined;
  status: ServerStatus;
  reason: string | null;
}

export interface Conclusion {
  selection: Selection | undefined;
  /** The published bound: holds the truth if more than half of the servers are honest. */
  bound: Interval | undefined;
  /** The point estimate: the truechimers' joint posterior median, inside `bound`. */
  theta: number | undefined;
  /** Distinct servers that gave an interval (the electorate). */
  answered: number;
  servers: ServerConclusion[];
  reason: string | null;
  /**
   * More than half of the servers answered from more than one clock (stepped, a Date stuck, or several clocks): the
   * time they serve moved during the measurement, and nothing is published. `step`: the median of the steps seen,
   * seconds, where more than half of the servers showed one.
   */
  moved: { step: number | undefined } | undefined;
}

const clamp = (value: number, interval: Interval): number => Math.min(interval.high, Math.max(interval.low, value));

/** The server's probes as the posterior takes them: none, or one group. */
const probeGroups = (server: ServerEvidence): ProbeGroup[] =>
  server.lows.length > 0 ? [{ lows: server.lows, sigma: asymmetrySigma(server.rtts) }] : [];

/** Where server `index`'s own probes put its theta (undefined without an interval). */
export function ownOffset(server: ServerEvidence): number | undefined {
  const { interval } = server;
  if (interval === undefined) return undefined;
  const [own] = probeGroups(server);
  return clamp(own ? posteriorMedian(own.lows, own.sigma, interval) : midpoint(interval), interval);
}

const showInterval = (interval: Interval, shift: number): string =>
  `[${(interval.low + shift).toFixed(6)}, ${(interval.high + shift).toFixed(6)}] s`;

export interface ConclusionOptions {
  /** Added to every figure in a reason (the timescale the result is reported on). */
  shift?: number;
  /** Who votes (default: every server given, none pending). */
  electorate?: Electorate;
  /** The one-server allowance for a lagging Date, seconds (default DATE_LAG). */
  dateLag?: number;
}

/**
 * A measurement's conclusion, at its end or while it runs: clock selection over the
 * servers' hard intervals (interval.ts) gives the published bound; the truechimers' joint
 * posterior gives the point inside it.
 */
export function conclude(servers: readonly ServerEvidence[], options: ConclusionOptions = {}): Conclusion {
  const { shift = 0, dateLag = DATE_LAG } = options;
  const faults = servers.flatMap((server) => (server.clockFault ? [server.clockFault] : []));
  // Every fault a step fits (a stuck Date reads as a step back): whoever showed one may share a survivor's upstream.
  const steps = faults.flatMap((fault) => (fault.step === undefined ? [] : [fault.step]));
  const electorate = { ...(options.electorate ?? { servers: servers.length, pending: 0 }), stepped: steps.length };
  // A step is named only where most servers showed one: a minority cannot choose it.
  const moved =
    faults.length * 2 > electorate.servers
      ? { step: steps.length * 2 > electorate.servers ? median(steps) : undefined }
      : undefined;
  const candidates = servers.flatMap((server, index) =>
    server.interval ? [{ index, interval: server.interval, validity: server.validity }] : [],
  );
  // What is published must lie where every contributing server's certificates are valid:
  // a server whose certificates are not is left out and the selection made again.
  const { selection, outside } =
    moved === undefined
      ? selectWithinValidity(
          candidates,
          (intervals) => select(intervals, electorate),
          (found) => publishedBound(found, candidates.length, dateLag),
          electorate,
        )
      : { selection: undefined, outside: new Map<number, Interval>() };
  const truechimers = new Set(selection?.truechimers.map((position) => candidates[position]?.index));
  const outsideByServer = new Map(
    [...outside].map(([position, agreed]) => [candidates[position]?.index ?? -1, agreed]),
  );
  const bound = selection && publishedBound(selection, candidates.length, dateLag);
  const verdicts = servers.map((server, index): ServerConclusion => {
    const agreed = outsideByServer.get(index);
    if (agreed !== undefined && server.validity !== undefined) {
      return {
        offset: undefined,
        status: 'failed',
        reason:
          `tls: its certificates, valid for offsets ${showInterval(server.validity, shift)}, are not valid at ` +
          `the time the servers agree on (${showInterval(agreed, shift)})`,
      };
    }
    const offset = ownOffset(server);
    if (server.interval === undefined)
      return { offset, status: 'failed', reason: server.failure ?? 'no probe answered' };
    if (selection === undefined || truechimers.has(index)) return { offset, status: 'ok', reason: null };
    const own = showInterval(server.interval, shift);
    const excludes = `interval ${own} excludes the majority's ${showInterval(selection.bound, shift)}`;
    const behind = selection.core.low - server.interval.high;
    // A Date cache refreshed late reads like a clock behind by up to a second.
    const lag =
      behind > 0 && behind < DATE_LAG
        ? `: its Date lags the majority by at least ${(behind * 1000).toFixed(1)} ms (a Date cached on a timer, ` +
          `or a clock that far behind)`
        : '';
    return { offset, status: 'falseticker', reason: `${excludes}${lag}` };
  });
  const reason =
    selection === undefined
      ? noEstimateReason({ servers: servers.length, answered: candidates.length, electorate, faults, moved, outside })
      : null;
  let theta: number | undefined;
  if (selection && bound) {
    const team = selection.truechimers.flatMap((position) => {
      const server = servers[candidates[position]?.index ?? -1];
      return server ? probeGroups(server) : [];
    });
    const [jointMedian = midpoint(selection.core)] = posteriorQuantiles(team, selection.core, [0.5]);
    theta = clamp(jointMedian, bound);
  }
  return { selection, bound, theta, answered: candidates.length, servers: verdicts, reason, moved };
}

/** Why a conclusion publishes nothing. */
function noEstimateReason(why: {
  servers: number;
  answered: number;
  electorate: Required<Electorate>;
  faults: readonly ClockFault[];
  moved: Conclusion['moved'];
  outside: ReadonlyMap<number, Interval>;
}): string {
  const { servers, answered, electorate, faults, moved, outside } = why;
  if (moved !== undefined) {
    const step =
      moved.step === undefined
        ? ''
        : ` (a step of about ${moved.step < 0 ? '-' : '+'}${formatDuration(moved.step)}, their median)`;
    return (
      `${faults.length} of the ${electorate.servers} servers answered from more than one clock${step}: the time ` +
      'they serve moved during the measurement'
    );
  }
  if (answered === 0) return `no server gave a usable Date (${servers} failed)`;
  if (answered === 1 && electorate.stepped > 0 && electorate.pending === 0)
    return (
      `one server alone is not published beside ${electorate.stepped} whose clock may have stepped during the ` +
      'measurement: what stepped theirs may have stepped its own by less than its checks can see'
    );
  const majority = `no region is shared by more than half of the ${electorate.servers} servers (${answered} answered)`;
  return outside.size > 0
    ? `no majority once the ${outside.size} server(s) whose certificates are not valid at the agreed time are left ` +
        `out: ${majority}`
    : `no majority: ${majority}`;
}

/** The half-width around the point estimate that covers the published bound. */
export const conclusionError = (conclusion: Conclusion): number | undefined =>
  conclusion.theta === undefined || conclusion.bound === undefined
    ? undefined
    : errorAround(conclusion.theta, conclusion.bound);
