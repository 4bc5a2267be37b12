// One measurement, the part that touches the world: servers deduplicated, each probed
// concurrently on its own connection at the times plan.ts chooses, each answer checked
// (Age, Date) and bounded (interval.ts), then the conclusion (posterior.ts) reported
// against CLOCK_REALTIME. Always ends by its deadline.
import { lookup } from 'node:dns/promises';
import { setMaxListeners } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { readClockPair, steadyClock, steadyRealtime, systemClock, type Clock } from '../../clock.js';
import { redactCredentials, silentLogger, type Logger } from '../../log.js';
import { codedError, invalidArgValue, outOfRange } from '../../errors.js';
import { addSeconds, diffSeconds, formatDuration, formatUtc, toSeconds, type Timespec } from '../../time.js';
import { parseHttpDate, utcYear } from './date.js';
import { DATE_LAG, errorAround, type Interval } from './interval.js';
import { emptyServer, observe, planProbes, planTeam, planTick, type PlannedProbe, type ServerState, type TeamPlan } from './plan.js';
import { conclude, conclusionError, type ServerEvidence, type ServerStatus } from './posterior.js';
import { createConnection, probe, ProbeFault, usesProxy, type ProbeConnection } from './probe.js';
import { serverUrl } from './servers.js';
import { describeFloor } from '../../floor.js';
import { localClockVerdict, ServerTls, TlsGate, type LocalClockOptions } from './gate.js';
import type { CertificateWindow, TlsTrust } from './tls.js';
import { commonWindow, thetaWithin } from './validity.js';

export type { ServerStatus } from './posterior.js';

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
}

export interface ServerResult {
  url: string;
  /** Server clock - local clock (CLOCK_REALTIME at the end), seconds: the posterior median with symmetric legs (estimate.ts), inside the hard interval. */
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
}

export interface Measurement {
  result: MeasurementResult;
  estimate: Estimate | undefined;
}

/** A failure as `kind: detail` (proxy credentials redacted). */
export function failureReason(error: unknown): string {
  if (error instanceof ProbeFault) return redactCredentials(`${error.kind}: ${error.message}`);
  if (!(error instanceof Error)) return `error: ${String(error)}`;
  const cause = error.cause instanceof Error ? (error.cause as NodeJS.ErrnoException) : undefined;
  const code = (error as NodeJS.ErrnoException).code ?? cause?.code ?? '';
  const detail = redactCredentials(cause && cause.message !== error.message ? `${error.message} (${cause.message})` : error.message);
  const kind = ((): string => {
    if (/^(ENOTFOUND|EAI_)/.test(code)) return 'dns';
    if (code === 'ECONNREFUSED') return 'refused';
    if (/TIMEOUT|ETIMEDOUT/.test(code)) return 'timeout';
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_/.test(code) || /certificate|ssl|tls/i.test(error.message)) return 'tls';
    if (/^(ECONNRESET|EPIPE|UND_ERR_SOCKET)$/.test(code)) return 'reset';
    if (code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'HPE_HEADER_OVERFLOW') return 'headers too large';
    if (code.startsWith('HPE_') || error.name === 'HTTPParserError') return 'not HTTP';
    if (/proxy/i.test(error.message)) return 'proxy';
    return 'error';
  })();
  return `${kind}: ${code ? `${code} ` : ''}${detail}`;
}

/** Waits until the local clock reads `target`: a timer for the bulk, then turns of the event loop. */
export async function waitUntil(clock: Clock, target: number, signal: AbortSignal): Promise<void> {
  const early = target - toSeconds(clock.realtime()) - 0.002;
  if (early > 0) await sleep(early * 1000, undefined, { signal });
  // Spinning through setImmediate keeps other servers' sockets served meanwhile.
  while (toSeconds(clock.realtime()) < target) {
    signal.throwIfAborted();
    await nextTurn();
  }
}

class ServerFailure extends Error {}

const isStaleConnection = (error: unknown): boolean =>
  error instanceof Error && !(error instanceof ProbeFault) && /^(UND_ERR_SOCKET|ECONNRESET|EPIPE)$/.test((error as NodeJS.ErrnoException).code ?? '');

/**
 * The servers' state while they are probed: each server replaces its own entry after an
 * answer; the team's plan is worked out once per state and shared by all servers.
 */
class Progress {
  readonly servers: ServerState[];
  #team: readonly number[] | undefined;
  #version = 0;
  #plan: { version: number; plan: TeamPlan } | undefined;

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

  /** Server `index`'s aim as a team member, and the team's interval (undefined outside a team). */
  team(index: number): { aim: number | undefined; support: Interval | undefined } {
    if (this.#plan?.version !== this.#version) {
      const plan = planTeam({ servers: this.servers, team: this.#team });
      this.#team = plan.team;
      this.#plan = { version: this.#version, plan };
    }
    const { aims, team, support } = this.#plan.plan;
    return { aim: aims.get(index), support: team?.includes(index) ? support : undefined };
  }
}

interface ServerOutcome {
  rtt: number | null;
  probes: number;
  verifications: number;
  failure: string | null;
}

interface ServerProbing {
  index: number;
  url: URL;
  connection: ProbeConnection;
  /** Its https connections, judged at the first Date on each (gate.ts). */
  tls: ServerTls;
  probes: number;
  progress: Progress;
  clock: Clock;
  signal: AbortSignal;
  logger: Logger;
}

async function measureServer({ index, url, connection, tls, probes, progress, clock, signal, logger }: ServerProbing): Promise<ServerOutcome> {
  let rtt = Infinity;
  let answered = 0;
  let verifications = 0;
  const outcome = (failure: string | null): ServerOutcome => ({ rtt: Number.isFinite(rtt) ? rtt : null, probes: answered, verifications, failure });
  const send = async (planned: PlannedProbe | undefined): Promise<void> => {
    if (planned) await waitUntil(clock, planned.sendAt, signal);
    const response = await probe(connection, url, clock).catch((error: unknown) => {
      // A kept-alive connection the other side closed as this request went out (a proxy
      // closing after each answer, with verification probes close behind): HEAD is
      // idempotent, so once more on a fresh connection, timed afresh.
      if (signal.aborted || !isStaleConnection(error)) throw error;
      return probe(connection, url, clock);
    });
    rtt = Math.min(rtt, diffSeconds(response.receiveTime, response.sendTime));
    if (response.age !== undefined) throw new ServerFailure(`cached: response carries Age: ${response.age}`);
    if (response.date === undefined) throw new ServerFailure(`no Date header (status ${response.statusCode})`);
    const date = parseHttpDate(response.date, utcYear(response.sendTime.sec));
    if (date === undefined) throw new ServerFailure(`unparseable Date: ${JSON.stringify(response.date.slice(0, 64))}`);
    try {
      tls.dated(date.seconds);
    } catch (error) {
      throw new ServerFailure(failureReason(error));
    }
    const next = observe(progress.get(index), { dateSeconds: date.seconds, sendTime: response.sendTime, receiveTime: response.receiveTime });
    logger.debug('http probe', {
      url: url.href,
      kind: planned?.kind ?? 'first',
      date: response.date,
      low: diffSeconds({ sec: date.seconds, nsec: 0 }, response.receiveTime),
      high: diffSeconds({ sec: date.seconds, nsec: 0 }, response.sendTime) + 1,
      rtt: diffSeconds(response.receiveTime, response.sendTime),
    });
    if (next.fault !== undefined) throw new ServerFailure(next.fault);
    progress.set(index, next.server);
    if (planned === undefined || planned.kind === 'bisect') answered += 1;
    else verifications += 1;
  };
  try {
    await send(undefined);
    for (let aimed = 1; aimed < probes; aimed += 1) {
      const tick = planTick(progress.get(index), toSeconds(clock.realtime()), aimed, probes, progress.team(index).support);
      if (tick === undefined) break;
      if (tick.dropPrior) progress.set(index, { ...progress.get(index), prior: undefined });
      progress.set(index, { ...progress.get(index), lastTick: tick.tick }, false);
      // The aim, which may need the team's posterior, is settled DECIDE_AHEAD before the
      // earliest send; even with no time to spare, answers already read are stamped first.
      await waitUntil(clock, tick.decideAt, signal);
      await nextTurn();
      const team = progress.team(index);
      for (const planned of planProbes(progress.get(index), tick.tick, team.aim, aimed, probes, team.support)) await send(planned);
    }
    return outcome(null);
  } catch (error) {
    if (signal.aborted && answered > 0 && !(error instanceof ServerFailure)) return outcome(null); // the deadline ends probing; what was measured stands
    progress.set(index, { ...progress.get(index), interval: undefined, failed: true });
    return outcome(error instanceof ServerFailure ? error.message : failureReason(signal.aborted ? signal.reason : error));
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
export async function duplicates(urls: readonly URL[], viaProxy: boolean, signal: AbortSignal): Promise<(number | undefined)[]> {
  const port = (url: URL): string => url.port || (url.protocol === 'https:' ? '443' : '80');
  const address = async (url: URL): Promise<string> => {
    if (viaProxy) return url.hostname;
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
    // A name that does not resolve is not a duplicate: its probes report the failure.
    return Promise.race([lookup(url.hostname.replace(/^\[|\]$/g, '')).then((found) => found.address), aborted]).catch(() => `unresolved ${url.hostname}`);
  };
  const keys = await Promise.all(urls.map(async (url) => `${url.protocol}//${await address(url)}:${port(url)} Host ${url.host}`));
  return keys.map((key, index) => {
    const first = keys.indexOf(key);
    return first < index ? first : undefined;
  });
}

/** A measurement with the estimate it yields, anchored on CLOCK_MONOTONIC_RAW. */
export async function measure(servers: readonly string[], options: MeasureOptions = {}): Promise<Measurement> {
  const { probes = DEFAULT_PROBES, clock = systemClock, logger = silentLogger, signal } = options;
  if (!Number.isInteger(probes) || probes < 1 || probes > MAX_PROBES) {
    throw outOfRange('probes', `an integer from 1 to ${MAX_PROBES}`, probes);
  }
  const timeout = options.timeout ?? probes + 5;
  if (!(timeout > 0) || !Number.isFinite(timeout)) {
    throw outOfRange('timeout', 'a number > 0', timeout);
  }
  if (servers.length === 0) throw invalidArgValue('At least one server is needed');
  const urls = servers.map(serverUrl);
  signal?.throwIfAborted();

  // The daemon htntp feeds slews CLOCK_REALTIME (chrony up to 83 ms/s) while probes seconds
  // apart are intersected: everything inside runs on a realtime that nobody steers after
  // this instant (start's realtime + raw seconds), so every theta is against that timescale.
  const start = readClockPair(clock);
  const steady = steadyClock(clock, start);
  const deadline = new AbortController();
  // Every server waits on it at once (20 servers are normal): not a listener leak.
  setMaxListeners(0, deadline.signal);
  const timer = setTimeout(() => deadline.abort(deadlineError(timeout)), timeout * 1000);
  const stop = (): void => deadline.abort(signal?.reason);
  signal?.addEventListener('abort', stop, { once: true });
  const connectionOptions = { timeoutMs: timeout * 1000, ...(options.proxy === undefined ? {} : { proxy: options.proxy }), ...(options.ca === undefined ? {} : { ca: options.ca }) };
  const viaProxy = usesProxy(options.proxy);
  const progress = new Progress(urls.map((_, index) => options.priors?.[index]));
  let outcomes: ServerOutcome[];
  const connections = new Map<number, ProbeConnection>();
  const gate = new TlsGate(options.ca, localClockVerdict(toSeconds(start.realtime), options));
  const tlsOf = urls.map(() => new ServerTls(gate));
  try {
    const duplicateOf = await duplicates(urls, viaProxy, deadline.signal);
    for (const [index, url] of urls.entries()) if (duplicateOf[index] === undefined) connections.set(index, createConnection(url, { ...connectionOptions, onTls: (tlsOf[index] as ServerTls).connected }));
    // Aborting destroys the connections: every pending probe fails at once.
    deadline.signal.addEventListener('abort', () => {
      for (const connection of connections.values()) connection.destroy(deadline.signal.reason as Error).catch(() => {});
    }, { once: true });
    outcomes = await Promise.all(
      urls.map(async (url, index): Promise<ServerOutcome> => {
        const first = duplicateOf[index];
        const connection = connections.get(index);
        if (first !== undefined || connection === undefined) {
          progress.set(index, { ...progress.get(index), failed: true });
          return { rtt: null, probes: 0, verifications: 0, failure: `duplicate of ${redactCredentials(urls[first ?? index]?.href ?? '')}: the same address, port and Host (one clock, counted once)` };
        }
        return measureServer({ index, url, connection, tls: tlsOf[index] as ServerTls, probes, progress, clock: steady, signal: deadline.signal, logger });
      }),
    );
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
    await Promise.all([...connections.values()].map((connection) => connection.destroy().catch(() => {})));
  }
  signal?.throwIfAborted();
  // The anchor: one clock pair. Theta is against the steady timescale; what is reported is
  // against CLOCK_REALTIME as it reads now, whatever was done to it since the start.
  const end = readClockPair(clock);
  const steadyEnd = steadyRealtime(start, end.monotonicRaw);
  const toRealtime = diffSeconds(steadyEnd, end.realtime);

  // Certificates bound theta: the true time over the measurement must lie in every window
  // of the chains (a chain valid at a wrong local clock may not be at the true time).
  const trust = tlsOf.map((tls) => tls.trust);
  const windows = tlsOf.map((tls) => tls.windows);
  const evidence: ServerEvidence[] = outcomes.map((outcome, index) => {
    const server = progress.get(index);
    const window = commonWindow(windows[index] ?? []);
    const validity = window && thetaWithin(window, toSeconds(start.realtime), toSeconds(steadyEnd));
    return { interval: server.failed ? undefined : server.interval, lows: server.lows, rtts: server.rtts, failure: outcome.failure, validity };
  });
  const conclusion = conclude(evidence, toRealtime);
  const results: ServerResult[] = outcomes.map((outcome, index) => {
    const { offset, status, reason } = conclusion.servers[index] as { offset: number | undefined; status: ServerStatus; reason: string | null };
    // A failed server gives no figures (one whose certificates are not valid at the agreed time included).
    const interval = status === 'failed' ? undefined : evidence[index]?.interval;
    // The fields in the order users have always seen them; the interval itself last.
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
  const { selection } = conclusion;
  let { theta } = conclusion;
  let reason = conclusion.reason;
  // The floor: a time before it cannot be true (floor.ts), whoever agrees on it.
  const floor = gate.clock.floor;
  if (theta !== undefined && toSeconds(steadyEnd) + theta < floor.seconds) {
    reason = `the servers agree on ${formatUtc(addSeconds(steadyEnd, theta))}, before the floor ${describeFloor(floor)}: not published`;
    logger.error('http time before the floor', { reason });
    theta = undefined;
  }
  const error = theta === undefined ? undefined : conclusionError(conclusion);
  const caveat =
    theta !== undefined && conclusion.answered === 1
      ? `one server alone: the bound leaves ${DATE_LAG} s above its interval for a Date cached on a timer (as lighttpd's), which no other server can expose`
      : null;
  if (caveat) logger.warn('http bound widened', { caveat });
  const result: MeasurementResult = {
    offset: theta === undefined ? null : theta + toRealtime,
    error: error ?? null,
    servers: results,
    survivors: theta !== undefined && selection ? selection.truechimers.length : 0,
    reason,
    caveat,
    timeUnverified: theta !== undefined && results.some((server) => server.status === 'ok' && server.tls === 'time-unverified'),
    alarm: trustAlarm(results),
    time: formatUtc(end.realtime),
    duration: diffSeconds(end.monotonicRaw, start.monotonicRaw),
  };
  if (result.alarm) logger.error('http alarm', { alarm: result.alarm });
  logTimeUnverified(logger, result, trust);
  if (theta === undefined || error === undefined) return { result, estimate: undefined };
  return { result, estimate: { monotonicRaw: end.monotonicRaw, trueTime: addSeconds(steadyEnd, theta), error } };
}

/** Why servers verified at the local clock and servers verified only at their own time disagree, if they do. */
function trustAlarm(servers: readonly ServerResult[]): string | null {
  const count = (status: ServerStatus, trust: TlsTrust): number => servers.filter((server) => server.status === status && server.tls === trust).length;
  const kinds = { verified: 'verified at the local clock', 'time-unverified': 'verified only at their own Date' } as const;
  for (const [agree, differ] of [['verified', 'time-unverified'], ['time-unverified', 'verified']] as const) {
    if (count('ok', agree) > 0 && count('falseticker', differ) > 0) {
      return `${count('ok', agree)} server(s) ${kinds[agree]} agree and ${count('falseticker', differ)} ${kinds[differ]} disagree with them: old certificates may be replayed, or the local clock is wrong`;
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
      `the local clock is ${result.offset > 0 ? 'behind' : 'ahead'} by about ${formatDuration(result.offset)}: the certificates of ${servers} were not valid at the local clock's time and were checked against the servers' time instead`,
      { offset: result.offset, timeUnverified: count },
    );
  } else {
    logger.warn(`the certificates of ${servers} were not valid at the local clock's time (the local clock may be wrong) and were checked against the servers' time: no estimate (${result.reason ?? ''})`, { timeUnverified: count, reason: result.reason });
  }
}

/**
 * Measures the offset of the local clock against `servers` (host[:port] = https, or
 * http(s):// URLs): `offset` = server time - local time in seconds, `error` = the final
 * interval's half-width, one entry per server. offset and error are null without a
 * majority. Rejects only for bad arguments or when `signal` aborts.
 */
export async function measureOffset(servers: readonly string[], options: MeasureOptions = {}): Promise<MeasurementResult> {
  return (await measure(servers, options)).result;
}
