// The two clocks every source reads, behind an interface so tests can step and slew a
// fake realtime clock against a steady raw one.
import { setTimeout as delay } from 'node:timers/promises';
import { native, sharedSlots, type Timespec } from './native.js';

export interface Clock {
  /** CLOCK_REALTIME: the system clock that ntpd/chrony steer. */
  realtime(): Timespec;
  /** CLOCK_MONOTONIC_RAW: never stepped nor slewed; where estimates are held. */
  monotonicRaw(): Timespec;
}

// The addon leaves readings in this array; building the object here is ~10x cheaper
// than building it through N-API.
const slots = sharedSlots(4);
native.useClockSlots(slots);
const io = slots as unknown as Readonly<Record<0 | 1 | 2 | 3, number>>;

/** CLOCK_REALTIME now, from clock_gettime. */
export function realtime(): Timespec {
  native.readRealtime();
  return { sec: io[0], nsec: io[1] };
}

/** CLOCK_MONOTONIC_RAW now, from clock_gettime. */
export function monotonicRaw(): Timespec {
  native.readMonotonicRaw();
  return { sec: io[0], nsec: io[1] };
}

/** Both clocks back to back (raw first), for turning a raw-monotonic estimate into a sample. */
export function clockPair(): { monotonicRaw: Timespec; realtime: Timespec } {
  native.readClockPair();
  return { monotonicRaw: { sec: io[0], nsec: io[1] }, realtime: { sec: io[2], nsec: io[3] } };
}

export const systemClock: Clock = { realtime, monotonicRaw };

/** Waits `ms`, or less if `signal` aborts first. Never rejects: callers look at the signal. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}
