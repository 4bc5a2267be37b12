// Leap seconds from the IERS/NIST leap-seconds.list (the file ntpd's `leapfile` reads):
// TAI - UTC now, and the leap indicator a sample carries during the last UTC day
// before a scheduled leap second (1 insert, 2 delete), as ntpd and chrony expect it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Leap } from './shm.js';
import { codedError } from './errors.js';
import { formatUtc, type Timespec } from './time.js';
import { realtime } from './clock.js';
import { silentLogger, type Logger } from './log.js';

export const DEFAULT_LEAPFILE = '/usr/share/zoneinfo/leap-seconds.list';

/** Seconds from the NTP era 0 epoch (1900-01-01) to the Unix epoch. */
const NTP_UNIX_OFFSET = 2_208_988_800;
const DAY = 86_400;

export interface LeapEntry {
  /** Unix time (UTC midnight) from which `taiOffset` applies. */
  time: number;
  /** TAI - UTC in seconds from `time` on. */
  taiOffset: number;
}

export interface LeapTable {
  /** Ascending by time. */
  entries: LeapEntry[];
  /** `#$` line: when the file was last updated (Unix seconds). */
  updated?: number;
  /** `#@` line: the file says nothing reliable past this time (Unix seconds). */
  expires?: number;
  /** `#h` line checked against the data: true/false, undefined when the file has none. */
  hashValid?: boolean;
}

export interface LeapStatus {
  /** TAI - UTC at `now` (0 before 1972, where the file has nothing). */
  taiOffset: number;
  /** What a sample at `now` carries: 1/2 during the last UTC day before a leap second, else 0. */
  leap: Leap;
  /** The next scheduled leap second after `now`, if the file lists one. */
  next?: {
    /** Unix time at which the new offset applies (the midnight after the leap second). */
    time: number;
    /** +1 inserted, -1 deleted. */
    step: number;
    taiOffset: number;
  };
  expires?: number;
  expired: boolean;
  hashValid?: boolean;
}

function leapFileError(message: string, line?: number): Error {
  const where = line === undefined ? '' : ` (line ${line})`;
  return codedError(`leap-seconds.list: ${message}${where}`, 'ERR_LEAPFILE_INVALID');
}

/** The `#h` hash: SHA-1 over the digits of `#$`, `#@` and every data line's fields, as ntpd computes it. */
function hashMatches(digits: string, hashLine: string): boolean {
  const expected = hashLine
    .trim()
    .split(/\s+/)
    .map((word) => Number.parseInt(word, 16));
  const digest = createHash('sha1').update(digits).digest();
  if (expected.length !== 5) return false;
  return expected.every((word, index) => word === digest.readUInt32BE(index * 4));
}

function ntpSeconds(text: string, lineNumber: number): number {
  if (!/^\d+$/.test(text)) throw leapFileError(`not an NTP timestamp: ${JSON.stringify(text)}`, lineNumber);
  return Number(text) - NTP_UNIX_OFFSET;
}

/** Parses the file's text. Malformed data lines throw (code ERR_LEAPFILE_INVALID). */
export function parseLeapSeconds(text: string): LeapTable {
  const table: LeapTable = { entries: [] };
  let hashedDigits = '';
  let hashLine: string | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const lineNumber = index + 1;
    const line = rawLine.trim();
    if (line.startsWith('#$') || line.startsWith('#@')) {
      const value = line.slice(2).trim();
      hashedDigits += value.replace(/\D/g, '');
      if (line.startsWith('#$')) table.updated = ntpSeconds(value, lineNumber);
      else table.expires = ntpSeconds(value, lineNumber);
      return;
    }
    if (line.startsWith('#h')) {
      hashLine = line.slice(2);
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    const data = line.split('#')[0]?.trim() ?? '';
    const [timeText = '', offsetText = '', ...rest] = data.split(/\s+/);
    if (rest.length > 0 || !/^-?\d+$/.test(offsetText))
      throw leapFileError(`expected "<NTP seconds> <TAI-UTC>": ${JSON.stringify(line)}`, lineNumber);
    hashedDigits += data.replace(/\D/g, '');
    const entry = { time: ntpSeconds(timeText, lineNumber), taiOffset: Number(offsetText) };
    const previous = table.entries.at(-1);
    if (previous !== undefined && entry.time <= previous.time)
      throw leapFileError('entries are not in ascending order', lineNumber);
    if (entry.time % DAY !== 0) throw leapFileError('an entry that is not at UTC midnight', lineNumber);
    table.entries.push(entry);
  });
  if (table.entries.length === 0) throw leapFileError('no leap second entries');
  if (hashLine !== undefined) table.hashValid = hashMatches(hashedDigits, hashLine);
  return table;
}

export function loadLeapSeconds(path: string): LeapTable {
  return parseLeapSeconds(readFileSync(path, 'utf8'));
}

/** The default file when it exists (Debian/Ubuntu: tzdata), else undefined. */
export function defaultLeapFile(): string | undefined {
  return existsSync(DEFAULT_LEAPFILE) ? DEFAULT_LEAPFILE : undefined;
}

/** TAI - UTC and the pending leap second at `now` (only whole seconds matter). */
export function leapAt(table: LeapTable, now: Timespec): LeapStatus {
  let taiOffset = 0;
  let next: LeapStatus['next'];
  let previousOffset: number | undefined;
  for (const entry of table.entries) {
    if (entry.time <= now.sec) {
      taiOffset = entry.taiOffset;
      previousOffset = entry.taiOffset;
      continue;
    }
    // The first entry is the 1972 baseline (10 s), not a leap second.
    if (previousOffset !== undefined && entry.taiOffset !== previousOffset) {
      next = { time: entry.time, step: entry.taiOffset - previousOffset, taiOffset: entry.taiOffset };
    }
    break;
  }
  // The indicator is raised for the whole last UTC day before the leap (ntpd's convention).
  const leap: Leap = next !== undefined && now.sec >= next.time - DAY ? (next.step > 0 ? 1 : 2) : 0;
  const expired = table.expires !== undefined && now.sec >= table.expires;
  return {
    taiOffset,
    leap,
    ...(next === undefined ? {} : { next }),
    ...(table.expires === undefined ? {} : { expires: table.expires }),
    expired,
    ...(table.hashValid === undefined ? {} : { hashValid: table.hashValid }),
  };
}

/** For `htntp status`: TAI - UTC and the pending leap second from `file` at `now`. */
export function leapStatus(file: string = DEFAULT_LEAPFILE, now: Timespec = realtime()): LeapStatus & { file: string } {
  return { file, ...leapAt(loadLeapSeconds(file), now) };
}

/**
 * What the feeder asks for each sample: the leap indicator at the sample's clock time.
 * Logs once when a leap second becomes pending and once when the file expires.
 */
export class LeapSchedule {
  readonly #table: LeapTable;
  readonly #logger: Logger;
  #announcedPending = 0;
  #warnedExpired = false;

  constructor(table: LeapTable, logger: Logger = silentLogger) {
    this.#table = table;
    this.#logger = logger;
  }

  leapAt(clockTime: Timespec): Leap {
    const status = leapAt(this.#table, clockTime);
    if (status.expired && !this.#warnedExpired) {
      this.#warnedExpired = true;
      this.#logger.warn('leap file expired', { expires: new Date((status.expires ?? 0) * 1000).toISOString() });
    }
    if (status.leap !== 0 && status.next !== undefined && this.#announcedPending !== status.next.time) {
      this.#announcedPending = status.next.time;
      this.#logger.info('leap second pending', {
        leap: status.leap,
        at: new Date(status.next.time * 1000).toISOString(),
        taiOffset: status.next.taiOffset,
      });
    }
    return status.leap;
  }
}

/** What `htntp status` shows per unit: the sample's clock time as TAI and the leap second ahead. */
export interface TaiReport {
  file: string;
  /** TAI - UTC at the sample's clock time, seconds. */
  taiOffset: number;
  /** The sample's clock time in TAI (ISO 8601 digits, nanoseconds, suffix TAI). */
  tai: string;
  /** 1 insert / 2 delete during the last UTC day before a leap second, else 0. */
  leapPending: Leap;
  /** When the next listed leap second takes effect (UTC midnight), if any. */
  nextLeap?: string;
  expires?: string;
  expired: boolean;
}

const isoOf = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();

export function taiReport(leap: { file: string; table: LeapTable }, clockTime: Timespec): TaiReport {
  const status = leapAt(leap.table, clockTime);
  const tai = formatUtc({ sec: clockTime.sec + status.taiOffset, nsec: clockTime.nsec }).replace(/Z$/, ' TAI');
  return {
    file: leap.file,
    taiOffset: status.taiOffset,
    tai,
    leapPending: status.leap,
    ...(status.next === undefined ? {} : { nextLeap: isoOf(status.next.time) }),
    ...(status.expires === undefined ? {} : { expires: isoOf(status.expires) }),
    expired: status.expired,
  };
}

/** One line: `2026-11-22T02:45:14.000000000 TAI (TAI-UTC 37 s; no leap second pending; ...)` */
export function formatTaiReport(report: TaiReport): string {
  const pending =
    report.leapPending === 1
      ? `leap second pending: inserted before ${report.nextLeap}`
      : report.leapPending === 2
        ? `leap second pending: deleted before ${report.nextLeap}`
        : 'no leap second pending';
  const expiry = report.expired ? `; ${report.file} EXPIRED ${report.expires ?? ''}`.trimEnd() : '';
  return `${report.tai} (TAI-UTC ${report.taiOffset} s; ${pending}${expiry})`;
}
