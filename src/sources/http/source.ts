// Publishing an HTTP estimate: held as true time at a CLOCK_MONOTONIC_RAW instant, so a
// realtime clock that ntpd steps or slews afterwards never drags it along. Every second
// a sample: clock = true time now (from the raw clock), receive = CLOCK_REALTIME now.
import { abortableSleep, readClockPair, systemClock, type Clock, type ClockPair } from '../../clock.js';
import { silentLogger, type Logger } from '../../log.js';
import { MIN_PRECISION, type Sample, type SampleSource } from '../../sample.js';
import { outOfRange } from '../../errors.js';
import { addSeconds, diffSeconds } from '../../time.js';
import { carryPriors, driftWidening, priorsOf, type HeldPriors } from './carry-forward.js';
import { measure, type Estimate, type MeasureOptions, type MeasurementResult } from './measure.js';

export { carryInterval, DRIFT_PPM } from './carry-forward.js';

/** ceil(log2(bound)): the SHM precision field for an error bound in seconds. */
export function precisionOf(boundSeconds: number): number {
  // + 0 turns ceil's -0 (bounds in (0.5, 1]) into 0.
  return boundSeconds > 0 ? Math.max(MIN_PRECISION, Math.ceil(Math.log2(boundSeconds))) + 0 : MIN_PRECISION;
}

/**
 * The sample an estimate gives at `pair`, or undefined once it is older than `maxAge`
 * seconds (or from before the estimate). The error bound grows with age as carry-forward.ts carries.
 */
export function sampleAt(estimate: Estimate, pair: ClockPair, maxAge: number): Sample | undefined {
  const age = diffSeconds(pair.monotonicRaw, estimate.monotonicRaw);
  if (!(age >= 0 && age <= maxAge)) return undefined;
  const bound = estimate.error + driftWidening(age);
  return {
    clockTime: addSeconds(estimate.trueTime, age),
    receiveTime: pair.realtime,
    precision: precisionOf(bound),
    leap: 0,
  };
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
  /** The last measurement's per-server intervals and when they were true, to aim the next one. */
  #priors: HeldPriors | undefined;

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
    const priors = this.#priors && carryPriors(this.#priors, readClockPair(this.#clock));
    const { result, estimate } = await measure(servers, {
      ...measureOptions,
      logger: this.#logger,
      signal,
      ...(priors ? { priors } : {}),
    });
    this.#priors = priorsOf(result, readClockPair(this.#clock));
    for (const server of result.servers) {
      const fields = {
        url: server.url,
        status: server.status,
        offset: server.offset,
        error: server.error,
        rtt: server.rtt,
        probes: server.probes,
        reason: server.reason ?? undefined,
      };
      if (server.status === 'ok') this.#logger.debug('http server', fields);
      else this.#logger.warn('http server', fields);
    }
    if (estimate) {
      this.hold(estimate);
      this.#logger.info('http estimate', {
        offset: result.offset,
        error: result.error,
        survivors: result.survivors,
        servers: result.servers.length,
        duration: result.duration,
      });
    } else {
      this.#logger.warn('http no estimate: nothing published from this measurement', {
        reason: result.reason,
        servers: result.servers.length,
      });
    }
    onMeasurement?.(result);
    return result;
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
