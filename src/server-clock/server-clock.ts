// ServerClock: a server's time inside an app. The estimate is an interval of phi = server
// time - u(raw), u being realtime as it read at construction plus raw seconds since: now()
// is a raw clock read and an add, right whatever is done to the realtime clock, and the
// bounds widen with the raw oscillator's assumed drift as the estimate ages.
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { monotonicRawMs, readClockPair, steadyClock, steadyRealtime, systemClock, type Clock, type ClockPair } from '../clock.js';
import { codedError, invalidArgType, invalidArgValue, outOfRange } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { MAX_PROBES, measure } from '../sources/http/measure.js';
import { DRIFT_PPM } from '../sources/http/source.js';
import { serverUrl } from '../sources/http/servers.js';
import { intersect } from '../sources/http/interval.js';
import { commonWindow, thetaWithin } from '../sources/http/validity.js';
import { localClockVerdict, TlsGate, type LocalClockOptions } from '../sources/http/gate.js';
import { describeFloor, type ClockFloor } from '../floor.js';
import { addSeconds, diffSeconds, formatDuration, formatUtc, fromSeconds, toSeconds, type Timespec } from '../time.js';
import { carry, DATE_LAG, merge, selectHeld, type HeldInterval } from './held.js';
import { providerRound, type TimeProvider } from './provider.js';
import { DateSweep } from './sweep.js';

export type { TimeProvider } from './provider.js';

export interface ServerClockOptions extends LocalClockOptions {
  /** HTTP(S) servers whose Date headers give the time (host[:port] means https). */
  servers?: readonly string[];
  /** Or a function returning the server's time in ms since the epoch. */
  provider?: TimeProvider;
  /** Seconds between re-measurements (default 300), each jittered ±10 %. */
  refresh?: number;
  /** Half-width of the bounds, seconds, that refinement stops at (default 0.005). */
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
   * With a single Date server: how far its Date may lag its own clock, seconds, added above
   * the bounds (default 1: lighttpd refreshes its cached Date on its monotonic clock's
   * second, up to a second late, and nothing else can tell). 0 for a server known to stamp
   * every response (nginx, apache2, Node's http): the bounds then shrink to the probes'.
   */
  dateLag?: number;
  /** The provider's resolution, ms (default 1: a truncated ms timestamp). */
  resolution?: number;
  /** Per provider call, seconds (default 5). */
  timeout?: number;
  /** A realtime clock that moves against the raw one by more than this, seconds (plus 85 ms per second, the fastest daemon slew), was stepped (default 0.1). */
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
  /** What produced the estimate: the first sweep, its refinement, a refresh measurement, a provider round. */
  source: ServerClockSource;
  /** Servers (provider mode: this round's calls) in the majority, and how many gave an interval. */
  survivors: number;
  candidates: number;
}

export interface ServerClockStep {
  /** How far realtime moved against the raw clock beyond any slew, seconds. */
  step: number;
}

export interface ServerClockEvents {
  update: [ServerClockUpdate];
  step: [ServerClockStep];
  error: [Error];
  close: [];
}

interface Estimate {
  /** The majority's region of phi, at raw instant `at`. */
  interval: HeldInterval;
  /** What of its width is the single server's allowance for a lagging Date, not measured. */
  lag: number;
  /** phi's point estimate, inside the region. */
  point: number;
  /** now() = base + raw ms. */
  base: number;
}

const MAX_SLEW = 0.085;
const REFINE_TICKS = 8;
const STEP_CHECK_MS = 1000;

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgType(`options.${name}`, 'number', value);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) throw outOfRange(`options.${name}`, allowZero ? 'a finite number >= 0' : 'a finite number > 0', value);
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
  readonly #drift: number;
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
  /** Per server (one for a provider): what its measurements have shown, carried on the raw clock. */
  #held: (HeldInterval | undefined)[];
  #estimate: Estimate | undefined;
  #ready: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } | undefined;
  #lastPair: ClockPair;
  #stepTimer: NodeJS.Timeout;
  #wake: AbortController | undefined;
  /** A step seen while a measurement ran: the next one starts right after it. */
  #remeasure = false;
  #closed = false;
  /** The floor of the last sweep round (floor.ts). */
  #floor: ClockFloor | undefined;

  constructor(options: ServerClockOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'object', options);
    const { servers, provider } = options;
    if ((servers === undefined) === (provider === undefined)) {
      throw invalidArgValue('ServerClock needs exactly one of options.servers and options.provider');
    }
    if (provider !== undefined && typeof provider !== 'function') throw invalidArgType('options.provider', 'function', provider);
    if (servers !== undefined) {
      if (!Array.isArray(servers) || servers.length === 0 || servers.some((server) => typeof server !== 'string')) {
        throw invalidArgValue('options.servers must be a non-empty array of strings');
      }
      this.#urls = servers.map(serverUrl);
    }
    this.#provider = provider;
    this.#refresh = positive('refresh', options.refresh, 300);
    this.#target = positive('target', options.target, 0.005);
    this.#probes = options.probes ?? 8;
    if (!Number.isInteger(this.#probes) || this.#probes < 1 || this.#probes > MAX_PROBES) throw outOfRange('options.probes', `an integer from 1 to ${MAX_PROBES}`, options.probes);
    this.#drift = positive('driftPpm', options.driftPpm, DRIFT_PPM, true) * 1e-6;
    this.#resolution = positive('resolution', options.resolution, 1) / 1000;
    this.#dateLag = positive('dateLag', options.dateLag, DATE_LAG, true);
    this.#timeout = positive('timeout', options.timeout, 5);
    this.#stepThreshold = positive('stepThreshold', options.stepThreshold, 0.1);
    this.#proxy = options.proxy;
    this.#ca = options.ca;
    this.#localClock = { ...(options.clockFile === undefined ? {} : { clockFile: options.clockFile }), ...(options.kernelClockForTests ? { kernelClockForTests: options.kernelClockForTests } : {}) };
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    const { clock } = options;
    this.#rawMs = clock === undefined || clock === systemClock ? monotonicRawMs : () => rawMs(clock.monotonicRaw());
    this.#origin = readClockPair(this.#clock);
    this.#lastPair = this.#origin;
    this.#steady = steadyClock(this.#clock, this.#origin);
    this.#held = (this.#urls ?? [undefined]).map(() => undefined);
    this.#signal = options.signal;
    this.#stepTimer = setInterval(() => this.#checkStep(readClockPair(this.#clock)), STEP_CHECK_MS).unref();
    if (this.#signal?.aborted) this.close();
    else this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    // Next turn: listeners attached right after construction hear the first events (a clock
    // closed by then only emits close).
    setImmediate(() => void this.#run());
  }

  /** Resolves once a first estimate exists; concurrent callers share one measurement. Rejects if that measurement fails or the clock closes first. */
  ready(): Promise<void> {
    if (this.#estimate) return Promise.resolve();
    if (this.#closed) return Promise.reject(codedError('the clock was closed before a first estimate', 'ERR_SERVER_CLOCK_CLOSED'));
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
    return diffSeconds(steadyRealtime(this.#origin, pair.monotonicRaw), pair.realtime) + (this.#estimate ?? estimate).point;
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
    return codedError('no estimate yet: await clock.ready() first', 'ERR_SERVER_CLOCK_NOT_READY');
  }

  #boundsAt(estimate: Estimate, raw: Timespec): { earliest: number; latest: number } {
    const region = carry(estimate.interval, raw, this.#drift);
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
    if (step > 0) {
      this.#held = this.#held.map((held) => held && { ...held, high: held.high + step });
      if (this.#estimate) this.#estimate = { ...this.#estimate, interval: { ...this.#estimate.interval, high: this.#estimate.interval.high + step } };
    }
    this.#remeasure = true;
    this.#wake?.abort();
    this.emit('step', { step });
  }

  /** Emits `error` to listeners; unheard, it is logged: a failed refresh must not crash the app while the last bound holds. */
  #report(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else this.#logger.error('server clock', { error: error.message, code: (error as NodeJS.ErrnoException).code });
  }

  /** Selects across servers, holds the estimate, resolves ready() and emits `update`. False without a majority. */
  #publish(source: ServerClockSource, preferred?: number, counts?: { survivors: number; candidates: number }): boolean {
    const pair = readClockPair(this.#clock);
    const selection = selectHeld(this.#held, pair.monotonicRaw, this.#drift);
    if (selection === undefined) return false;
    const { core } = selection;
    // One Date server alone: nothing can outvote or expose a Date cache that lags its clock.
    const lag = this.#urls?.length === 1 ? this.#dateLag : 0;
    const interval = { ...selection.interval, high: selection.interval.high + lag };
    const point = preferred !== undefined && preferred >= core.low && preferred <= core.high ? preferred : (core.low + core.high) / 2;
    const base = rawMs(steadyRealtime(this.#origin, { sec: 0, nsec: 0 })) + point * 1000;
    this.#estimate = { interval, lag, point, base };
    this.#ready?.resolve();
    this.#ready = undefined;
    const { earliest, latest } = this.#boundsAt(this.#estimate, pair.monotonicRaw);
    const update: ServerClockUpdate = {
      offset: diffSeconds(steadyRealtime(this.#origin, pair.monotonicRaw), pair.realtime) + point,
      earliest,
      latest,
      error: (interval.high - interval.low) / 2,
      source,
      survivors: counts?.survivors ?? selection.truechimers.length,
      candidates: counts?.candidates ?? selection.candidates,
    };
    this.#logger.info('server clock update', { ...update });
    this.emit('update', update);
    return true;
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
      const delay = failures > 0 ? Math.min(this.#refresh, 2 ** (failures - 1)) : this.#refresh * (0.9 + 0.2 * Math.random());
      this.#wake = new AbortController();
      if (!this.#remeasure) await sleep(delay * 1000, undefined, { signal: AbortSignal.any([signal, this.#wake.signal]), ref: false }).catch(() => undefined);
      this.#wake = undefined;
      this.#remeasure = false;
    }
    this.emit('close');
  }

  async #round(signal: AbortSignal): Promise<void> {
    if (this.#provider) return this.#providerRound(this.#provider, signal);
    const urls = this.#urls ?? [];
    return this.#estimate === undefined ? this.#sweepRound(urls, signal) : this.#measureRound(urls, signal);
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
      this.#logger.warn('server clock provider', { answered: round.answered, failed: round.failed, falsetickers: round.falsetickers, error: String(round.lastError ?? '') });
    }
    if (round.interval === undefined) {
      const detail = round.lastError instanceof Error ? ` (${round.lastError.message})` : '';
      throw codedError(`no estimate from the provider: ${round.answered} of ${round.answered + round.failed} calls answered${detail}`, 'ERR_SERVER_CLOCK_PROVIDER', undefined, round.lastError);
    }
    this.#hold(0, { ...round.interval, at });
    if (!this.#publish('provider', undefined, { survivors: round.answered - round.falsetickers, candidates: round.answered })) throw codedError('no estimate from the provider', 'ERR_SERVER_CLOCK_NO_MAJORITY');
  }

  #hold(index: number, fresh: HeldInterval): void {
    const { interval, replaced } = merge(this.#held[index], fresh, this.#drift);
    if (replaced) this.#logger.warn('server clock: a measurement excludes what was held; the server clock moved', { server: this.#urls?.[index]?.href ?? 'provider' });
    this.#held[index] = interval;
  }

  /**
   * A server that failed stops voting until it answers again: "not one clock", a cache or a
   * frozen Date make what was held from it meaningless, and a network failure is not told
   * apart. The estimate already published stays, with its growing bound.
   */
  #drop(index: number, reason: unknown): void {
    this.#held[index] = undefined;
    this.#logger.warn('server clock server failed', { url: this.#urls?.[index]?.href, reason: reason instanceof Error ? reason.message : String(reason) });
  }

  /** The estimate's width as measured (without the allowance for a lagging Date), seconds. */
  #measuredWidth(): number | undefined {
    const estimate = this.#estimate;
    return estimate && estimate.interval.high - estimate.interval.low - estimate.lag;
  }

  /** The first estimate: sweeps on all servers at once, then their refinement tick by tick. */
  async #sweepRound(urls: URL[], signal: AbortSignal): Promise<void> {
    const gate = new TlsGate(this.#ca, localClockVerdict(toSeconds(this.#clock.realtime()), this.#localClock));
    const connection = { ...(this.#proxy === undefined ? {} : { proxy: this.#proxy }), ...(this.#ca === undefined ? {} : { ca: this.#ca }), gate };
    const sweeps = urls.map((url) => new DateSweep(url, { clock: this.#steady, logger: this.#logger, ...connection }));
    this.#floor = gate.clock.floor;
    const abort = (): void => sweeps.forEach((sweep) => sweep.abort(signal.reason as Error));
    signal.addEventListener('abort', abort, { once: true });
    try {
      const at = this.#clock.monotonicRaw();
      // A majority of all the servers is enough for ready(): a slow or hanging one need not be waited for.
      const firsts = sweeps.map(async (sweep, index) => {
        const interval = this.#withinCertificates(sweep, { ...(await sweep.first(signal)), at }, at);
        this.#hold(index, interval);
        const selection = this.#estimate === undefined ? selectHeld(this.#held, this.#clock.monotonicRaw(), this.#drift) : undefined;
        if (selection && selection.truechimers.length * 2 > urls.length) this.#publish('sweep');
        return interval;
      });
      const outcomes = await Promise.allSettled(firsts);
      signal.throwIfAborted();
      this.#logFailures(outcomes);
      if (!this.#publish('sweep')) throw codedError(this.#noMajority(outcomes), 'ERR_SERVER_CLOCK_NO_MAJORITY');
      const unverified = sweeps.filter((sweep) => sweep.timeUnverified).length;
      const offset = this.#estimate && diffSeconds(steadyRealtime(this.#origin, this.#clock.monotonicRaw()), this.#clock.realtime()) + this.#estimate.point;
      if (unverified > 0 && offset !== undefined) {
        this.#logger.warn(`server clock: the local clock is ${offset > 0 ? 'behind' : 'ahead'} by about ${formatDuration(offset)}: the certificates of ${unverified} of ${sweeps.length} server(s) were not valid at the local clock's time and were checked against the servers' time instead`, { offset, timeUnverified: unverified });
      }
      let active = sweeps.filter((_, index) => outcomes[index]?.status === 'fulfilled');
      let stalled = 0;
      for (let tick = 0; tick < REFINE_TICKS && active.length > 0 && stalled < 2; tick += 1) {
        const before = this.#measuredWidth();
        if (before === undefined || before / 2 <= this.#target) break;
        const refined = await Promise.allSettled(active.map((sweep) => sweep.refine(signal)));
        signal.throwIfAborted();
        const now = this.#clock.monotonicRaw();
        refined.forEach((outcome, position) => {
          const index = sweeps.indexOf(active[position] as DateSweep);
          if (outcome.status === 'rejected') {
            this.#drop(index, outcome.reason);
            return;
          }
          try {
            this.#hold(index, this.#withinCertificates(active[position] as DateSweep, { ...outcome.value, at: now }, at));
          } catch (error) {
            this.#drop(index, error);
          }
        });
        active = active.filter((_, position) => refined[position]?.status === 'fulfilled');
        this.#publish('refine');
        const after = this.#measuredWidth();
        // Two ticks in a row that narrow by less than a tenth: the round trips' limit.
        if (after === undefined) break;
        stalled = after > 0.9 * before ? stalled + 1 : 0;
      }
    } finally {
      signal.removeEventListener('abort', abort);
      await Promise.all(sweeps.map((sweep) => sweep.close()));
    }
  }

  /**
   * A sweep's interval cut to where its certificates are valid from `since` to the interval's
   * instant (the measurement's rule, validity.ts); throws when nothing is left: the server
   * tells a time its own certificates are not valid at.
   */
  #withinCertificates(sweep: DateSweep, fresh: HeldInterval, since: Timespec): HeldInterval {
    // The floor (floor.ts) as measure() applies it: a server telling only times before it is wrong.
    if (this.#floor !== undefined && toSeconds(steadyRealtime(this.#origin, fresh.at)) + fresh.high < this.#floor.seconds) {
      throw codedError(`it tells a time before the floor ${describeFloor(this.#floor)}`, 'ERR_SERVER_CLOCK_FLOOR');
    }
    const window = commonWindow(sweep.windows);
    if (window === undefined) return fresh;
    const validity = thetaWithin(window, toSeconds(steadyRealtime(this.#origin, since)), toSeconds(steadyRealtime(this.#origin, fresh.at)));
    const inside = intersect(fresh, validity);
    if (inside === undefined) {
      throw codedError(`tls: its certificates, valid ${formatUtc(fromSeconds(window.low))} to ${formatUtc(fromSeconds(window.high))}, are not valid at the time it tells`, 'ERR_SERVER_CLOCK_CERTIFICATE');
    }
    return { ...inside, at: fresh.at };
  }

  #logFailures(outcomes: PromiseSettledResult<unknown>[]): void {
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'rejected') this.#logger.warn('server clock server failed', { url: this.#urls?.[index]?.href, reason: outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason) });
    });
  }

  #noMajority(outcomes: PromiseSettledResult<unknown>[]): string {
    const reasons = outcomes.flatMap((outcome, index) => (outcome.status === 'rejected' ? [`${this.#urls?.[index]?.href}: ${outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason)}`] : []));
    return `no majority of the ${outcomes.length} servers agrees${reasons.length > 0 ? `; failed: ${reasons.join('; ')}` : ''}`;
  }

  /** A refresh: the HTTP source's measurement, aimed by what is held, intersected with it. */
  async #measureRound(urls: URL[], signal: AbortSignal): Promise<void> {
    const start = readClockPair(this.#clock);
    // measure() takes priors as server - realtime at its start.
    const toRealtime = diffSeconds(steadyRealtime(this.#origin, start.monotonicRaw), start.realtime);
    const priors = this.#held.map((held) => held && ((carried) => ({ low: carried.low + toRealtime, high: carried.high + toRealtime }))(carry(held, start.monotonicRaw, this.#drift)));
    const { result, estimate } = await measure(
      urls.map((url) => url.href),
      {
        probes: this.#probes,
        clock: this.#clock,
        logger: this.#logger,
        signal,
        priors,
        ...(this.#proxy === undefined ? {} : { proxy: this.#proxy }),
        ...(this.#ca === undefined ? {} : { ca: this.#ca }),
        ...this.#localClock,
      },
    );
    if (estimate === undefined || result.offset === null) throw codedError(`refresh: ${result.reason ?? 'no estimate'}`, 'ERR_SERVER_CLOCK_NO_MAJORITY');
    // The result is against realtime at the measurement's end: that instant's realtime is the
    // estimate's true time less its offset, its raw instant the estimate's.
    const endRealtime = addSeconds(estimate.trueTime, -result.offset);
    const toPhi = diffSeconds(endRealtime, steadyRealtime(this.#origin, estimate.monotonicRaw));
    result.servers.forEach((server, index) => {
      if (server.low !== null && server.high !== null) this.#hold(index, { low: server.low + toPhi, high: server.high + toPhi, at: estimate.monotonicRaw });
      else if (server.status === 'failed') this.#drop(index, server.reason);
    });
    if (!this.#publish('measure', diffSeconds(estimate.trueTime, steadyRealtime(this.#origin, estimate.monotonicRaw)))) {
      throw codedError('refresh: the servers no longer agree', 'ERR_SERVER_CLOCK_NO_MAJORITY');
    }
  }
}
