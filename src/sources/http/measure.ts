// One measurement, the part that touches the world: servers deduplicated, each probed
// concurrently on its own connection at the times plan.ts chooses, each answer checked
// (Age, Date) and bounded (interval.ts), then the conclusion (conclusion.ts) reported
// against CLOCK_REALTIME. Always ends by its deadline.
import { lookup } from 'node:dns/promises';
import { setMaxListeners } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { readClockPair, steadyClock, steadyRealtime, systemClock, type Clock, type ClockPair } from '../../clock.js';
import { redactCredentials, silentLogger, type Logger } from '../../log.js';
import { codedError, invalidArgValue, outOfRange } from '../../errors.js';
import { addSeconds, diffSeconds, formatDuration, formatUtc, toSeconds, type Timespec } from '../../time.js';
import { parseHttpDate, utcYear } from './date.js';
import { DATE_LAG, errorAround, oneServerCaveat, type ClockFault, type Interval } from './interval.js';
import {
  aimedProbeDue,
  checkOf,
  emptyServer,
  memberPlan,
  observe,
  planProbes,
  planSweep,
  planTeam,
  planTick,
  sendLagOf,
  settled,
  standingSupport,
  swept,
  unprovenCheckNote,
} from './plan.js';
import type { MemberPlan, PlannedProbe, ServerState, Strategy, TeamPlan } from './plan.js';
import { conclude, conclusionError, type Conclusion, type ServerEvidence, type ServerStatus } from './conclusion.js';
import { checkProxy, createConnection, probe, ProbeFault, usesProxy, type ProbeConnection } from './probe.js';
import { serverUrl } from './servers.js';
import { describeFloor, type ClockFloor } from '../../floor.js';
import { localClockVerdict, ServerTls, TlsGate, type LocalClockOptions } from './gate.js';
import type { CertificateWindow, TlsTrust } from './tls.js';
import { commonWindow, thetaWithin } from './validity.js';

export type { ServerStatus } from './conclusion.js';

export const DEFAULT_PROBES = 8;
/** More probes than this add seconds without adding bits worth having. */
export const MAX_PROBES = 64;

export interface MeasureOptions extends LocalClockOptions {
  /** HEAD probes per server (default 8). */
  probes?: number;
  /** Deadline of the whole measurement in seconds (default probes + 5). */
  timeout?: number;
  /** `host:port` of an HTTP proxy; without it HTTPS_PROXY/HTTP_PROXY/NO_PROXY apply. */
  proxy?: string;
  /** Extra trusted CA certificates (PEM). */
  ca?: string | Buffer;
  clock?: Clock;
  logger?: Logger;
  signal?: AbortSignal;
  /**
   * Where each server's offset is expected (same order as `servers`), e.g. the last
   * measurement's interval carried forward, against CLOCK_REALTIME as it reads at the start.
   * Used only to aim probes, never as a bound: a wrong prior costs accuracy, never correctness.
   */
  priors?: readonly (Interval | undefined)[];
  /** How each server's probing begins (plan.ts; default `bisect`). */
  strategy?: Strategy;
  /** With one server alone, room left above its interval for a Date that lags its second, seconds (default 1). */
  dateLag?: number;
  /**
   * Called with the measurement as it stands once more than half of the servers have
   * swept (strategy `sweep`) or every sweep has ended, then at each later sweep's end or
   * failure: the same conclusion as at the end, from the answers so far, servers that have
   * not answered yet counted against the majority.
   */
  onProgress?: (measurement: Measurement) => void;
}

export interface ServerResult {
  url: string;
  /**
   * Server clock - local clock (CLOCK_REALTIME at the end), seconds: the posterior median with symmetric legs
   * (posterior.ts), inside the hard interval.
   */
  offset: number | null;
  /** offset ± error covers the server's whole hard interval, seconds. */
  error: number | null;
  /** Shortest round trip seen, seconds. */
  rtt: number | null;
  /** Probes answered with a usable Date (the bisecting ones: `probes` of the options). */
  probes: number;
  /** Verification probes answered besides (plan.ts): a one-clock server answers them as predicted. */
  verifications: number;
  status: ServerStatus;
  reason: string | null;
  /** The server's interval for theta, seconds. */
  low: number | null;
  high: number | null;
  /**
   * https: `verified` (certificates checked at the local clock) or `time-unverified`
   * (checked in full but for time, which the local clock could not judge; tls.ts); null for http.
   */
  tls: TlsTrust | null;
  /** https: the validity window of each certificate of its chain(s), which the published time must lie in. */
  certificates: CertificateWindow[] | null;
}

export interface MeasurementResult {
  /** Server time - local time (CLOCK_REALTIME at the end), seconds; null without an estimate. */
  offset: number | null;
  /**
   * Seconds such that offset ± error covers the whole final interval (the region the
   * majority shares, which holds the truth): its half-width when offset is its middle.
   */
  error: number | null;
  servers: ServerResult[];
  /** Servers that agree (the majority). */
  survivors: number;
  /** Why there is no estimate. */
  reason: string | null;
  /** Why the bound is wider than the servers' intervals, when it is (one server alone: room for a lagging Date). */
  caveat: string | null;
  /** Some of the agreeing servers' certificates were checked against the servers' time, not the local clock's. */
  timeUnverified: boolean;
  /**
   * Servers verified at the local clock and servers verified only at their own time
   * disagree (one kind in the majority, the other not): someone may be replaying old
   * certificates, or the local clock is wrong. Logged as an error too.
   */
  alarm: string | null;
  /** When the measurement ended (local clock, UTC). */
  time: string;
  /** Wall time of the measurement, seconds. */
  duration: number;
}

/** The estimate as it outlives the moment: true time at a CLOCK_MONOTONIC_RAW instant. */
export interface Estimate {
  monotonicRaw: Timespec;
  trueTime: Timespec;
  /** Error bound at that instant, seconds. */
  error: number;
  /**
   * The published bound then: the true time lies in trueTime + [low, high] (seconds; low <= 0 <= high, within error).
   */
  low: number;
  high: number;
}

export interface Measurement {
  result: MeasurementResult;
  estimate: Estimate | undefined;
  /** Most servers' time moved during the measurement (conclusion.ts): what was held of them no longer holds. */
  moved: Conclusion['moved'];
}

/** A failure as `kind: detail` (proxy credentials redacted). */
export function failureReason(error: unknown): string {
  if (error instanceof ProbeFault) return redactCredentials(`${error.kind}: ${error.message}`);
  if (!(error instanceof Error)) return `error: ${String(error)}`;
  const cause = error.cause instanceof Error ? (error.cause as NodeJS.ErrnoException) : undefined;
  const code = (error as NodeJS.ErrnoException).code ?? cause?.code ?? '';
  const detail = redactCredentials(
    cause && cause.message !== error.message ? `${error.message} (${cause.message})` : error.message,
  );
  const kind = ((): string => {
    if (/^(ENOTFOUND|EAI_)/.test(code)) return 'dns';
    if (code === 'ECONNREFUSED') return 'refused';
    if (/TIMEOUT|ETIMEDOUT/.test(code)) return 'timeout';
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_/.test(code) || /certificate|ssl|tls/i.test(error.message)) return 'tls';
    if (/^(ECONNRESET|EPIPE)$/.test(code)) return 'reset';
    if (code === 'HPE_HEADER_OVERFLOW') return 'headers too large';
    if (code.startsWith('HPE_')) return 'not HTTP';
    if (/proxy/i.test(error.message)) return 'proxy';
    return 'error';
  })();
  return `${kind}: ${code ? `${code} ` : ''}${detail}`;
}

/**
 * When aimed requests go out: at their instants, read off the local clock by one spin of
 * the event loop for every server (a timer alone is ~1 ms late), the earliest first. With
 * each server spinning on its own, 50 spins a turn, and every answer worked out as it was
 * read, the answers read after it waited to be stamped: 50 servers of one nginx on
 * loopback had round trips of 6.2 ms median and 18 ms at the 90th percentile (0.15 ms
 * alone). With one spin, and answers worked out a turn after they are read
 * (measureServer), 1.1 ms and 5.0 ms.
 */
export class SendSchedule {
  /** Waiting requests, earliest instant first. */
  readonly #due: { at: number; go: (released: number) => void }[] = [];
  #spinning = false;

  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Resolves at `target` on the local clock (seconds), or in the first turn after it, with the clock's reading. */
  async at(target: number, signal: AbortSignal): Promise<number> {
    // A timer for the bulk; the last 2 ms in turns of the loop, which timers cannot resolve.
    const early = target - toSeconds(this.#clock.realtime()) - 0.002;
    if (early > 0) await sleep(early * 1000, undefined, { signal });
    const released = await new Promise<number>((go) => {
      const later = this.#due.findIndex((waiting) => waiting.at > target);
      this.#due.splice(later === -1 ? this.#due.length : later, 0, { at: target, go });
      this.#spin();
    });
    signal.throwIfAborted();
    return released;
  }

  #spin(): void {
    if (this.#spinning) return;
    this.#spinning = true;
    setImmediate(() => {
      this.#spinning = false;
      const now = toSeconds(this.#clock.realtime());
      const due = this.#due.findIndex((waiting) => waiting.at > now);
      for (const waiting of this.#due.splice(0, due === -1 ? this.#due.length : due)) waiting.go(now);
      if (this.#due.length > 0) this.#spin();
    });
  }
}

/**
 * The servers' first probes, each opening its connection, go out this far apart (seconds).
 * All at once, one event loop connects, sends and reads them in turn: 50 servers' first
 * round trips came to 15-40 ms (0.1-2.7 ms 3 ms apart), and that one round trip swelled
 * each server's estimate of its path's noise (posterior.ts) for the whole measurement.
 */
const FIRST_SPACING = 0.003;

class ServerFailure extends Error {
  constructor(
    message: string,
    /** Its answers came from more than one clock. */
    readonly clockFault?: ClockFault,
  ) {
    super(message);
  }
}

const isStaleConnection = (error: unknown): boolean =>
  error instanceof Error &&
  !(error instanceof ProbeFault) &&
  /^(ECONNRESET|EPIPE|ERR_HTTP_IDLE_408)$/.test((error as NodeJS.ErrnoException).code ?? '');

/**
 * The servers' state while they are probed: each server replaces its own entry after an
 * answer; the team's plan is worked out once per state and shared by all servers.
 */
class ServerStates {
  readonly servers: ServerState[];
  #team: readonly number[] | undefined;
  #version = 0;
  #plan: { version: number; turn: number; plan: TeamPlan } | undefined;

  constructor(priors: readonly (Interval | undefined)[]) {
    this.servers = priors.map(emptyServer);
  }

  get(index: number): ServerState {
    return this.servers[index] as ServerState;
  }

  set(index: number, server: ServerState, changesPlan = true): void {
    this.servers[index] = server;
    if (changesPlan) this.#version += 1;
  }

  /** Server `index`'s part of the team's plan for tick `turn` (memberPlan). */
  team(index: number, turn: number): MemberPlan {
    if (this.#plan?.version !== this.#version || this.#plan.turn !== turn) {
      const plan = planTeam({ servers: this.servers, team: this.#team }, turn);
      this.#team = plan.team;
      this.#plan = { version: this.#version, turn, plan };
    }
    return memberPlan(this.#plan.plan, index);
  }

  /** The team's interval as its members' intervals stand, without working out a new plan (undefined outside a team). */
  support(index: number): Interval | undefined {
    return standingSupport({ servers: this.servers, team: this.#team }, this.#plan?.plan, index);
  }
}

interface ServerOutcome {
  rtt: number | null;
  probes: number;
  verifications: number;
  /** Sweep probes answered (strategy `sweep`). */
  swept: number;
  failure: string | null;
  /** Why its answers cannot come from one clock, when that was its failure. */
  clockFault: ClockFault | undefined;
  /** The sweep is over (or was never to be): the server no longer counts as pending. */
  sweepEnded: boolean;
  /** The https connections its answers came on, as the gate judged them. */
  tls: ServerTls;
}

const newOutcome = (gate: TlsGate): ServerOutcome => ({
  rtt: null,
  probes: 0,
  verifications: 0,
  swept: 0,
  failure: null,
  clockFault: undefined,
  sweepEnded: false,
  tls: new ServerTls(gate),
});

interface ServerProbing {
  index: number;
  url: URL;
  connection: ProbeConnection;
  probes: number;
  strategy: Strategy;
  states: ServerStates;
  /** Filled in as the server answers: the measurement may conclude while probing goes on. */
  outcome: ServerOutcome;
  /** The sweep ended, or the server failed. */
  onSweepEnd: () => void;
  /** Seconds to wait before the first probe. */
  firstDelay: number;
  schedule: SendSchedule;
  clock: Clock;
  signal: AbortSignal;
  logger: Logger;
}

async function measureServer(probing: ServerProbing): Promise<void> {
  const { index, url, connection, probes, strategy, states, outcome, clock, signal, logger } = probing;
  const send = async (planned: PlannedProbe | undefined): Promise<void> => {
    // The loop's lag alone, read as it releases the request: not a connection being opened.
    const sendLag = planned && sendLagOf(planned, await probing.schedule.at(planned.sendAt, signal));
    const response = await probe(connection, url, clock).catch((error: unknown) => {
      // A kept-alive connection the other side closed as this request went out (a proxy
      // closing after each answer, with verification probes close behind): HEAD is
      // idempotent, so once more on a fresh connection, timed afresh.
      if (signal.aborted || !isStaleConnection(error)) throw error;
      return probe(connection, url, clock);
    });
    // What the answer says is worked out in a later turn: other answers read in this one are stamped first.
    await nextTurn();
    outcome.rtt = Math.min(outcome.rtt ?? Infinity, diffSeconds(response.receiveTime, response.sendTime));
    if (response.age !== undefined) throw new ServerFailure(`cached: response carries Age: ${response.age}`);
    if (response.date === undefined) throw new ServerFailure(`no Date header (status ${response.statusCode})`);
    const date = parseHttpDate(response.date, utcYear(response.sendTime.sec));
    if (date === undefined) throw new ServerFailure(`unparseable Date: ${JSON.stringify(response.date.slice(0, 64))}`);
    try {
      outcome.tls.answered(response.tls, date.seconds);
    } catch (error) {
      throw new ServerFailure(failureReason(error));
    }
    const next = observe(states.get(index), {
      dateSeconds: date.seconds,
      sendTime: response.sendTime,
      receiveTime: response.receiveTime,
      check: checkOf(planned),
      sendLag,
    });
    logger.debug('http probe', {
      url: url.href,
      kind: planned?.kind ?? 'first',
      date: response.date,
      low: diffSeconds({ sec: date.seconds, nsec: 0 }, response.receiveTime),
      high: diffSeconds({ sec: date.seconds, nsec: 0 }, response.sendTime) + 1,
      rtt: diffSeconds(response.receiveTime, response.sendTime),
      // How late the event loop sent it after its planned instant.
      late: planned && toSeconds(response.sendTime) - planned.sendAt,
    });
    if (next.fault !== undefined) throw new ServerFailure(next.fault.reason, next.fault);
    states.set(index, next.server);
    if (planned === undefined || planned.kind === 'bisect') outcome.probes += 1;
    else if (planned.kind === 'sweep') outcome.swept += 1;
    else outcome.verifications += 1;
  };
  const settle = (): void => {
    const note = unprovenCheckNote(states.get(index));
    if (note !== undefined)
      logger.warn(`http: ${url.href}: ${note}`, { unprovenChecks: states.get(index).unprovenChecks });
    states.set(index, settled(states.get(index)));
  };
  const endSweep = (): void => {
    if (outcome.sweepEnded) return;
    outcome.sweepEnded = true;
    probing.onSweepEnd();
  };
  try {
    if (probing.firstDelay > 0) await sleep(probing.firstDelay * 1000, undefined, { signal });
    await send(undefined);
    if (strategy === 'sweep') {
      for (const planned of planSweep(toSeconds(clock.realtime()))) {
        if (swept(states.get(index))) break;
        await send(planned);
      }
    }
    endSweep();
    for (let aimed = 1; aimedProbeDue(states.get(index), aimed, probes); aimed += 1) {
      const tick = planTick(states.get(index), toSeconds(clock.realtime()), aimed, probes, states.support(index));
      if (tick === undefined) break;
      if (tick.dropPrior) states.set(index, { ...states.get(index), prior: undefined });
      states.set(index, { ...states.get(index), lastTick: tick.tick }, false);
      // The aim, which may need the team's posterior, is settled DECIDE_AHEAD before the
      // earliest send, in a turn after the sockets were read: the answers that came by then are
      // in (a timer fires before that turn's reads).
      await probing.schedule.at(tick.decideAt, signal);
      await nextTurn();
      const team = states.team(index, tick.tick);
      for (const planned of planProbes(
        states.get(index),
        tick.tick,
        team.aim,
        aimed,
        probes,
        team.support,
        team.spread,
      ))
        await send(planned);
    }
    settle();
  } catch (error) {
    // The deadline ends probing; what was measured stands.
    if (signal.aborted && outcome.probes + outcome.swept > 0 && !(error instanceof ServerFailure)) {
      settle();
      return endSweep();
    }
    states.set(index, { ...states.get(index), interval: undefined, failed: true });
    outcome.failure =
      error instanceof ServerFailure ? error.message : failureReason(signal.aborted ? signal.reason : error);
    if (error instanceof ServerFailure) outcome.clockFault = error.clockFault;
    endSweep();
  }
}

function deadlineError(seconds: number): Error {
  return codedError(`no answer within the ${seconds} s deadline`, 'ETIMEDOUT');
}

/**
 * Which of `urls` name a server already listed: the same resolved address, port and Host
 * (path and query do not make another clock). Through a proxy the proxy resolves, so the
 * host name stands for the address. Index of the first listing, or undefined.
 */
export async function duplicates(
  urls: readonly URL[],
  viaProxy: boolean,
  signal: AbortSignal,
): Promise<(number | undefined)[]> {
  const port = (url: URL): string => url.port || (url.protocol === 'https:' ? '443' : '80');
  const address = async (url: URL): Promise<string> => {
    if (viaProxy) return url.hostname;
    const aborted = new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
    );
    // A name that does not resolve is not a duplicate: its probes report the failure.
    return Promise.race([lookup(url.hostname.replace(/^\[|\]$/g, '')).then((found) => found.address), aborted]).catch(
      () => `unresolved ${url.hostname}`,
    );
  };
  const keys = await Promise.all(
    urls.map(async (url) => `${url.protocol}//${await address(url)}:${port(url)} Host ${url.host}`),
  );
  return keys.map((key, index) => {
    const first = keys.indexOf(key);
    return first < index ? first : undefined;
  });
}

/** What a measurement has gathered: enough to conclude at any instant, at its end or while probing goes on. */
interface Gathered {
  urls: readonly URL[];
  start: ClockPair;
  states: ServerStates;
  outcomes: readonly ServerOutcome[];
  /** Index of the first listing of the same server, per server (undefined: not a duplicate). */
  duplicateOf: readonly (number | undefined)[];
  /** No time before it is published (floor.ts). */
  floor: ClockFloor;
  dateLag: number;
}

/** Each server's line of the result, its figures against realtime at the end (`toRealtime` added). */
function serverResults(
  gathered: Gathered,
  evidence: readonly ServerEvidence[],
  conclusion: Conclusion,
  toRealtime: number,
): ServerResult[] {
  const { urls, outcomes } = gathered;
  const trust = outcomes.map(({ tls }) => tls.trust);
  const windows = outcomes.map(({ tls }) => tls.windows);
  return outcomes.map((outcome, index) => {
    const { offset, status, reason } = conclusion.servers[index] as {
      offset: number | undefined;
      status: ServerStatus;
      reason: string | null;
    };
    // A failed server gives no figures (one whose certificates are not valid at the agreed time included).
    const interval = status === 'failed' ? undefined : evidence[index]?.interval;
    // Key order is the order of the JSON output: the figures first, the interval last.
    return {
      url: redactCredentials(urls[index]?.href ?? ''),
      offset: offset === undefined ? null : offset + toRealtime,
      error: interval && offset !== undefined ? errorAround(offset, interval) : null,
      rtt: outcome.rtt,
      probes: outcome.probes,
      status,
      reason,
      low: interval ? interval.low + toRealtime : null,
      high: interval ? interval.high + toRealtime : null,
      verifications: outcome.verifications,
      tls: trust[index] ?? null,
      certificates: trust[index] ? (windows[index] ?? []) : null,
    };
  });
}

/**
 * The conclusion from what was gathered, reported against CLOCK_REALTIME as it reads at
 * `end`: the published bound only when the electorate lets (interval.ts `publishable`,
 * servers still probing counted as pending), inside every contributing chain's
 * certificate window (validity.ts), and never before the floor (floor.ts). The final
 * conclusion passes `logger`: a refusal by the floor is logged once.
 */
function concludeAt(gathered: Gathered, end: ClockPair, logger?: Logger): Measurement {
  const { urls, start, states, outcomes, duplicateOf, floor, dateLag } = gathered;
  // Theta is against the steady timescale; what is reported is against CLOCK_REALTIME as
  // it reads at `end`, whatever was done to it since the start.
  const steadyEnd = steadyRealtime(start, end.monotonicRaw);
  const toRealtime = diffSeconds(steadyEnd, end.realtime);

  // Certificates bound theta: the true time over the measurement must lie in every window
  // of the chains (a chain valid at a wrong local clock may not be at the true time).
  const windows = outcomes.map(({ tls }) => tls.windows);
  const evidence: ServerEvidence[] = outcomes.map((outcome, index) => {
    const server = states.get(index);
    const window = commonWindow(windows[index] ?? []);
    const validity = window && thetaWithin(window, toSeconds(start.realtime), toSeconds(steadyEnd));
    return {
      interval: server.failed ? undefined : server.interval,
      lows: server.lows,
      rtts: server.rtts,
      failure: outcome.failure,
      clockFault: outcome.clockFault,
      validity,
    };
  });
  const distinct = urls.filter((_, index) => duplicateOf[index] === undefined).length;
  const pending = outcomes.filter(
    (outcome, index) =>
      duplicateOf[index] === undefined && outcome.failure === null && evidence[index]?.interval === undefined,
  ).length;
  const conclusion = conclude(evidence, { shift: toRealtime, electorate: { servers: distinct, pending }, dateLag });
  const results = serverResults(gathered, evidence, conclusion, toRealtime);
  const { selection, bound } = conclusion;
  let { theta } = conclusion;
  let reason = conclusion.reason;
  // The floor: a time before it cannot be true (floor.ts), whoever agrees on it.
  if (theta !== undefined && toSeconds(steadyEnd) + theta < floor.seconds) {
    const agreed = formatUtc(addSeconds(steadyEnd, theta));
    reason = `the servers agree on ${agreed}, before the floor ${describeFloor(floor)}: not published`;
    logger?.error('http time before the floor', { reason });
    theta = undefined;
  }
  const error = theta === undefined ? undefined : conclusionError(conclusion);
  const result: MeasurementResult = {
    offset: theta === undefined ? null : theta + toRealtime,
    error: error ?? null,
    servers: results,
    survivors: theta !== undefined && selection ? selection.truechimers.length : 0,
    reason,
    caveat: theta !== undefined && conclusion.answered === 1 ? oneServerCaveat(dateLag) : null,
    timeUnverified:
      theta !== undefined && results.some((server) => server.status === 'ok' && server.tls === 'time-unverified'),
    alarm: trustAlarm(results),
    time: formatUtc(end.realtime),
    duration: diffSeconds(end.monotonicRaw, start.monotonicRaw),
  };
  const { moved } = conclusion;
  if (theta === undefined || error === undefined || bound === undefined) return { result, estimate: undefined, moved };
  const trueTime = addSeconds(steadyEnd, theta);
  return {
    result,
    estimate: { monotonicRaw: end.monotonicRaw, trueTime, error, low: bound.low - theta, high: bound.high - theta },
    moved,
  };
}

/** A measurement with the estimate it yields, anchored on CLOCK_MONOTONIC_RAW. */
/** The options checked, with their defaults: nothing has started when one is refused. */
function measureSettings(
  servers: readonly string[],
  options: MeasureOptions,
): { probes: number; timeout: number; strategy: Strategy; dateLag: number } {
  const { probes = DEFAULT_PROBES, strategy = 'bisect', dateLag = DATE_LAG } = options;
  if (!Number.isInteger(probes) || probes < 1 || probes > MAX_PROBES) {
    throw outOfRange('probes', `an integer from 1 to ${MAX_PROBES}`, probes);
  }
  // The sweep takes a second more.
  const timeout = options.timeout ?? probes + (strategy === 'sweep' ? 6 : 5);
  if (!(timeout > 0) || !Number.isFinite(timeout)) {
    throw outOfRange('timeout', 'a number > 0', timeout);
  }
  if (!(dateLag >= 0) || !Number.isFinite(dateLag)) throw outOfRange('dateLag', 'a finite number >= 0', dateLag);
  if (servers.length === 0) throw invalidArgValue('At least one server is needed');
  checkProxy(servers.map(serverUrl), options.proxy);
  return { probes, timeout, strategy, dateLag };
}

/**
 * What each server's sweep end calls: the measurement as it stands handed to `onProgress` once
 * more than half of the servers have swept, or every sweep has ended, then at each later end.
 */
function sweepEndReporter(
  gathered: Gathered,
  onProgress: ((measurement: Measurement) => void) | undefined,
  measuring: () => boolean,
  clock: Clock,
  logger: Logger,
): () => void {
  return () => {
    if (!measuring() || onProgress === undefined) return;
    const ended = gathered.outcomes.filter((outcome) => outcome.sweepEnded);
    const distinct = gathered.duplicateOf.filter((first) => first === undefined).length;
    const swept = ended.filter((outcome) => outcome.failure === null).length;
    if (ended.length < gathered.outcomes.length && swept * 2 <= distinct) return;
    try {
      onProgress(concludeAt(gathered, readClockPair(clock)));
    } catch (error) {
      // The caller's fault, not the server's whose sweep just ended.
      logger.error('http progress callback failed', { error });
    }
  };
}

interface AllServersProbing {
  probes: number;
  strategy: Strategy;
  timeout: number;
  proxy: string | undefined;
  ca: string | Buffer | undefined;
  onSweepEnd: () => void;
  /** The steady timescale every theta is against. */
  clock: Clock;
  /** The deadline's: aborting it destroys the connections. */
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Probes every distinct server at once, each on its own connection (left in `connections`
 * for the caller to destroy); a server listed again is marked failed as a duplicate.
 */
async function probeServers(
  gathered: Gathered,
  connections: Map<number, ProbeConnection>,
  probing: AllServersProbing,
): Promise<void> {
  const { urls, states, outcomes } = gathered;
  const { signal } = probing;
  // Every answer's TLS connection is judged by the gate (gate.ts), a time-unverified one too.
  const connectionOptions = {
    timeoutMs: probing.timeout * 1000,
    timeUnverified: true,
    proxy: probing.proxy,
    ca: probing.ca,
  };
  const duplicateOf = await duplicates(urls, usesProxy(probing.proxy), signal);
  gathered.duplicateOf = duplicateOf;
  for (const [index, url] of urls.entries())
    if (duplicateOf[index] === undefined) connections.set(index, createConnection(url, connectionOptions));
  // Aborting destroys the connections: every pending probe fails at once.
  signal.addEventListener(
    'abort',
    () => {
      for (const connection of connections.values()) connection.destroy(signal.reason as Error).catch(() => {});
    },
    { once: true },
  );
  const schedule = new SendSchedule(probing.clock);
  await Promise.all(
    urls.map(async (url, index): Promise<void> => {
      const first = duplicateOf[index];
      const connection = connections.get(index);
      const outcome = outcomes[index] as ServerOutcome;
      if (first !== undefined || connection === undefined) {
        states.set(index, { ...states.get(index), failed: true });
        outcome.failure =
          `duplicate of ${redactCredentials(urls[first ?? index]?.href ?? '')}: the same address, ` +
          `port and Host (one clock, counted once)`;
        outcome.sweepEnded = true;
        return;
      }
      const { probes, strategy, onSweepEnd, clock, logger } = probing;
      const firstDelay = FIRST_SPACING * [...connections.keys()].indexOf(index);
      await measureServer({
        index,
        url,
        connection,
        probes,
        strategy,
        states,
        outcome,
        onSweepEnd,
        firstDelay,
        schedule,
        clock,
        signal,
        logger,
      });
    }),
  );
}

export async function measure(servers: readonly string[], options: MeasureOptions = {}): Promise<Measurement> {
  const { clock = systemClock, logger = silentLogger, signal } = options;
  const { probes, timeout, strategy, dateLag } = measureSettings(servers, options);
  const urls = servers.map(serverUrl);
  signal?.throwIfAborted();

  // The daemon htntp feeds slews CLOCK_REALTIME (chrony up to 83 ms/s) while probes seconds
  // apart are intersected: everything inside runs on a realtime that nobody steers after
  // this instant (start's realtime + raw seconds), so every theta is against that timescale.
  const start = readClockPair(clock);
  const deadline = new AbortController();
  // Every server waits on it at once (20 servers are normal): not a listener leak.
  setMaxListeners(0, deadline.signal);
  const timer = setTimeout(() => deadline.abort(deadlineError(timeout)), timeout * 1000);
  const stop = (): void => deadline.abort(signal?.reason);
  signal?.addEventListener('abort', stop, { once: true });
  const gate = new TlsGate(options.ca, localClockVerdict(toSeconds(start.realtime), options));
  const outcomes = urls.map(() => newOutcome(gate));
  const states = new ServerStates(urls.map((_, index) => options.priors?.[index]));
  const { floor } = gate.clock;
  const gathered: Gathered = { urls, start, states, outcomes, duplicateOf: [], floor, dateLag };
  let measuring = true;
  const onSweepEnd = sweepEndReporter(gathered, options.onProgress, () => measuring, clock, logger);
  const connections = new Map<number, ProbeConnection>();
  try {
    await probeServers(gathered, connections, {
      probes,
      strategy,
      timeout,
      proxy: options.proxy,
      ca: options.ca,
      onSweepEnd,
      clock: steadyClock(clock, start),
      signal: deadline.signal,
      logger,
    });
  } finally {
    measuring = false;
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
    await Promise.all([...connections.values()].map((connection) => connection.destroy().catch(() => {})));
  }
  signal?.throwIfAborted();
  const measurement = concludeAt(gathered, readClockPair(clock), logger);
  const { result } = measurement;
  if (result.caveat) logger.warn('http bound widened', { caveat: result.caveat });
  if (result.alarm) logger.error('http alarm', { alarm: result.alarm });
  logTimeUnverified(
    logger,
    result,
    outcomes.map(({ tls }) => tls.trust),
  );
  return measurement;
}

/** Why servers verified at the local clock and servers verified only at their own time disagree, if they do. */
function trustAlarm(servers: readonly ServerResult[]): string | null {
  const count = (status: ServerStatus, trust: TlsTrust): number =>
    servers.filter((server) => server.status === status && server.tls === trust).length;
  const kinds = {
    verified: 'verified at the local clock',
    'time-unverified': 'verified only at their own Date',
  } as const;
  for (const [agree, differ] of [
    ['verified', 'time-unverified'],
    ['time-unverified', 'verified'],
  ] as const) {
    if (count('ok', agree) > 0 && count('falseticker', differ) > 0) {
      const agreeing = `${count('ok', agree)} server(s) ${kinds[agree]} agree`;
      const differing = `${count('falseticker', differ)} ${kinds[differ]} disagree with them`;
      return `${agreeing} and ${differing}: old certificates may be replayed, or the local clock is wrong`;
    }
  }
  return null;
}

/** Once per measurement that needed it: the local clock is wrong, and what the certificates were checked against. */
function logTimeUnverified(logger: Logger, result: MeasurementResult, trust: readonly (TlsTrust | null)[]): void {
  const count = trust.filter((value) => value === 'time-unverified').length;
  if (count === 0) return;
  const servers = `${count} of ${trust.length} server(s)`;
  if (result.offset !== null) {
    logger.warn(
      `the local clock is ${result.offset > 0 ? 'behind' : 'ahead'} by about ${formatDuration(result.offset)}: the ` +
        `certificates of ${servers} were not valid at the local clock's time and were checked against the ` +
        `servers' time instead`,
      { offset: result.offset, timeUnverified: count },
    );
  } else {
    logger.warn(
      `the certificates of ${servers} were not valid at the local clock's time (the local clock may be wrong) and ` +
        `were checked against the servers' time: no estimate (${result.reason ?? ''})`,
      { timeUnverified: count, reason: result.reason },
    );
  }
}

/**
 * Measures the offset of the local clock against `servers` (host[:port] = https, or
 * http(s):// URLs): `offset` = server time - local time in seconds, `error` = the final
 * interval's half-width, one entry per server. offset and error are null without a
 * majority. Rejects only for bad arguments or when `signal` aborts.
 */
export async function measureOffset(
  servers: readonly string[],
  options: MeasureOptions = {},
): Promise<MeasurementResult> {
  return (await measure(servers, options)).result;
}
