// Reading both clocks at one instant, and a realtime clock nobody steers: what a
// measurement runs on while ntpd/chrony slew CLOCK_REALTIME underneath it.
import type { Clock } from '../../clock.js';
import { addSeconds, diffSeconds, type Timespec } from '../../time.js';

export interface ClockPair {
  monotonicRaw: Timespec;
  realtime: Timespec;
}

/** Both clocks back to back: realtime between two raw reads, raw taken as their middle. */
export function readClockPair(clock: Clock): ClockPair {
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
