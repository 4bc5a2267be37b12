// The hand-written NMEA parser: sentences, fields, checksums, and fuzzing.
import { describe, expect, it } from 'vitest';
import { checksumOf, parseLine, parseTimeOfDay, withChecksum, type ParsedLine } from '../../../src/sources/gps/nmea.js';
import { seededRandom } from '../../helpers/random.js';

function time(line: string): ParsedLine & { kind: 'time' } {
  const parsed = parseLine(line);
  if (parsed.kind !== 'time') throw new Error(`not a time sentence: ${JSON.stringify(parsed)}`);
  return parsed;
}

describe('checksum', () => {
  it('matches real receivers', () => {
    // From gr601-w.log and sirfstarv-nmea.log as captured.
    expect(checksumOf('GPRMC,143252.00,A,4002.10513,N,07531.20562,W,0.016,,241013,,,A')).toBe(0x60);
    expect(parseLine('$GPRMC,143252.00,A,4002.10513,N,07531.20562,W,0.016,,241013,,,A*60').kind).toBe('time');
  });

  it('is required, and must match', () => {
    const rmc = '$GPRMC,143252.00,A,4002.10513,N,07531.20562,W,0.016,,241013,,,A';
    for (const [suffix, reason] of [
      ['', 'no-checksum'],
      ['*61', 'bad-checksum'],
      ['*6', 'no-checksum'],
      ['*6G', 'no-checksum'],
    ]) {
      expect(parseLine(rmc + suffix), suffix).toEqual({ kind: 'rejected', reason });
    }
    expect(parseLine('hello')).toEqual({ kind: 'rejected', reason: 'not-nmea' });
  });

  it('accepts lower-case hex and leading line noise', () => {
    const line = withChecksum('GPGGA,120000.00,4002.1,N,07531.2,W,1,07,1.72,183.8,M,-34.4,M,,');
    expect(parseLine(`\x00\xff${line}`).kind).toBe('time');
    expect(parseLine(line.replace(/\*([0-9A-F]{2})$/, (_, hex: string) => `*${hex.toLowerCase()}`)).kind).toBe('time');
  });
});

describe('time of day', () => {
  it('takes any number of fraction digits', () => {
    expect(parseTimeOfDay('235946.005')).toEqual({ hour: 23, minute: 59, second: 46, nsec: 5_000_000 });
    expect(parseTimeOfDay('081433.591')).toEqual({ hour: 8, minute: 14, second: 33, nsec: 591_000_000 });
    expect(parseTimeOfDay('000231.42')).toEqual({ hour: 0, minute: 2, second: 31, nsec: 420_000_000 });
    expect(parseTimeOfDay('225308')).toEqual({ hour: 22, minute: 53, second: 8, nsec: 0 });
    expect(parseTimeOfDay('225308.')).toEqual({ hour: 22, minute: 53, second: 8, nsec: 0 });
    expect(parseTimeOfDay('120000.1234567891234')).toEqual({ hour: 12, minute: 0, second: 0, nsec: 123_456_789 });
  });

  it('allows second 60 and nothing beyond', () => {
    expect(parseTimeOfDay('235960.00')?.second).toBe(60);
    expect(parseTimeOfDay('235961.00')).toBeUndefined();
    expect(parseTimeOfDay('240000')).toBeUndefined();
    expect(parseTimeOfDay('126000')).toBeUndefined();
    expect(parseTimeOfDay('12000')).toBeUndefined();
    expect(parseTimeOfDay('12000a')).toBeUndefined();
    expect(parseTimeOfDay('')).toBeNull();
  });
});

describe('sentences', () => {
  it('reads RMC from any talker, with date and status', () => {
    for (const talker of ['GP', 'GN', 'GL', 'GA', 'BD']) {
      const rmc = time(withChecksum(`${talker}RMC,020935.000,A,4404.1351,N,12118.8556,W,0.04,359.11,050219,,,A`));
      expect(rmc).toMatchObject({
        talker,
        type: 'RMC',
        fix: true,
        date: { day: 5, month: 2, year: 19, twoDigitYear: true },
      });
    }
    expect(time(withChecksum('GPRMC,235946.005,V,8960.0,N,00000.0,E,0.000,0.00,050180,,,N')).fix).toBe(false);
    // Mode N overrides a status A.
    expect(time(withChecksum('GPRMC,120000,A,4527.458,S,16709.165,E,0.0,0.0,060601,,,N')).fix).toBe(false);
    // Meinberg: no mode field at all.
    expect(time(withChecksum('GPRMC,220952.00,A,4742.21,N,01200.75,E,0.0,0.0,181223,0.0,E')).fix).toBe(true);
  });

  it('refuses malformed RMC dates instead of guessing', () => {
    expect(time(withChecksum('GPRMC,000231.099,A,4829.0005,N,00022.0015,E,0.15,212.28,2208-1,,,A')).date).toBeNull();
    expect(time(withChecksum('GPRMC,000231.099,A,4829.0005,N,00022.0015,E,0.15,212.28,310219,,,A')).date).toBeNull();
    expect(time(withChecksum('GPRMC,000231.099,A,4829.0005,N,00022.0015,E,0.15,212.28,291324,,,A')).date).toBeNull();
  });

  it('reads ZDA with a four-digit year and no validity', () => {
    const zda = time(withChecksum('GPZDA,150120.000,09,03,2022,,'));
    expect(zda).toMatchObject({ type: 'ZDA', fix: null, date: { day: 9, month: 3, year: 2022, twoDigitYear: false } });
    expect(zda.time).toEqual({ hour: 15, minute: 1, second: 20, nsec: 0 });
  });

  it('reads GGA quality, GLL status and GNS modes', () => {
    expect(time(withChecksum('GPGGA,150119.000,5104.0859,N,11405.7387,W,2,8,0.94,1102.4,M,-17.2,M,,'))).toMatchObject({
      fix: true,
      satellites: 8,
    });
    expect(time(withChecksum('GPGGA,235946.005,8960.0,N,00000.0,E,0,0,,137.000,M,13.000,M,,')).fix).toBe(false);
    expect(time(withChecksum('GPGGA,120000,8960.0,N,00000.0,E,8,0,,137.000,M,13.000,M,,')).fix).toBe(false);
    expect(time(withChecksum('GPGLL,4002.10504,N,07531.20566,W,143251.00,A,A')).fix).toBe(true);
    expect(time(withChecksum('GPGLL,4002.10504,N,07531.20566,W,143251.00,V,N')).fix).toBe(false);
    expect(time(withChecksum('GNGNS,014035.00,4332.69262,S,17235.48549,E,RR,13,0.9,25.63,11.24,,'))).toMatchObject({
      fix: true,
      satellites: 13,
    });
    expect(time(withChecksum('GNGNS,014035.00,,,,,NN,00,,,,,'))).toMatchObject({ fix: false, satellites: 0 });
    expect(time(withChecksum('GPGGA,120000,8960.0,N,00000.0,E,0,,,137.000,M,13.000,M,,')).satellites).toBeUndefined();
    expect(time(withChecksum('GNGNS,014035.00,,,,,NN,00,,,,,')).time?.second).toBe(35);
  });

  it('passes other sentences through as other', () => {
    expect(parseLine(withChecksum('GPGSV,3,3,11,24,05,327,,28,84,072,33,32,23,078,26'))).toEqual({
      kind: 'other',
      type: 'GSV',
    });
    expect(parseLine(withChecksum('PMTK010,001'))).toEqual({ kind: 'other', type: 'PMTK010' });
    expect(parseLine('$POLYN,TIME,RESTART_OCCURRED')).toEqual({ kind: 'rejected', reason: 'no-checksum' });
  });

  it('rejects truncated time sentences', () => {
    expect(parseLine(withChecksum('GPRMC,120000,A'))).toEqual({ kind: 'rejected', reason: 'malformed' });
    expect(parseLine(withChecksum('GPGGA,1200'))).toEqual({ kind: 'rejected', reason: 'malformed' });
    expect(parseLine(withChecksum('GPGGA,120000,1,N,1,E,x,0,,1,M,1,M,,'))).toEqual({
      kind: 'rejected',
      reason: 'malformed',
    });
  });
});

// A small seeded PRNG: failures reproduce.
const prng = seededRandom;

const REAL_LINES = [
  '$GPRMC,143252.00,A,4002.10513,N,07531.20562,W,0.016,,241013,,,A*60',
  '$GPGGA,143252.00,4002.10513,N,07531.20562,W,1,07,1.72,183.8,M,-34.4,M,,*61',
  '$GPGLL,4002.10513,N,07531.20562,W,143252.00,A,A*7B',
  '$GPRMC,225308,A,4527.458,S,16709.165,E,000.0,094.5,060601,024.1,E*6D',
  '$GNRMC,020935.000,A,4404.1351,N,12118.8556,W,0.04,359.11,050219,,,A*6C',
  '$GPZDA,150119.000,09,03,2022,,*53',
];

describe('fuzz', () => {
  it('the seed lines are real, valid sentences', () => {
    for (const line of REAL_LINES) expect(parseLine(line).kind).toBe('time');
  });

  it('random lines never throw and never yield a time', () => {
    const random = prng(4);
    const alphabet = '$*,.0123456789ABCDEFGNPRMCZDAGLSV\r\n \x00\xff';
    for (let round = 0; round < 20_000; round += 1) {
      const length = Math.floor(random() * 100);
      let line = '';
      for (let index = 0; index < length; index += 1) line += alphabet[Math.floor(random() * alphabet.length)];
      const parsed = parseLine(line);
      expect(parsed.kind).not.toBe('time');
    }
  });

  it('mutated real lines never throw and never yield a time', () => {
    const random = prng(17);
    for (let round = 0; round < 20_000; round += 1) {
      const line = REAL_LINES[round % REAL_LINES.length]!;
      const body = line.lastIndexOf('*');
      // One changed byte between $ and * changes the XOR: the checksum must catch it.
      const at = 1 + Math.floor(random() * (body - 1));
      let replacement = String.fromCharCode(Math.floor(random() * 256));
      if (replacement === line[at]) replacement = replacement === 'X' ? 'Y' : 'X';
      const mutated = line.slice(0, at) + replacement + line.slice(at + 1);
      expect(parseLine(mutated).kind).not.toBe('time');
    }
  });

  it('random fields under a correct checksum never throw; any time they yield is in range', () => {
    const random = prng(99);
    const types = ['GPRMC', 'GNZDA', 'GPGGA', 'GLGLL', 'GNGNS'];
    const pieces = [
      '',
      '0',
      '60',
      '235960.5',
      '999999',
      '-1',
      'A',
      'V',
      '1',
      '0.5',
      '290224',
      '310299',
      'NaN',
      '1e3',
      ' 1',
      '12345.6789',
    ];
    for (let round = 0; round < 20_000; round += 1) {
      const fields = Array.from(
        { length: Math.floor(random() * 14) },
        () => pieces[Math.floor(random() * pieces.length)],
      );
      const parsed = parseLine(withChecksum([types[round % types.length], ...fields].join(',')));
      if (parsed.kind === 'time' && parsed.time !== null) {
        expect(parsed.time.hour).toBeLessThanOrEqual(23);
        expect(parsed.time.second).toBeLessThanOrEqual(60);
        expect(parsed.time.nsec).toBeLessThan(1e9);
      }
      if (parsed.kind === 'time' && parsed.date !== null) {
        expect(parsed.date.month).toBeGreaterThanOrEqual(1);
        expect(parsed.date.month).toBeLessThanOrEqual(12);
      }
    }
  });
});
