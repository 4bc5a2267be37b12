// The two clocks every source reads, behind an interface so tests can step and slew a
// fake realtime clock against a steady raw one.
import { native, type Timespec } from './native.js';

export interface Clock {
  /** CLOCK_REALTIME: the system clock that ntpd/chrony steer. */
  realtime(): Timespec;
  /** CLOCK_MONOTONIC_RAW: never stepped nor slewed; where estimates are held. */
  monotonicRaw(): Timespec;
}

export const systemClock: Clock = {
  realtime: native.realtime,
  monotonicRaw: native.monotonicRaw,
};

export const realtime = native.realtime;
export const monotonicRaw = native.monotonicRaw;
