// From a sentence's time of day (+ date when it has one) to an absolute UTC time:
// two-digit years, GPS week rollover, bogus receiver default dates, midnight.
import type { Timespec } from '../../time.js';
import type { NmeaDate, TimeOfDay } from './nmea.js';

const SECONDS_PER_DAY = 86_400;
/** 1024 GPS weeks: how far back a receiver with old firmware reports dates after a rollover. */
export const GPS_ROLLOVER_SECONDS = 1024 * 7 * SECONDS_PER_DAY;

/**
 * No correct date can be earlier than the day this code was released, so a date before it
 * is a receiver counting in an older 1024-week era (GPS week rollover): it is moved forward
 * in 1024-week steps until it is not before this floor (gpsd uses its build date the same
 * way). Raise it with each release; the window it opens lasts 19.6 years.
 */
export const RELEASE_FLOOR: Timespec = { sec: Date.UTC(2026, 10, 1) / 1000, nsec: 0 };

/** gpsd's rule for RMC's two-digit year: 69..99 are 19xx, the rest 20xx. */
export function fullYear(date: NmeaDate): number {
  if (!date.twoDigitYear) return date.year;
  return date.year >= 69 ? 1900 + date.year : 2000 + date.year;
}

function secondsOfDay(time: TimeOfDay): number {
  // Second 60 (leap second) maps onto 00:00:00 of the next day, as POSIX time does.
  return time.hour * 3600 + time.minute * 60 + time.second;
}

/**
 * The absolute time of a dated sentence, rollover corrected; null for a date no working
 * receiver reports: 1980 is the default of receivers without a fix (MTK: 05-01-1980),
 * anything before the GPS epoch is no GPS time at all, and a date more than one rollover
 * period (19.6 years) after the floor is past anything this release can vouch for
 * (a ZDA dated 2150).
 */
export function datedTime(date: NmeaDate, time: TimeOfDay, floor: Timespec = RELEASE_FLOOR): Timespec | null {
  const year = fullYear(date);
  if (year <= 1980) return null;
  let sec = Date.UTC(year, date.month - 1, date.day) / 1000 + secondsOfDay(time);
  while (sec < floor.sec) sec += GPS_ROLLOVER_SECONDS;
  if (sec >= floor.sec + GPS_ROLLOVER_SECONDS) return null;
  return { sec, nsec: time.nsec };
}

/**
 * Remembers the last absolute time and gives time-only sentences (GGA, GLL, GNS) their
 * date: the day that puts them within 12 hours of it, so a GGA at 00:00:00 after an RMC
 * at 23:59:59 lands on the next day.
 */
export class DateTracker {
  #reference: Timespec | null = null;
  readonly #floor: Timespec;

  constructor(floor: Timespec = RELEASE_FLOOR) {
    this.#floor = floor;
  }

  get known(): boolean {
    return this.#reference !== null;
  }

  /** Forget the date (device reopened: the next receiver may not be the same). */
  reset(): void {
    this.#reference = null;
  }

  /** A sentence with a date: it becomes the reference. null for a bogus date. */
  dated(date: NmeaDate, time: TimeOfDay): Timespec | null {
    const result = datedTime(date, time, this.#floor);
    if (result !== null) this.#reference = result;
    return result;
  }

  /** A time-only sentence: null until a date has been seen. */
  timeOnly(time: TimeOfDay): Timespec | null {
    if (this.#reference === null) return null;
    const referenceDay = this.#reference.sec - (this.#reference.sec % SECONDS_PER_DAY);
    let sec = referenceDay + secondsOfDay(time);
    const half = SECONDS_PER_DAY / 2;
    if (sec - this.#reference.sec > half) sec -= SECONDS_PER_DAY;
    else if (this.#reference.sec - sec > half) sec += SECONDS_PER_DAY;
    const result = { sec, nsec: time.nsec };
    this.#reference = result;
    return result;
  }
}
