// The "off by N seconds" reference clock of python-ntpdshm's docs: every interval a
// sample saying the true time is CLOCK_REALTIME + offset. Receive time = the same
// realtime reading, so clock - receive is exactly the offset. Ticks are scheduled on
// CLOCK_MONOTONIC_RAW from the start (no setInterval drift, no drag when realtime steps).
import { abortableSleep, systemClock, type Clock } from '../../clock.js';
import { MAX_PRECISION, MIN_PRECISION, type Sample, type SampleSource } from '../../sample.js';
import { invalidArgType, outOfRange } from '../../errors.js';
import { addSeconds, diffSeconds } from '../../time.js';

export const DEFAULT_FIXED_PRECISION = -10;

export interface FixedSourceOptions {
  /** Seconds added to the local clock: -1 = a reference one second behind. */
  offset: number;
  /** Seconds between samples (default 1). */
  interval?: number;
  /** log2 seconds written with every sample (default -10, about 1 ms). */
  precision?: number;
  /** One sample, then the source ends. */
  once?: boolean;
  clock?: Clock;
  /** Waits `ms` or until `signal` aborts, whichever is first; never rejects. Tests pass one that moves a fake clock. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Far enough for any test, near enough that now + offset stays a valid time. */
export const MAX_FIXED_OFFSET = 1e6;

function checkNumber(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw invalidArgType(name, 'number', value);
  }
  return value;
}

export class FixedSource implements SampleSource {
  readonly name = 'fixed';
  readonly offset: number;
  readonly interval: number;
  readonly precision: number;
  readonly once: boolean;
  readonly #clock: Clock;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(options: FixedSourceOptions) {
    this.offset = checkNumber('offset', options.offset);
    if (!Number.isFinite(this.offset) || Math.abs(this.offset) > MAX_FIXED_OFFSET) {
      throw outOfRange('offset', `a finite number >= -${MAX_FIXED_OFFSET} && <= ${MAX_FIXED_OFFSET}`, this.offset);
    }
    this.interval = checkNumber('interval', options.interval ?? 1);
    if (!Number.isFinite(this.interval) || this.interval < 0.001 || this.interval > 86_400) {
      throw outOfRange('interval', 'a number >= 0.001 && <= 86400 (seconds)', this.interval);
    }
    this.precision = checkNumber('precision', options.precision ?? DEFAULT_FIXED_PRECISION);
    if (!Number.isInteger(this.precision) || this.precision < MIN_PRECISION || this.precision > MAX_PRECISION) {
      throw outOfRange('precision', `an integer >= ${MIN_PRECISION} && <= ${MAX_PRECISION}`, this.precision);
    }
    this.once = options.once ?? false;
    this.#clock = options.clock ?? systemClock;
    this.#sleep = options.sleep ?? abortableSleep;
  }

  /** The sample for the current instant. */
  sample(): Sample {
    const now = this.#clock.realtime();
    return { clockTime: addSeconds(now, this.offset), receiveTime: now, precision: this.precision, leap: 0 };
  }

  async *samples(signal: AbortSignal): AsyncIterable<Sample> {
    const start = this.#clock.monotonicRaw();
    let tick = 0;
    while (!signal.aborted) {
      yield this.sample();
      if (this.once) return;
      // Tick n is due at start + n * interval; after a stall (suspend, a blocked loop)
      // skip the ticks already missed instead of firing them in a burst.
      const elapsed = diffSeconds(this.#clock.monotonicRaw(), start);
      tick = Math.max(tick + 1, Math.floor(elapsed / this.interval) + 1);
      const waitMs = (tick * this.interval - elapsed) * 1000;
      await this.#sleep(waitMs, signal);
    }
  }
}
