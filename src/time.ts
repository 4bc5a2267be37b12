// Exact time values: whole seconds + nanoseconds. Float seconds lose ~240 ns at
// today's epoch, so arithmetic on absolute times stays in Timespec.
import { invalidArgType, outOfRange } from './errors.js';

/** A CLOCK_* reading: whole seconds and nanoseconds (0..999999999). */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** A time as float seconds since the epoch, or exact `{ sec, nsec }`. */
export type Time = number | Timespec;

const NS_PER_SEC = 1_000_000_000;

/** Float seconds to Timespec, rounding to the nearest nanosecond. */
export function fromSeconds(seconds: number): Timespec {
  let sec = Math.floor(seconds);
  let nsec = Math.round((seconds - sec) * NS_PER_SEC);
  if (nsec >= NS_PER_SEC) {
    sec += 1;
    nsec -= NS_PER_SEC;
  }
  return { sec, nsec };
}

export function toSeconds(time: Timespec): number {
  return time.sec + time.nsec / NS_PER_SEC;
}

/** Checks a user-supplied time (non-negative, finite, nsec in range) and makes it exact. */
export function toTimespec(time: unknown, name: string): Timespec {
  if (typeof time === 'number') {
    if (!Number.isFinite(time) || time < 0) throw outOfRange(name, 'a finite number >= 0', time);
    return fromSeconds(time);
  }
  if (typeof time !== 'object' || time === null) throw invalidArgType(name, 'number or { sec, nsec }', time);
  const { sec, nsec } = time as Partial<Timespec>;
  if (typeof sec !== 'number' || typeof nsec !== 'number') throw invalidArgType(name, 'number or { sec, nsec }', time);
  if (!Number.isSafeInteger(sec) || sec < 0) throw outOfRange(`${name}.sec`, 'an integer >= 0', sec);
  if (!Number.isInteger(nsec) || nsec < 0 || nsec >= NS_PER_SEC)
    throw outOfRange(`${name}.nsec`, 'an integer >= 0 && <= 999999999', nsec);
  return { sec, nsec };
}

/** a - b in seconds; exact to the nanosecond for differences below ~100 days. */
export function diffSeconds(a: Timespec, b: Timespec): number {
  const ns = (a.sec - b.sec) * NS_PER_SEC + (a.nsec - b.nsec);
  // Whole nanoseconds, then one division: the nearest double to the true difference
  // (1.000000002, not 1.0000000020000002), as long as the nanoseconds are exact.
  return Number.isSafeInteger(ns) ? ns / NS_PER_SEC : a.sec - b.sec + (a.nsec - b.nsec) / NS_PER_SEC;
}

/** time + seconds (may be negative or fractional). */
export function addSeconds(time: Timespec, seconds: number): Timespec {
  const whole = Math.floor(seconds);
  let sec = time.sec + whole;
  let nsec = time.nsec + Math.round((seconds - whole) * NS_PER_SEC);
  if (nsec >= NS_PER_SEC) {
    sec += Math.floor(nsec / NS_PER_SEC);
    nsec %= NS_PER_SEC;
  }
  return { sec, nsec };
}

export function compare(a: Timespec, b: Timespec): number {
  return a.sec - b.sec || a.nsec - b.nsec;
}

/** ISO 8601 UTC with all nine fraction digits: 2026-11-22T02:05:55.123456789Z */
export function formatUtc(time: Timespec): string {
  const iso = new Date(time.sec * 1000).toISOString();
  return `${iso.slice(0, 19)}.${String(time.nsec).padStart(9, '0')}Z`;
}

/** "400 days", "3.2 hours", "12 s": a clock error said plainly. */
export function formatDuration(seconds: number): string {
  const size = Math.abs(seconds);
  if (size >= 2 * 86_400) return `${Math.round(size / 86_400)} days`;
  if (size >= 2 * 3_600) return `${(size / 3_600).toFixed(1)} hours`;
  if (size >= 120) return `${Math.round(size / 60)} minutes`;
  return `${size.toFixed(3)} s`;
}
