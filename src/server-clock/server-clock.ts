// ServerClock: a server's time inside an app. The estimate is an interval of phi = server
// time - u(raw), u being realtime as it read at construction plus raw seconds since: now()
// is a raw clock read and an add, right whatever is done to the realtime clock, and the
// bounds widen with the raw oscillator's assumed drift as the estimate ages.
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  monotonicRawMs,
  readClockPair,
  steadyClock,
  steadyRealtime,
  systemClock,
  type Clock,
  type ClockPair,
} from '../clock.js';
import { codedError, invalidArgType, invalidArgValue, outOfRange } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import {
  carry,
  carryPriors,
  DRIFT_PPM,
  priorsOf,
  type HeldInterval,
  type HeldPriors,
} from '../sources/http/carry-forward.js';
import { DATE_LAG, intersect } from '../sources/http/interval.js';
import { MAX_PROBES, measure, type Estimate, type MeasurementResult } from '../sources/http/measure.js';
import { checkProxy } from '../sources/http/probe.js';
import { serverUrl } from '../sources/http/servers.js';
import type { LocalClockOptions } from '../sources/http/gate.js';
import { diffSeconds, formatDuration, type Timespec } from '../time.js';
import { providerRound, type TimeProvider } from './provider.js';

export type { TimeProvider } from './provider.js';

export interface ServerClockOptions extends LocalClockOptions {
  /** HTTP(S) servers whose Date headers give the time (host[:port] means https). */
  servers?: readonly string[];
  /** Or a function returning the server's time in ms since the epoch. */
  provider?: TimeProvider;
  /** Seconds between re-measurements (default 300), each jittered ±10 %. */
  refresh?: number;
  /** Provider mode: half-width, seconds, at which a round's calls stop early once three agree (default 0.005). */
  target?: number;
  /** Probes per server per refresh, or provider calls per round (default 8). */
  probes?: number;
  /** `host:port` of an HTTP proxy; without it HTTPS_PROXY/HTTP_PROXY/NO_PROXY apply. */
  proxy?: string;
  /** Extra trusted CA certificates (PEM). */
  ca?: string | Buffer;
  /** Aborting it closes the clock. */
  signal?: AbortSignal;
  logger?: Logger;
  /** How fast the local raw oscillator may drift from true time, ppm (default 50): the bounds' growth with age. */
  driftPpm?: number;
  /**
   * When one Date server alone answers: how far its Date may lag its own clock, seconds, added above
   * the bounds (default 1: lighttpd refreshes its cached Date on its monotonic clock's
   * second, up to a second late, and nothing else can tell). 0 for a server known to stamp
   * every response (nginx, apache2, Node's http): the bounds then shrink to the probes'.
   */
  dateLag?: number;
  /** The provider's resolution, ms (default 1: a truncated ms timestamp). */
  resolution?: number;
  /** Per provider call, seconds (default 5). */
  timeout?: number;
  /**
   * A realtime clock that moves against the raw one by more than this, seconds (plus 85 ms per second, the fastest
   * daemon slew), was stepped (default 0.1).
   */
  stepThreshold?: number;
  /** The two clocks (default: the system's); tests step a fake realtime. */
  clock?: Clock;
}

export type ServerClockSource = 'sweep' | 'refine' | 'measure' | 'provider';

export interface ServerClockUpdate {
  /** Server - local (CLOCK_REALTIME) now, seconds. */
  offset: number;
  /** The server's time now lies in [earliest, latest], ms. */
  earliest: number;
  latest: number;
  /** Half-width of the bounds, seconds. */
  error: number;
  /**
   * What produced it: the first measurement's sweep, that measurement's end, a refresh measurement, a provider round.
   */
  source: ServerClockSource;
  /** Servers (provider mode: this round's calls) in the majority, and how many gave an interval. */
  survivors: number;
  candidates: number;
}

export interface ServerClockStep {
  /**
   * `local`: how far realtime moved against the raw clock beyond any slew, seconds.
   * `server`: how far the servers' time moved, seconds (the middle of the new bounds
   * against the old ones carried to now, which they no longer meet; or the median step
   * that most servers' answers showed inside one measurement, which then publishes nothing).
   */
  step: number;
  /** Which clock stepped: the local realtime clock, or the servers' (provider's). */
  clock: 'local' | 'server';
}

export interface ServerClockEvents {
  update: [ServerClockUpdate];
  step: [ServerClockStep];
  error: [Error];
  close: [];
}

interface HeldEstimate {
  /** The published region of phi, at raw instant `at`. */
  interval: HeldInterval;
  /** phi's point estimate, inside the region. */
  point: number;
  /** now() = base + raw ms. */
  base: number;
}

const MAX_SLEW = 0.085;
const STEP_CHECK_MS = 1000;

/** options[name], or `fallback` when not given: a finite number above 0 (or at 0 with `allowZero`). */
function positiveOption(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgType(`options.${name}`, 'number', value);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero))
    throw outOfRange(`options.${name}`, allowZero ? 'a finite number >= 0' : 'a finite number > 0', value);
  return value;
}

const rawMs = (raw: Timespec): number => raw.sec * 1000 + raw.nsec / 1e6;

export class ServerClock extends EventEmitter<ServerClockEvents> {
  readonly #clock: Clock;
  /** The raw clock in ms: the addon's slots directly for the system clock (now() builds no object). */
  readonly #rawMs: () => number;
  readonly #steady: Clock;
  readonly #origin: ClockPair;
  readonly #urls: URL[] | undefined;
  readonly #provider: TimeProvider | undefined;
  readonly #refresh: number;
  readonly #target: number;
  readonly #probes: number;
  readonly #driftPpm: number;
  readonly #resolution: number;
  readonly #dateLag: number;
  readonly #timeout: number;
  readonly #stepThreshold: number;
  readonly #proxy: string | undefined;
  readonly #ca: string | Buffer | undefined;
  readonly #logger: Logger;
  /** How the https gate learns the local clock's standing (gate.ts). */
  readonly #localClock: LocalClockOptions;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.close();
  /** The last measurement's per-server intervals: where the next one aims (never a bound). */
  #priors: HeldPriors | undefined;
  #estimate: HeldEstimate | undefined;
  #ready: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } | undefined;
  #lastPair: ClockPair;
  #stepTimer: NodeJS.Timeout;
  #wake: AbortController | undefined;
  /** A step seen while a measurement ran: the next one starts right after it. */
  #remeasure = false;
  /** Why the estimate was withdrawn (the servers' clock stepped), until a new one is made. */
  #withdrawn: string | undefined;
  #closed = false;

  constructor(options: ServerClockOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'object', options);
    const { servers, provider } = options;
    if ((servers === undefined) === (provider === undefined)) {
      throw invalidArgValue('ServerClock needs exactly one of options.servers and options.provider');
    }
    if (provider !== undefined && typeof provider !== 'function')
      throw invalidArgType('options.provider', 'function', provider);
    if (servers !== undefined) {
      if (!Array.isArray(servers) || servers.length === 0 || servers.some((server) => typeof server !== 'string')) {
        throw invalidArgValue('options.servers must be a non-empty array of strings');
      }
      this.#urls = servers.map(serverUrl);
    }
    this.#provider = provider;
    this.#refresh = positiveOption('refresh', options.refresh, 300);
    this.#target = positiveOption('target', options.target, 0.005);
    this.#probes = options.probes ?? 8;
    if (!Number.isInteger(this.#probes) || this.#probes < 1 || this.#probes > MAX_PROBES)
      throw outOfRange('options.probes', `an integer from 1 to ${MAX_PROBES}`, options.probes);
    this.#driftPpm = positiveOption('driftPpm', options.driftPpm, DRIFT_PPM, true);
    this.#resolution = positiveOption('resolution', options.resolution, 1) / 1000;
    this.#dateLag = positiveOption('dateLag', options.dateLag, DATE_LAG, true);
    this.#timeout = positiveOption('timeout', options.timeout, 5);
    this.#stepThreshold = positiveOption('stepThreshold', options.stepThreshold, 0.1);
    checkProxy(this.#urls ?? [], options.proxy);
    this.#proxy = options.proxy;
    this.#ca = options.ca;
    const { clockFile } = options;
    if (clockFile !== undefined && clockFile !== null && typeof clockFile !== 'string') {
      throw invalidArgType('options.clockFile', 'string or null', clockFile);
    }
    this.#localClock = {
      clockFile,
      ...(options.kernelClockForTests ? { kernelClockForTests: options.kernelClockForTests } : {}),
    };
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    const { clock } = options;
    this.#rawMs = clock === undefined || clock === systemClock ? monotonicRawMs : () => rawMs(clock.monotonicRaw());
    this.#origin = readClockPair(this.#clock);
    this.#lastPair = this.#origin;
    this.#steady = steadyClock(this.#clock, this.#origin);
    this.#signal = options.signal;
    this.#stepTimer = setInterval(() => this.#checkStep(readClockPair(this.#clock)), STEP_CHECK_MS).unref();
    if (this.#signal?.aborted) this.close();
    else this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    // Next turn: listeners attached right after construction hear the first events (a clock
    // closed by then only emits close).
    setImmediate(() => void this.#run());
  }

  /**
   * Resolves once a first estimate exists; concurrent callers share one measurement. Rejects if that measurement fails
   * or the clock closes first.
   */
  ready(): Promise<void> {
    if (this.#estimate) return Promise.resolve();
    if (this.#closed)
      return Promise.reject(codedError('the clock was closed before a first estimate', 'ERR_SERVER_CLOCK_CLOSED'));
    if (this.#ready === undefined) {
      let resolve!: () => void;
      let reject!: (error: Error) => void;
      const promise = new Promise<void>((yes, no) => {
        resolve = yes;
        reject = no;
      });
      this.#ready = { promise, resolve, reject };
    }
    return this.#ready.promise;
  }

  /** The server's time now, ms since the epoch (whole ms, like Date.now()). A raw clock read and an add. */
  now(): number {
    const estimate = this.#estimate;
    if (estimate === undefined) throw this.#notReady();
    return Math.floor(estimate.base + this.#rawMs());
  }

  /** The server's time now lies in [earliest, latest] (ms), given the raw oscillator drifts at most driftPpm. */
  bounds(): { earliest: number; latest: number } {
    const estimate = this.#estimate;
    if (estimate === undefined) throw this.#notReady();
    const pair = readClockPair(this.#clock);
    this.#checkStep(pair);
    return this.#boundsAt(this.#estimate ?? estimate, pair.monotonicRaw);
  }

  /** Server - local time (CLOCK_REALTIME), seconds. */
  get offset(): number {
    const estimate = this.#estimate;
    if (estimate === undefined) throw this.#notReady();
    const pair = readClockPair(this.#clock);
    this.#checkStep(pair);
    return (
      diffSeconds(steadyRealtime(this.#origin, pair.monotonicRaw), pair.realtime) + (this.#estimate ?? estimate).point
    );
  }

  /** Stops refreshing (a measurement under way is abandoned); the last estimate stays readable. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#stepTimer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#stop.abort(codedError('the clock was closed', 'ERR_SERVER_CLOCK_CLOSED'));
    this.#ready?.reject(codedError('the clock was closed before a first estimate', 'ERR_SERVER_CLOCK_CLOSED'));
    this.#ready = undefined;
  }

  #notReady(): Error {
    return codedError(
      `no estimate${this.#withdrawn ? ` (${this.#withdrawn})` : ' yet'}: await clock.ready() first`,
      'ERR_SERVER_CLOCK_NOT_READY',
    );
  }

  #boundsAt(estimate: HeldEstimate, raw: Timespec): { earliest: number; latest: number } {
    const region = carry(estimate.interval, raw, this.#driftPpm);
    const u = rawMs(raw) + (estimate.base - estimate.point * 1000);
    return { earliest: u + region.low * 1000, latest: u + region.high * 1000 };
  }

  /**
   * realtime - u moving by more than a slew can explain is a step. Forward it may also be
   * a suspend, during which the raw clock stood still while the server's went on: the
   * bounds take that in until the next measurement, which starts at once.
   */
  #checkStep(pair: ClockPair): void {
    const last = this.#lastPair;
    this.#lastPair = pair;
    const elapsed = diffSeconds(pair.monotonicRaw, last.monotonicRaw);
    const step = diffSeconds(pair.realtime, last.realtime) - elapsed;
    if (Math.abs(step) <= this.#stepThreshold + MAX_SLEW * Math.abs(elapsed)) return;
    this.#logger.warn('server clock: local realtime clock stepped', { step });
    if (step > 0 && this.#estimate)
      this.#estimate = {
        ...this.#estimate,
        interval: { ...this.#estimate.interval, high: this.#estimate.interval.high + step },
      };
    this.#remeasure = true;
    this.#wake?.abort();
    this.emit('step', { step, clock: 'local' });
  }

  /**
   * Emits `error` to listeners; unheard, it is logged: a failed refresh must not crash the app while the last bound
   * holds.
   */
  #report(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else this.#logger.error('server clock', { error: error.message, code: (error as NodeJS.ErrnoException).code });
  }

  /**
   * Holds `fresh`, a round's published region of phi, in place of what was held: never
   * their intersection, which across a step of the servers' clock is a sliver that holds
   * neither time. Fresh bounds that miss the old ones carried to their instant are the
   * servers' clock stepping (or a fault that broke the old bound): `step` is emitted and
   * nothing is held, for the round may straddle the step and hold neither time either;
   * a new first measurement starts at once. Otherwise resolves ready() and emits `update`.
   */
  #adopt(
    fresh: HeldInterval,
    point: number,
    source: ServerClockSource,
    counts: Pick<ServerClockUpdate, 'survivors' | 'candidates'>,
  ): void {
    const previous = this.#estimate;
    if (previous && intersect(carry(previous.interval, fresh.at, this.#driftPpm), fresh) === undefined) {
      this.#withdraw(point - previous.point, 'the new bounds exclude the ones held', source);
      return;
    }
    const base = rawMs(steadyRealtime(this.#origin, { sec: 0, nsec: 0 })) + point * 1000;
    this.#estimate = { interval: fresh, point, base };
    this.#withdrawn = undefined;
    this.#ready?.resolve();
    this.#ready = undefined;
    const pair = readClockPair(this.#clock);
    const { earliest, latest } = this.#boundsAt(this.#estimate, pair.monotonicRaw);
    const update: ServerClockUpdate = {
      offset: diffSeconds(steadyRealtime(this.#origin, pair.monotonicRaw), pair.realtime) + point,
      earliest,
      latest,
      error: (fresh.high - fresh.low) / 2,
      source,
      ...counts,
    };
    this.#logger.info('server clock update', { ...update });
    this.emit('update', update);
  }

  /**
   * The servers' time moved: what is held no longer holds it, so nothing is (a round straddling a step holds neither
   * time either), `step` is emitted where its size is known, and a new first measurement starts at once.
   */
  #withdraw(step: number | undefined, why: string, source: ServerClockSource): void {
    this.#estimate = undefined;
    this.#priors = undefined;
    this.#withdrawn =
      step === undefined
        ? "the servers' answers came from more than one clock: measuring afresh"
        : `the servers' clock stepped by about ${formatDuration(step)}: measuring afresh`;
    this.#logger.warn(`server clock: ${why}; ${this.#withdrawn}`, { step, source });
    this.#remeasure = true;
    if (step !== undefined) this.emit('step', { step, clock: 'server' });
  }

  /** A measurement's estimate (measure.ts) as a region of phi: the true time at its raw instant, less u there. */
  #adoptMeasurement(estimate: Estimate, result: MeasurementResult, source: ServerClockSource): void {
    const point = diffSeconds(estimate.trueTime, steadyRealtime(this.#origin, estimate.monotonicRaw));
    const fresh = { low: point + estimate.low, high: point + estimate.high, at: estimate.monotonicRaw };
    const candidates = result.servers.filter((server) => server.status !== 'failed').length;
    this.#adopt(fresh, point, source, { survivors: result.survivors, candidates });
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.#round(signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        failures += 1;
        const failure = error instanceof Error ? error : new Error(String(error));
        if (this.#estimate === undefined) {
          this.#ready?.reject(failure);
          this.#ready = undefined;
        }
        this.#report(failure);
      }
      // Failures retry after 1, 2, 4 ... s (at most the refresh period); a step cuts it short.
      const delay =
        failures > 0 ? Math.min(this.#refresh, 2 ** (failures - 1)) : this.#refresh * (0.9 + 0.2 * Math.random());
      this.#wake = new AbortController();
      if (!this.#remeasure)
        await sleep(delay * 1000, undefined, {
          signal: AbortSignal.any([signal, this.#wake.signal]),
          ref: false,
        }).catch(() => undefined);
      this.#wake = undefined;
      this.#remeasure = false;
    }
    this.emit('close');
  }

  async #round(signal: AbortSignal): Promise<void> {
    if (this.#provider) return this.#providerRound(this.#provider, signal);
    return this.#measureRound(this.#urls ?? [], signal);
  }

  async #providerRound(provider: TimeProvider, signal: AbortSignal): Promise<void> {
    const at = this.#clock.monotonicRaw();
    const round = await providerRound(provider, {
      clock: this.#steady,
      calls: this.#probes,
      resolution: this.#resolution,
      timeout: this.#timeout,
      target: this.#target,
      signal,
    });
    if (round.failed > 0 || round.falsetickers > 0) {
      this.#logger.warn('server clock provider', {
        answered: round.answered,
        failed: round.failed,
        falsetickers: round.falsetickers,
        error: round.lastError,
      });
    }
    if (round.interval === undefined) {
      const detail = round.lastError instanceof Error ? ` (${round.lastError.message})` : '';
      throw codedError(
        `no estimate from the provider: ${round.answered} of ${round.answered + round.failed} calls answered${detail}`,
        'ERR_SERVER_CLOCK_PROVIDER',
        undefined,
        round.lastError,
      );
    }
    const { interval } = round;
    const counts = { survivors: round.answered - round.falsetickers, candidates: round.answered };
    this.#adopt({ ...interval, at }, (interval.low + interval.high) / 2, 'provider', counts);
  }

  /**
   * One measurement of the engine (measure.ts): the first sweeps, so that ready() resolves
   * about a second in (`sweep`), then bisects to its end (`refine`); later ones are aimed by
   * where the last one left each server (`measure`). Its published bound, which a majority
   * of all the servers (or one server alone, with its Date-lag allowance) agrees on inside
   * their certificates' windows, is what is held.
   */
  async #measureRound(urls: URL[], signal: AbortSignal): Promise<void> {
    const first = this.#estimate === undefined;
    const priors = this.#priors && carryPriors(this.#priors, readClockPair(this.#clock));
    let swept: number | undefined;
    const { result, estimate, moved } = await measure(
      urls.map((url) => url.href),
      {
        probes: this.#probes,
        clock: this.#clock,
        logger: this.#logger,
        signal,
        dateLag: this.#dateLag,
        strategy: first ? 'sweep' : 'bisect',
        ...(priors ? { priors } : {}),
        ...(first
          ? {
              // Each sweep that ends narrows what the first published.
              onProgress: (progress) => {
                const { estimate: interim } = progress;
                if (interim === undefined || (swept !== undefined && interim.high - interim.low >= 0.9 * swept)) return;
                swept = interim.high - interim.low;
                this.#adoptMeasurement(interim, progress.result, 'sweep');
              },
            }
          : {}),
        proxy: this.#proxy,
        ca: this.#ca,
        ...this.#localClock,
      },
    );
    this.#priors = priorsOf(result, readClockPair(this.#clock));
    const failed = result.servers.filter((server) => server.status !== 'ok');
    for (const server of failed) {
      this.#logger.warn(`server clock server ${server.status}`, {
        url: server.url,
        reason: server.reason ?? undefined,
      });
    }
    if (estimate === undefined) {
      if (moved)
        this.#withdraw(moved.step, 'most servers answered from more than one clock', first ? 'refine' : 'measure');
      const reasons = failed.map((server) => `${server.url}: ${server.reason ?? server.status}`).join('; ');
      const reason = `${first ? '' : 'refresh: '}${result.reason ?? 'no estimate'}${reasons ? `; ${reasons}` : ''}`;
      throw codedError(reason, 'ERR_SERVER_CLOCK_NO_MAJORITY');
    }
    this.#adoptMeasurement(estimate, result, first ? 'refine' : 'measure');
  }
}
