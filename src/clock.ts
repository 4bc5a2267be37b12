// The two clocks every source reads, behind an interface so tests can step and slew a
// fake realtime clock against a steady raw one; both read at one instant; and a realtime
// clock nobody steers, what a measurement runs on while ntpd/chrony slew CLOCK_REALTIME.
import { setTimeout as delay } from 'node:timers/promises';
import { nativeAddon } from './native.js';
import { addSeconds, diffSeconds, type Timespec } from './time.js';

export interface Clock {
  /** CLOCK_REALTIME: the system clock that ntpd/chrony steer. */
  realtime(): Timespec;
  /** CLOCK_MONOTONIC_RAW: never stepped nor slewed; where estimates are held. */
  monotonicRaw(): Timespec;
}

/** CLOCK_REALTIME now, from clock_gettime. */
export function realtime(): Timespec {
  return nativeAddon().readRealtime();
}

/** CLOCK_MONOTONIC_RAW now, from clock_gettime. */
export function monotonicRaw(): Timespec {
  return nativeAddon().readMonotonicRaw();
}

/** CLOCK_MONOTONIC_RAW now in ms, with no object built: for reads on an app's hot path. */
export function monotonicRawMs(): number {
  return nativeAddon().readMonotonicRawMs();
}

export const systemClock: Clock = { realtime, monotonicRaw };

export interface ClockPair {
  monotonicRaw: Timespec;
  realtime: Timespec;
}

/** Both clocks back to back: realtime between two raw reads, raw taken as their middle. */
export function readClockPair(clock: Clock = systemClock): ClockPair {
  const before = clock.monotonicRaw();
  const realtime = clock.realtime();
  const after = clock.monotonicRaw();
  return { monotonicRaw: addSeconds(before, diffSeconds(after, before) / 2), realtime };
}

/**
 * What realtime would read had nobody stepped or slewed it since `start`: start's realtime
 * plus the raw seconds elapsed. Its own raw clock is the real one.
 */
export function steadyClock(clock: Clock, start: ClockPair): Clock {
  return {
    realtime: () => steadyRealtime(start, clock.monotonicRaw()),
    monotonicRaw: () => clock.monotonicRaw(),
  };
}

/** The steady realtime (see steadyClock) at raw instant `monotonicRaw`. */
export function steadyRealtime(start: ClockPair, monotonicRaw: Timespec): Timespec {
  return addSeconds(start.realtime, diffSeconds(monotonicRaw, start.monotonicRaw));
}

/** What the kernel says about the discipline of CLOCK_REALTIME (ntp_adjtime, read only). */
export interface ClockSync {
  /** A daemon vouches for the clock: STA_UNSYNC clear and not TIME_ERROR. */
  synchronised: boolean;
  /** The daemon's bound on the clock's error, seconds (maxerror). */
  maxError: number;
  /** STA_* bits, for logs. */
  status: number;
}

/** The kernel's clock discipline state from ntp_adjtime(), via the addon. */
export function clockSync(): ClockSync {
  const state = nativeAddon().readClockState();
  return { synchronised: !state.unsynchronised, maxError: state.maxErrorUs / 1e6, status: state.status };
}

/** Waits `ms`, or less if `signal` aborts first. Never rejects: callers look at the signal. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}
