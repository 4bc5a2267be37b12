// What sources produce and the feeder writes. Sources never touch the segment.
import type { Leap } from './shm.js';
import type { Timespec } from './time.js';

/** The precision a sample may claim, log2 seconds: 1 ns to 1 s. */
export const MIN_PRECISION = -30;
export const MAX_PRECISION = 0;

export interface Sample {
  /** The reference ("true") time of the event. */
  clockTime: Timespec;
  /** CLOCK_REALTIME when the event was seen (offset = clockTime - receiveTime). */
  receiveTime: Timespec;
  /** log2 of the sample's error bound in seconds. */
  precision: number;
  /** The source's own leap indicator; the feeder may add a scheduled leap second. */
  leap?: Leap;
}

/**
 * A time source: yields samples until `signal` aborts, then returns. A sample it cannot
 * stand behind is never yielded; faults it recovers from go to its logger.
 */
export interface SampleSource {
  readonly name: string;
  samples(signal: AbortSignal): AsyncIterable<Sample>;
}

/**
 * A sample whose receive time is older than this (seconds) is of no use to a daemon
 * (ntpd drops receive times older than 5 s, chrony those older than its poll): the feeder
 * is not feeding. htntp_up and `htntp doctor` use it.
 */
export const STALE_SAMPLE_SECONDS = 10;
