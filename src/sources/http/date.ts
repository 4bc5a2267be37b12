// The HTTP Date header (RFC 9110 section 5.6.7), parsed by hand: Date.parse reads asctime
// as local time, turns :60 into :00 and maps RFC 850 year 50 to 1950.
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

export type HttpDateFormat = 'imf-fixdate' | 'rfc850' | 'asctime';

export interface HttpDate {
  /**
   * POSIX seconds of the stamped second. A leap second 23:59:60 counts as the next
   * day's 00:00:00, which is what CLOCK_REALTIME reads once the leap is over.
   */
  seconds: number;
  format: HttpDateFormat;
}

const WEEKDAY = `(?<weekday>${DAYS.join('|')})`;
const MONTH = '(?<month>[A-Z][a-z]{2})';
const TIME = String.raw`(?<hour>\d{2}):(?<minute>\d{2}):(?<second>\d{2})`;

/** The three formats; each pattern names its fields, so one path reads them all. */
const FORMATS: readonly { format: HttpDateFormat; pattern: RegExp; weekdays: readonly string[] }[] = [
  {
    format: 'imf-fixdate',
    pattern: new RegExp(String.raw`^${WEEKDAY}, (?<day>\d{2}) ${MONTH} (?<year>\d{4}) ${TIME} GMT$`),
    weekdays: DAYS,
  },
  {
    format: 'rfc850',
    pattern: new RegExp(
      String.raw`^(?<weekday>${LONG_DAYS.join('|')}), (?<day>\d{2})-${MONTH}-(?<year>\d{2}) ${TIME} GMT$`,
    ),
    weekdays: LONG_DAYS,
  },
  {
    format: 'asctime',
    pattern: new RegExp(String.raw`^${WEEKDAY} ${MONTH} (?<day>[ \d]\d) ${TIME} (?<year>\d{4})$`),
    weekdays: DAYS,
  },
];

function daysFromCivil(year: number, month: number, day: number): number {
  // Howard Hinnant's days_from_civil: exact for every proleptic Gregorian date.
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** RFC 9110: a two-digit year more than 50 years in the future is the most recent past year with those digits. */
export function rfc850Year(twoDigits: number, nowYear: number): number {
  let year = nowYear - (nowYear % 100) + twoDigits;
  if (year > nowYear + 50) year -= 100;
  else if (year < nowYear - 49) year += 100;
  return year;
}

function build(
  format: HttpDateFormat,
  weekday: number,
  year: number,
  monthName: string,
  day: number,
  hour: number,
  minute: number,
  second: number,
): HttpDate | undefined {
  const month = (MONTHS as readonly string[]).indexOf(monthName) + 1;
  if (month === 0 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const days = daysFromCivil(year, month, day);
  // 1970-01-01 was a Thursday (index 4).
  if ((((days + 4) % 7) + 7) % 7 !== weekday) return undefined;
  return { seconds: days * 86400 + hour * 3600 + minute * 60 + second, format };
}

/**
 * Parses the three formats RFC 9110 requires a recipient to accept, case-sensitively,
 * including the weekday check; anything else is undefined. `nowYear` anchors RFC 850's
 * two-digit years (the local clock's year is close enough: only 50-year boundaries matter).
 */
export function parseHttpDate(value: string, nowYear: number): HttpDate | undefined {
  for (const { format, pattern, weekdays } of FORMATS) {
    const fields = pattern.exec(value)?.groups;
    if (fields === undefined) continue;
    const { weekday = '', day = '', month = '', year = '', hour = '', minute = '', second = '' } = fields;
    // asctime pads the day with a space, never a zero.
    if (format === 'asctime' && day.startsWith('0')) return undefined;
    return build(
      format,
      weekdays.indexOf(weekday),
      format === 'rfc850' ? rfc850Year(Number(year), nowYear) : Number(year),
      month,
      Number(day.trim()),
      Number(hour),
      Number(minute),
      Number(second),
    );
  }
  return undefined;
}

/** The UTC year of POSIX seconds (for parseHttpDate's nowYear). */
export function utcYear(seconds: number): number {
  return new Date(seconds * 1000).getUTCFullYear();
}

/** Formats POSIX seconds in one of the three formats (test servers and fixtures use it). */
export function formatHttpDate(seconds: number, format: HttpDateFormat = 'imf-fixdate'): string {
  const date = new Date(seconds * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  const weekday = date.getUTCDay();
  const month = MONTHS[date.getUTCMonth()] ?? '';
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  const year = date.getUTCFullYear();
  const day = date.getUTCDate();
  switch (format) {
    case 'imf-fixdate':
      return `${DAYS[weekday] ?? ''}, ${two(day)} ${month} ${year} ${time} GMT`;
    case 'rfc850':
      return `${LONG_DAYS[weekday] ?? ''}, ${two(day)}-${month}-${two(year % 100)} ${time} GMT`;
    case 'asctime':
      return `${DAYS[weekday] ?? ''} ${month} ${String(day).padStart(2, ' ')} ${time} ${year}`;
  }
}
