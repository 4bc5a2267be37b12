// Publishing an HTTP estimate: held as true time at a CLOCK_MONOTONIC_RAW instant, so a
// realtime clock that ntpd steps or slews afterwards never drags it along. Every second
// a sample: clock = true time now (from the raw clock), receive = CLOCK_REALTIME now.
import { abortableSleep, readClockPair, systemClock, type Clock, type ClockPair } from '../../clock.js';
import { silentLogger, type Logger } from '../../log.js';
import { MIN_PRECISION, type Sample, type SampleSource } from '../../sample.js';
import { outOfRange } from '../../errors.js';
import { addSeconds, diffSeconds } from '../../time.js';
import type { Interval } from './interval.js';
import { measure, type Estimate, type MeasureOptions, type MeasurementResult } from './measure.js';

/** What an unsteered oscillator may drift (the precision field's growth with age). */
export const DRIFT_PPM = 50;

/** ceil(log2(bound)): the SHM precision field for an error bound in seconds. */
export function precisionOf(boundSeconds: number): number {
  // + 0 turns ceil's -0 (bounds in (0.5, 1]) into 0.
  return boundSeconds > 0 ? Math.max(MIN_PRECISION, Math.ceil(Math.log2(boundSeconds))) + 0 : MIN_PRECISION;
}

/**
 * The sample an estimate gives at `pair`, or undefined once it is older than `maxAge`
 * seconds (or from before the estimate). The error bound grows DRIFT_PPM with age.
 */
export function sampleAt(estimate: Estimate, pair: ClockPair, maxAge: number): Sample | undefined {
  const age = diffSeconds(pair.monotonicRaw, estimate.monotonicRaw);
  if (!(age >= 0 && age <= maxAge)) return undefined;
  const bound = estimate.error + age * DRIFT_PPM * 1e-6;
  return { clockTime: addSeconds(estimate.trueTime, age), receiveTime: pair.realtime, precision: precisionOf(bound), leap: 0 };
}

/**
 * A server's interval `elapsed` seconds later, `shift` seconds moved (what the realtime
 * clock was stepped or slewed by, negated), widened for both clocks' drift and 1 ms of
 * Date-stamping slack.
 */
export function carryInterval(interval: Interval, elapsed: number, shift = 0): Interval {
  const widen = 2 * DRIFT_PPM * 1e-6 * elapsed + 0.001;
  return { low: interval.low + shift - widen, high: interval.high + shift + widen };
}

export interface HttpSourceOptions extends Omit<MeasureOptions, 'signal' | 'logger' | 'priors'> {
  servers: readonly string[];
  /** Seconds between measurements (samples stop 2 x interval after the last estimate). */
  interval: number;
  /** One measurement, its samples until the estimate expires, then the source ends. */
  once?: boolean;
  logger?: Logger;
  /** Called with every measurement's result. */
  onMeasurement?: (result: MeasurementResult) => void;
}

export class HttpSource implements SampleSource {
  readonly name = 'http';
  readonly #options: HttpSourceOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #estimate: Estimate | undefined;
  /**
   * The last measurement's per-server intervals and when they were true, to aim the next
   * one. Their theta is server - CLOCK_REALTIME as it read at `at` (measure() reports them
   * against realtime at its end, not its internal steady timescale).
   */
  #priors: { intervals: (Interval | undefined)[]; at: ClockPair } | undefined;

  constructor(options: HttpSourceOptions) {
    if (!(options.interval > 0) || !Number.isFinite(options.interval)) {
      throw outOfRange('interval', 'a number > 0', options.interval);
    }
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  get estimate(): Estimate | undefined {
    return this.#estimate;
  }

  /** Holds a new estimate (measurements call this; tests too). */
  hold(estimate: Estimate): void {
    this.#estimate = estimate;
  }

  /** The sample for now, or undefined without a fresh estimate. */
  sample(): Sample | undefined {
    return this.#estimate && sampleAt(this.#estimate, readClockPair(this.#clock), 2 * this.#options.interval);
  }

  /** One measurement: logs it and holds its estimate; a failed one keeps the old estimate to age out. */
  async measureOnce(signal: AbortSignal): Promise<MeasurementResult> {
    const { servers, interval: _interval, once: _once, onMeasurement, ...measureOptions } = this.#options;
    const priors = this.#carriedPriors();
    const { result, estimate } = await measure(servers, { ...measureOptions, logger: this.#logger, signal, ...(priors ? { priors } : {}) });
    this.#priors = {
      intervals: result.servers.map((server) => (server.low === null || server.high === null ? undefined : { low: server.low, high: server.high })),
      at: readClockPair(this.#clock),
    };
    for (const server of result.servers) {
      const fields = { url: server.url, status: server.status, offset: server.offset, error: server.error, rtt: server.rtt, probes: server.probes, reason: server.reason ?? undefined };
      if (server.status === 'ok') this.#logger.debug('http server', fields);
      else this.#logger.warn('http server', fields);
    }
    if (estimate) {
      this.hold(estimate);
      this.#logger.info('http estimate', { offset: result.offset, error: result.error, survivors: result.survivors, servers: result.servers.length, duration: result.duration });
    } else {
      this.#logger.warn('http no estimate: nothing published from this measurement', { reason: result.reason, servers: result.servers.length });
    }
    onMeasurement?.(result);
    return result;
  }

  /**
   * The last intervals moved to now: theta is server - realtime, so a realtime clock that
   * ntpd stepped or slewed since shifts it; both clocks may drift DRIFT_PPM meanwhile. The
   * result is against realtime now, which is where the next measurement's steady
   * timescale starts (measure.ts), so the priors are on its timescale too.
   */
  #carriedPriors(): (Interval | undefined)[] | undefined {
    if (this.#priors === undefined) return undefined;
    const now = readClockPair(this.#clock);
    const elapsed = diffSeconds(now.monotonicRaw, this.#priors.at.monotonicRaw);
    const shift = elapsed - diffSeconds(now.realtime, this.#priors.at.realtime);
    return this.#priors.intervals.map((interval) => interval && carryInterval(interval, elapsed, shift));
  }

  async #measureLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = this.#clock.monotonicRaw();
      try {
        await this.measureOnce(signal);
      } catch (error) {
        if (signal.aborted) return;
        this.#logger.error('http measurement failed', { error });
      }
      if (this.#options.once) return;
      const elapsed = diffSeconds(this.#clock.monotonicRaw(), started);
      await abortableSleep(Math.max(0, this.#options.interval - elapsed) * 1000, signal);
    }
  }

  async *samples(signal: AbortSignal): AsyncIterable<Sample> {
    const stop = new AbortController();
    const onAbort = (): void => stop.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let measuring = true;
    const loop = this.#measureLoop(stop.signal).finally(() => {
      measuring = false;
    });
    try {
      // One sample per second of the raw clock, at its whole seconds.
      let due = this.#clock.monotonicRaw().sec;
      while (!stop.signal.aborted) {
        const now = this.#clock.monotonicRaw();
        if (now.sec < due) {
          // Timers may fire a little early: wait out the rest of the second.
          await abortableSleep(diffSeconds({ sec: due, nsec: 0 }, now) * 1000 + 1, stop.signal);
          continue;
        }
        due = now.sec + 1;
        const sample = this.sample();
        if (sample) yield sample;
        else if (this.#options.once && !measuring) return; // the one estimate is gone (or never came)
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      stop.abort();
      await loop;
    }
  }
}
