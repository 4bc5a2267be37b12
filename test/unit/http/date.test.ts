import { describe, expect, it } from 'vitest';
import { formatHttpDate, parseHttpDate, rfc850Year } from '../../../src/sources/http/date.js';

const NOW_YEAR = 2026;
const utc = (text: string): number => new Date(text).getTime() / 1000; // ISO with Z only: unambiguous

describe('parseHttpDate', () => {
  it('reads the three RFC 9110 examples as the same instant', () => {
    const expected = utc('1994-11-06T08:49:37Z');
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW_YEAR)).toEqual({
      seconds: expected,
      format: 'imf-fixdate',
    });
    // 1994 from "94" needs a 20th-century reader: in 2026, 94 -> 2094 is > 50 years ahead.
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW_YEAR)).toEqual({ seconds: expected, format: 'rfc850' });
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW_YEAR)).toEqual({ seconds: expected, format: 'asctime' });
  });

  it('reads asctime as UTC whatever TZ says (Date.parse reads it as local time)', () => {
    expect(parseHttpDate('Sun Nov 22 02:05:55 2026', NOW_YEAR)?.seconds).toBe(utc('2026-11-22T02:05:55Z'));
  });

  it('accepts second 60 as the leap second (POSIX: the next 00:00:00)', () => {
    expect(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT', NOW_YEAR)?.seconds).toBe(utc('2017-01-01T00:00:00Z'));
    expect(parseHttpDate('Sat, 31 Dec 2016 23:59:61 GMT', NOW_YEAR)).toBeUndefined();
  });

  it('applies the 50-year rule to RFC 850 two-digit years', () => {
    expect(rfc850Year(76, 2026)).toBe(2076); // exactly 50 ahead: kept
    expect(rfc850Year(77, 2026)).toBe(1977); // more than 50 ahead: the past year
    expect(rfc850Year(50, 2026)).toBe(2050); // Date.parse says 1950
    expect(rfc850Year(26, 2026)).toBe(2026);
    expect(rfc850Year(10, 2090)).toBe(2110);
    expect(parseHttpDate('Saturday, 01-Jan-50 00:00:00 GMT', NOW_YEAR)?.seconds).toBe(utc('2050-01-01T00:00:00Z'));
  });

  it.each([
    ['lower-case month', 'Sun, 06 nov 1994 08:49:37 GMT'],
    ['wrong weekday', 'Mon, 06 Nov 1994 08:49:37 GMT'],
    ['UTC instead of GMT', 'Sun, 06 Nov 1994 08:49:37 UTC'],
    ['numeric zone', 'Sun, 06 Nov 1994 08:49:37 +0000'],
    ['one-digit day', 'Sun, 6 Nov 1994 08:49:37 GMT'],
    ['31 November', 'Wed, 31 Nov 1994 08:49:37 GMT'],
    ['29 February of a common year', 'Thu, 29 Feb 2026 00:00:00 GMT'],
    ['hour 24', 'Sun, 06 Nov 1994 24:00:00 GMT'],
    ['minute 60', 'Sun, 06 Nov 1994 08:60:00 GMT'],
    ['trailing space', 'Sun, 06 Nov 1994 08:49:37 GMT '],
    ['asctime zero-padded day', 'Sun Nov 06 08:49:37 1994'],
    ['asctime with GMT', 'Sun Nov  6 08:49:37 1994 GMT'],
    ['RFC 850 short weekday', 'Sun, 06-Nov-94 08:49:37 GMT'],
    ['ISO 8601', '1994-11-06T08:49:37Z'],
    ['empty', ''],
  ])('rejects %s', (_name, value) => {
    expect(parseHttpDate(value, NOW_YEAR)).toBeUndefined();
  });

  it('accepts 29 February of a leap year and round-trips every format', () => {
    expect(parseHttpDate('Thu, 29 Feb 2024 12:00:00 GMT', NOW_YEAR)?.seconds).toBe(utc('2024-02-29T12:00:00Z'));
    for (const seconds of [0, utc('2000-02-29T23:59:59Z'), utc('2026-11-22T02:05:55Z'), utc('2038-01-19T03:14:08Z')]) {
      for (const format of ['imf-fixdate', 'rfc850', 'asctime'] as const) {
        expect(parseHttpDate(formatHttpDate(seconds, format), seconds === 0 ? 1970 : NOW_YEAR)).toEqual({
          seconds,
          format,
        });
      }
    }
  });
});
