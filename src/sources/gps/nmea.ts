// NMEA 0183 sentences that carry time, parsed by hand: no npm NMEA library gets time
// right (see shared notes). Never throws: every line is either a sentence or a reason.

/** Time of day as the sentence states it (second may be 60 during a leap second). */
export interface TimeOfDay {
  hour: number;
  minute: number;
  second: number;
  /** The fraction digits, any number of them, as nanoseconds. */
  nsec: number;
}

/** A calendar date as the sentence states it; RMC's two-digit year is left as is. */
export interface NmeaDate {
  day: number;
  month: number;
  year: number;
  twoDigitYear: boolean;
}

export type TimeSentenceType = 'RMC' | 'ZDA' | 'GGA' | 'GLL' | 'GNS';

export interface TimeSentence {
  kind: 'time';
  talker: string;
  type: TimeSentenceType;
  /** null when the receiver left the time field empty (no time yet). */
  time: TimeOfDay | null;
  /** RMC and ZDA only; null when empty or malformed. */
  date: NmeaDate | null;
  /** true/false from RMC/GLL status, GGA quality, GNS mode; null for ZDA (no validity flag). */
  fix: boolean | null;
  /** Satellites in use (GGA, GNS), when the field holds a number. */
  satellites?: number;
}

export type RejectReason = 'not-nmea' | 'no-checksum' | 'bad-checksum' | 'malformed';

export type ParsedLine =
  | TimeSentence
  /** A well-formed sentence of a type that carries no time we use (GSV, VTG, $PMTK...). */
  | { kind: 'other'; type: string }
  | { kind: 'rejected'; reason: RejectReason };

const TIME_TYPES: ReadonlySet<string> = new Set(['RMC', 'ZDA', 'GGA', 'GLL', 'GNS']);

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/** XOR of every character between `$` and `*` (exclusive), as the standard defines it. */
export function checksumOf(body: string): number {
  let sum = 0;
  for (let index = 0; index < body.length; index += 1) sum ^= body.charCodeAt(index) & 0xff;
  return sum;
}

/** Appends `*HH` to a sentence body (without `$`): handy for writers and tests. */
export function withChecksum(body: string): string {
  return `$${body}*${checksumOf(body).toString(16).toUpperCase().padStart(2, '0')}`;
}

function digitsValue(text: string): number {
  // Only ASCII digits: Number() would accept ' 1', '1e1', '0x1'.
  if (!/^\d+$/.test(text)) return Number.NaN;
  return Number(text);
}

/** `hhmmss[.f...]`; null if empty; undefined if malformed. */
export function parseTimeOfDay(field: string): TimeOfDay | null | undefined {
  if (field === '') return null;
  const match = /^(\d\d)(\d\d)(\d\d)(?:\.(\d*))?$/.exec(field);
  if (match === null) return undefined;
  const hour = Number(match[1]);
  const minute = Number(match[2]);
  const second = Number(match[3]);
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  // Any number of fraction digits; beyond nanoseconds they are noise.
  const fraction = (match[4] ?? '').slice(0, 9).padEnd(9, '0');
  return { hour, minute, second, nsec: Number(fraction) };
}

function dateOf(day: number, month: number, year: number, twoDigitYear: boolean): NmeaDate | null {
  if (!Number.isInteger(day) || !Number.isInteger(month) || !Number.isInteger(year)) return null;
  if (month < 1 || month > 12 || day < 1) return null;
  const daysInMonth = new Date(Date.UTC(twoDigitYear ? 2000 + year : year, month, 0)).getUTCDate();
  if (day > daysInMonth) return null;
  return { day, month, year, twoDigitYear };
}

/** RMC's `ddmmyy`; null if empty or malformed (e.g. Telit's `2208-1` after the 2019 rollover). */
function parseRmcDate(field: string): NmeaDate | null {
  if (!/^\d{6}$/.test(field)) return null;
  return dateOf(digitsValue(field.slice(0, 2)), digitsValue(field.slice(2, 4)), digitsValue(field.slice(4, 6)), true);
}

/** RMC/GLL mode indicator (NMEA 2.3+): N none, E estimated, M manual, S simulator are no fix. */
function modeIsFix(mode: string | undefined): boolean {
  return mode === undefined || mode === '' || !/^[NEMS]$/.test(mode);
}

/** GNS: one mode character per constellation; a fix if any says A/D/P/R/F. */
function gnsModeIsFix(mode: string): boolean {
  return /[ADPRF]/.test(mode);
}

function satellitesIn(field: string): { satellites?: number } {
  const count = digitsValue(field);
  return Number.isNaN(count) ? {} : { satellites: count };
}

/**
 * Parses one line (without its line end). Checksum required on every sentence: a line
 * without `*HH` is rejected, so noise can never yield a time.
 */
export function parseLine(line: string): ParsedLine {
  const start = line.indexOf('$');
  // Leading bytes can be line noise from a port opened mid-sentence.
  if (start < 0) return { kind: 'rejected', reason: 'not-nmea' };
  const star = line.lastIndexOf('*');
  if (star < start) return { kind: 'rejected', reason: 'no-checksum' };
  const trailer = line.slice(star + 1).trimEnd();
  if (trailer.length !== 2) return { kind: 'rejected', reason: 'no-checksum' };
  const high = hexValue(trailer.charCodeAt(0));
  const low = hexValue(trailer.charCodeAt(1));
  if (high < 0 || low < 0) return { kind: 'rejected', reason: 'no-checksum' };
  const body = line.slice(start + 1, star);
  if (checksumOf(body) !== high * 16 + low) return { kind: 'rejected', reason: 'bad-checksum' };
  if (!/^[\x20-\x7e]*$/.test(body)) return { kind: 'rejected', reason: 'malformed' };

  const fields = body.split(',');
  const address = fields[0] ?? '';
  if (!/^[A-Z][A-Z0-9]{2,}$/.test(address)) return { kind: 'rejected', reason: 'malformed' };
  // Proprietary sentences ($P...) have no talker; standard ones are talker (2) + type (3).
  if (address.startsWith('P') || address.length !== 5) return { kind: 'other', type: address };
  const talker = address.slice(0, 2);
  const type = address.slice(2);
  if (!TIME_TYPES.has(type)) return { kind: 'other', type };
  return parseTimeSentence(talker, type as TimeSentenceType, fields) ?? { kind: 'rejected', reason: 'malformed' };
}

function parseTimeSentence(talker: string, type: TimeSentenceType, fields: string[]): TimeSentence | null {
  const field = (index: number): string => fields[index] ?? '';
  switch (type) {
    case 'RMC': {
      // $--RMC,hhmmss.ss,A,llll.ll,a,yyyyy.yy,a,x.x,x.x,ddmmyy,x.x,a[,m[,s]]
      if (fields.length < 10) return null;
      const time = parseTimeOfDay(field(1));
      if (time === undefined) return null;
      const status = field(2);
      return {
        kind: 'time',
        talker,
        type,
        time,
        date: parseRmcDate(field(9)),
        fix: status === 'A' && modeIsFix(fields[12]),
      };
    }
    case 'ZDA': {
      // $--ZDA,hhmmss.ss,dd,mm,yyyy,zh,zm
      if (fields.length < 5) return null;
      const time = parseTimeOfDay(field(1));
      if (time === undefined) return null;
      const valid = /^\d\d$/.test(field(2)) && /^\d\d$/.test(field(3)) && /^\d{4}$/.test(field(4));
      const date = valid ? dateOf(digitsValue(field(2)), digitsValue(field(3)), digitsValue(field(4)), false) : null;
      return { kind: 'time', talker, type, time, date, fix: null };
    }
    case 'GGA': {
      // $--GGA,hhmmss.ss,llll.ll,a,yyyyy.yy,a,q,...: quality 1..5 are real fixes; 6 is dead
      // reckoning, 7 manual input, 8 simulator: none of them a time we can stand behind.
      if (fields.length < 7) return null;
      const time = parseTimeOfDay(field(1));
      if (time === undefined) return null;
      const quality = field(6) === '' ? 0 : digitsValue(field(6));
      if (Number.isNaN(quality)) return null;
      return {
        kind: 'time',
        talker,
        type,
        time,
        date: null,
        fix: quality >= 1 && quality <= 5,
        ...satellitesIn(field(7)),
      };
    }
    case 'GLL': {
      // $--GLL,llll.ll,a,yyyyy.yy,a,hhmmss.ss,A[,m]: time and status arrived in NMEA 2.x.
      if (fields.length < 7) return null;
      const time = parseTimeOfDay(field(5));
      if (time === undefined) return null;
      return { kind: 'time', talker, type, time, date: null, fix: field(6) === 'A' && modeIsFix(fields[7]) };
    }
    case 'GNS': {
      // $--GNS,hhmmss.ss,llll.ll,a,yyyyy.yy,a,c--c,...
      if (fields.length < 7) return null;
      const time = parseTimeOfDay(field(1));
      if (time === undefined) return null;
      return { kind: 'time', talker, type, time, date: null, fix: gnsModeIsFix(field(6)), ...satellitesIn(field(7)) };
    }
  }
}
