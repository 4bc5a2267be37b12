// One measurement: every server probed concurrently on its own connection, probes aimed
// at the server's second boundary, per-server intervals intersected, then Marzullo's
// selection across servers. Always ends by its deadline.
import { setMaxListeners } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { readClockPair, steadyClock, steadyRealtime, systemClock, type Clock } from '../../clock.js';
import { redactCredentials, silentLogger, type Logger } from '../../log.js';
import { codedError, invalidArgValue, outOfRange } from '../../errors.js';
import { addSeconds, diffSeconds, formatDuration, formatUtc, fromSeconds, toSeconds, type Timespec } from '../../time.js';
import { parseHttpDate, utcYear } from './date.js';
import { Ensemble } from './ensemble.js';
import { asymmetrySigma, median, posteriorMedian, posteriorQuantiles } from './estimate.js';
import { intersect, midpoint, probeInterval, selectMajority, symmetricLow, type Interval } from './interval.js';
import { createDispatcher, probe, ProbeFault } from './probe.js';
import { serverUrl } from './servers.js';
import type { CertificateWindow, TlsConnection, TlsTrust } from './tls.js';
import { commonWindow, selectWithinValidity, thetaWithin } from './validity.js';

export const DEFAULT_PROBES = 8;
/** More probes than this add seconds without adding bits worth having. */
export const MAX_PROBES = 64;

/**
 * How long after its tick a server may still send the previous second's cached Date (Node
 * was seen 1 ms late on an idle loopback): without it an aimed probe could reject a good
 * server as "not one clock".
 */
export const DATE_STALENESS = 0.002;

/**
 * A probe's aim is settled this long before it is sent, so that the other servers'
 * answers to the previous second are in (round trips up to ~0.7 s; slower ones aim with
 * what has arrived).
 */
const DECIDE_AHEAD = 0.2;

/**
 * Quantiles of a server's own posterior: the part a prior must meet to be kept (1 % to
 * 99 %), the median, and the top a tick leaves room for (a team's aim may sit at the edge
 * of a member's own interval).
 */
const OWN_QUANTILES = [0.01, 0.5, 0.99, 0.999];

interface OwnQuantiles {
  first: number;
  half: number;
  top: number;
}

export interface MeasureOptions {
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

export type ServerStatus = 'ok' | 'falseticker' | 'failed';

export interface ServerResult {
  url: string;
  /** Server clock - local clock (CLOCK_REALTIME at the end), seconds: the posterior median with symmetric legs (estimate.ts), inside the hard interval. */
  offset: number | null;
  /** offset ± error covers the server's whole hard interval, seconds. */
  error: number | null;
  /** Shortest round trip seen, seconds. */
  rtt: number | null;
  /** Probes answered with a usable Date. */
  probes: number;
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
  /** Some of the agreeing servers' certificates were checked against the servers' time, not the local clock's. */
  timeUnverified: boolean;
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

interface ServerOutcome {
  interval: Interval | undefined;
  rtt: number | null;
  probes: number;
  reason: string | null;
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
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_/.test(code) || /certificate|ssl|tls/i.test(error.message)) return 'tls';
    if (/TIMEOUT|ETIMEDOUT/.test(code)) return 'timeout';
    if (/^(ECONNRESET|EPIPE|UND_ERR_SOCKET)$/.test(code)) return 'reset';
    if (code === 'UND_ERR_HEADERS_OVERFLOW') return 'headers too large';
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

const clamp = (value: number, interval: Interval): number => Math.min(interval.high, Math.max(interval.low, value));

/** The half-width around `offset` that still covers all of `interval` (the truth is in there). */
const errorAround = (offset: number, interval: Interval): number => Math.max(offset - interval.low, interval.high - offset);

interface ServerProbing {
  index: number;
  url: URL;
  dispatcher: Dispatcher;
  probes: number;
  prior: Interval | undefined;
  ensemble: Ensemble;
  clock: Clock;
  signal: AbortSignal;
  logger: Logger;
}

async function measureServer({ index, url, dispatcher, probes, prior, ensemble, clock, signal, logger }: ServerProbing): Promise<ServerOutcome> {
  let interval: Interval | undefined;
  let rtt = Infinity;
  let answered = 0;
  let lastDate: number | undefined;
  let lastTick = -Infinity;
  // Each probe's bound with the stamp taken at the middle of its round trip (symmetric
  // legs): not hard, and they may cross, but they carry the estimate.
  const lows: number[] = [];
  const rtts: number[] = [];
  const outcome = (reason: string | null): ServerOutcome => ({ interval, rtt: Number.isFinite(rtt) ? rtt : null, probes: answered, reason });
  // In a team a server takes its share of the joint posterior (ensemble.ts). Alone, it
  // bisects its own posterior, inside the prior while the answers leave it plausible (a
  // wrong prior must not hold the probes at its edge).
  let aimPrior = prior;
  const ownQuantilesDroppingPrior = (current: Interval): OwnQuantiles => {
    const [first = current.low, half = midpoint(current), last = current.high, top = current.high] = posteriorQuantiles(
      [{ lows, sigma: asymmetrySigma(rtts) }],
      current,
      OWN_QUANTILES,
    );
    if (aimPrior && !intersect(aimPrior, { low: first, high: last })) {
      aimPrior = undefined;
      ensemble.forgetPrior(index);
    }
    return { first, half, top };
  };
  const aim = (current: Interval, { half }: OwnQuantiles): number => {
    const joint = ensemble.jointAim(index);
    if (joint !== undefined) return joint;
    const inPrior = aimPrior && intersect(aimPrior, current);
    return inPrior ? posteriorMedian(lows, asymmetrySigma(rtts), inPrior) : half;
  };
  try {
    for (let probeIndex = 0; probeIndex < probes; probeIndex += 1) {
      if (interval !== undefined) {
        // Aim the server's stamp at a second boundary where theta is in doubt: the answer
        // tightens the upper bound if the stamp falls just before the tick, the lower one
        // if just after. One tick per probe, each a later one: probes then span probes - 1
        // seconds, so a Date that does not advance shows. The typical up-leg, not the
        // shortest: aiming early by the jitter would waste the probe.
        // The tick leaves room for any aim up to the server's own 99.9 % point (or its prior);
        // the aim itself, which may need the team's posterior, is settled DECIDE_AHEAD
        // before the earliest send where the schedule allows: right after an answer, other
        // servers' answers may be waiting to be stamped.
        const upDelay = median(rtts) / 2;
        const current = interval;
        const own = ownQuantilesDroppingPrior(current);
        const highest = aimPrior ? Math.min(own.top, Math.max(aimPrior.high, own.first)) : own.top;
        const tick = Math.max(Math.ceil(toSeconds(clock.realtime()) + 0.003 + upDelay + highest), lastTick + 1);
        await waitUntil(clock, tick - highest - upDelay - DECIDE_AHEAD, signal);
        // Even with no time to spare, answers already read are stamped before the arithmetic.
        await nextTurn();
        const theta = Math.min(highest, clamp(aim(current, own), current));
        lastTick = tick;
        await waitUntil(clock, tick - theta - upDelay, signal);
      }
      const response = await probe(dispatcher, url, clock);
      rtt = Math.min(rtt, diffSeconds(response.receiveTime, response.sendTime));
      if (response.age !== undefined) throw new ServerFailure(`cached: response carries Age: ${response.age}`);
      if (response.date === undefined) throw new ServerFailure(`no Date header (status ${response.statusCode})`);
      const date = parseHttpDate(response.date, utcYear(response.sendTime.sec));
      if (date === undefined) throw new ServerFailure(`unparseable Date: ${JSON.stringify(response.date.slice(0, 64))}`);
      const probeBounds = probeInterval(date.seconds, response.sendTime, response.receiveTime, DATE_STALENESS);
      logger.debug('http probe', {
        url: url.href,
        date: response.date,
        low: probeBounds.low,
        high: probeBounds.high,
        rtt: diffSeconds(response.receiveTime, response.sendTime),
      });
      const narrowed = interval === undefined ? probeBounds : intersect(interval, probeBounds);
      if (narrowed === undefined) {
        const frozen = lastDate === date.seconds && interval !== undefined && probeBounds.high < interval.low;
        throw new ServerFailure(
          frozen
            ? `Date does not advance with local time (stuck at ${response.date}): a cached or frozen Date`
            : `Date intervals do not intersect after ${answered + 1} probes: not one clock (load balancer backends) or a clock step`,
        );
      }
      interval = narrowed;
      lows.push(symmetricLow(date.seconds, response.sendTime, response.receiveTime));
      rtts.push(diffSeconds(response.receiveTime, response.sendTime));
      ensemble.update(index, interval, lows, rtts);
      lastDate = date.seconds;
      lastTick = Math.max(lastTick, date.seconds);
      answered += 1;
    }
    return outcome(null);
  } catch (error) {
    if (signal.aborted && answered > 0 && !(error instanceof ServerFailure)) return outcome(null); // the deadline ends probing; what was measured stands
    ensemble.update(index, undefined, [], []);
    const reason = error instanceof ServerFailure ? error.message : failureReason(signal.aborted ? signal.reason : error);
    return { ...outcome(reason), interval: undefined };
  }
}

function deadlineError(seconds: number): Error {
  return codedError(`no answer within the ${seconds} s deadline`, 'ETIMEDOUT');
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
  const connection = { timeoutMs: timeout * 1000, ...(options.proxy === undefined ? {} : { proxy: options.proxy }), ...(options.ca === undefined ? {} : { ca: options.ca }) };
  const connections: TlsConnection[][] = urls.map(() => []);
  const dispatchers = urls.map((url, index) => createDispatcher(url, { ...connection, onTls: (tls) => connections[index]?.push(tls) }));
  // Aborting destroys the connections: every pending probe fails at once.
  deadline.signal.addEventListener('abort', () => {
    for (const dispatcher of dispatchers) dispatcher.destroy(deadline.signal.reason as Error).catch(() => {});
  }, { once: true });
  const priors = urls.map((_, index) => options.priors?.[index]);
  const ensemble = new Ensemble(priors);
  let outcomes: ServerOutcome[];
  try {
    outcomes = await Promise.all(
      urls.map((url, index) =>
        measureServer({ index, url, dispatcher: dispatchers[index] as Dispatcher, probes, prior: priors[index], ensemble, clock: steady, signal: deadline.signal, logger }),
      ),
    );
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
    await Promise.all(dispatchers.map((dispatcher) => dispatcher.destroy().catch(() => {})));
  }
  signal?.throwIfAborted();
  // The anchor: one clock pair. Theta is against the steady timescale; what is reported is
  // against CLOCK_REALTIME as it reads now, whatever was done to it since the start.
  const end = readClockPair(clock);
  const steadyEnd = steadyRealtime(start, end.monotonicRaw);
  const toRealtime = diffSeconds(steadyEnd, end.realtime);
  const reported = (interval: Interval): Interval => ({ low: interval.low + toRealtime, high: interval.high + toRealtime });

  // Certificates bound theta: the true time over the measurement must lie in every window
  // of the chains (a chain valid at a wrong local clock may not be at the true time).
  const trust = connections.map((list): TlsTrust | null => (list.length === 0 ? null : list.some((tls) => tls.trust === 'time-unverified') ? 'time-unverified' : 'verified'));
  const windows = connections.map((list) => uniqueWindows(list.flatMap((tls) => tls.windows)));
  const validity = windows.map((list) => {
    const window = commonWindow(list);
    return window && thetaWithin(window, toSeconds(start.realtime), toSeconds(steadyEnd));
  });
  const candidates = outcomes.flatMap((outcome, index) => (outcome.interval ? [{ index, interval: outcome.interval, validity: validity[index] }] : []));
  const { selection, outside } = selectWithinValidity(candidates, selectMajority, (found) => found.interval);
  const truechimers = new Set(selection?.truechimers.map((position) => candidates[position]?.index));
  const outsideByServer = new Map([...outside].map(([position, agreed]) => [candidates[position]?.index ?? -1, agreed]));
  const majority = selection && reported(selection.interval);
  const results: ServerResult[] = outcomes.map((outcome, index) => {
    // A server whose certificates are not valid at the agreed time failed: no figures from it.
    const agreed = outsideByServer.get(index);
    const measured = agreed ? undefined : outcome.interval;
    const interval = measured && reported(measured);
    // Each server's own estimate, worked out now that no answer is waiting to be stamped.
    const [group] = ensemble.groups([index]);
    const offset = measured && clamp(group ? posteriorMedian(group.lows, group.sigma, measured) : midpoint(measured), measured) + toRealtime;
    const window = commonWindow(windows[index] ?? []);
    const status: ServerStatus = interval === undefined || agreed ? 'failed' : selection === undefined || truechimers.has(index) ? 'ok' : 'falseticker';
    const reason =
      agreed && window
        ? `tls: its certificates, valid ${formatUtc(fromSeconds(window.low))} to ${formatUtc(fromSeconds(window.high))}, are not valid at the time the servers agree on (${formatUtc(addSeconds(steadyEnd, agreed.low))})`
        : status === 'failed'
        ? (outcome.reason ?? 'no probe answered')
        : status === 'falseticker' && interval && majority
          ? `interval [${interval.low.toFixed(6)}, ${interval.high.toFixed(6)}] s excludes the majority's [${majority.low.toFixed(6)}, ${majority.high.toFixed(6)}] s`
          : null;
    // The issue's field order first; the interval itself last.
    return {
      url: redactCredentials(urls[index]?.href ?? ''),
      offset: offset ?? null,
      error: interval && offset !== undefined ? errorAround(offset, interval) : null,
      rtt: outcome.rtt,
      probes: outcome.probes,
      status,
      reason,
      low: interval?.low ?? null,
      high: interval?.high ?? null,
      tls: trust[index] ?? null,
      certificates: trust[index] ? (windows[index] ?? []) : null,
    };
  });
  const noEstimate =
    candidates.length === 0
      ? `no server gave a usable Date (${results.length} failed)`
      : selection === undefined
        ? outside.size > 0
          ? `no majority once the ${outside.size} server(s) whose certificates are not valid at the agreed time are left out: no region is shared by more than half of the ${candidates.length} servers that answered`
          : `no majority: no region is shared by more than half of the ${candidates.length} servers that answered`
        : null;
  // The truechimers measure one theta: their joint posterior decides the point; the region
  // they share bounds the error.
  const team = selection?.truechimers.map((position) => candidates[position]?.index ?? -1) ?? [];
  const theta = selection && clamp(posteriorQuantiles(ensemble.groups(team), selection.interval, [0.5])[0] ?? midpoint(selection.interval), selection.interval);
  const error = selection && theta !== undefined ? errorAround(theta, selection.interval) : undefined;
  const result: MeasurementResult = {
    offset: theta === undefined ? null : theta + toRealtime,
    error: error ?? null,
    servers: results,
    survivors: selection ? selection.truechimers.length : 0,
    reason: noEstimate,
    timeUnverified: selection !== undefined && [...truechimers].some((index) => index !== undefined && trust[index] === 'time-unverified'),
    time: formatUtc(end.realtime),
    duration: diffSeconds(end.monotonicRaw, start.monotonicRaw),
  };
  logTimeUnverified(logger, result, trust);
  if (theta === undefined || error === undefined) return { result, estimate: undefined };
  return { result, estimate: { monotonicRaw: end.monotonicRaw, trueTime: addSeconds(steadyEnd, theta), error } };
}

const uniqueWindows = (windows: readonly CertificateWindow[]): CertificateWindow[] => [...new Map(windows.map((window) => [JSON.stringify(window), window])).values()];

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
