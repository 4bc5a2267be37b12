// The sampler's rules with made-up arrival times: which sentence is stamped, fix gating,
// dates (midnight, two-digit years, rollover, 1980), leap seconds, stale data.
import { describe, expect, it } from 'vitest';
import { datedTime, RELEASE_FLOOR } from '../../../src/sources/gps/date.js';
import { LineSplitter } from '../../../src/sources/gps/lines.js';
import { NmeaSampler, type SamplerOptions } from '../../../src/sources/gps/sampler.js';
import type { Sample } from '../../../src/sample.js';
import { addSeconds, type Timespec } from '../../../src/time.js';
import { burst, gga, gll, rmc, zda } from '../../helpers/gps/sentences.js';

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0) / 1000;
const WEEKS_1024 = 1024 * 7 * 86_400;

/** Feeds lines as if they arrived `latency` s after `second` (realtime and monotonic alike), 5 ms apart. */
function feed(sampler: NmeaSampler, second: number, lines: string[], latency = 0.2): Sample[] {
  const samples: Sample[] = [];
  lines.forEach((line, index) => {
    const at = addSeconds({ sec: second, nsec: 0 }, latency + index * 0.005);
    const sample = sampler.line(line, at, at).sample;
    if (sample !== null) samples.push(sample);
  });
  return samples;
}

function sampler(options: Partial<SamplerOptions> = {}): NmeaSampler {
  return new NmeaSampler({ minFixes: 3, offset: 0, precision: -1, ...options });
}

describe('stamping', () => {
  it('stamps the first sentence of each second; the rest of the burst publishes nothing', () => {
    const gps = sampler({ minFixes: 1 });
    const samples = feed(gps, T0, burst(T0), 0.25);
    expect(samples).toHaveLength(1);
    expect(samples[0]).toEqual({ clockTime: { sec: T0, nsec: 0 }, receiveTime: { sec: T0, nsec: 250_000_000 }, precision: -1 });
  });

  it('clock = sentence time + offset (fraction kept)', () => {
    const gps = sampler({ minFixes: 1, offset: -0.125, precision: -5 });
    const [sample] = feed(gps, T0, [rmc(T0, { fraction: '.004' })]);
    expect(sample?.clockTime).toEqual({ sec: T0 - 1, nsec: 879_000_000 });
    expect(sample?.precision).toBe(-5);
  });

  it('GGA before the first RMC: stamped at the GGA, published once the RMC gives the date', () => {
    const gps = sampler({ minFixes: 1 });
    const at: Timespec = { sec: T0, nsec: 100_000_000 };
    expect(gps.line(gga(T0), at, at).skip).toBe('no-date');
    const later: Timespec = { sec: T0, nsec: 400_000_000 };
    const { sample } = gps.line(rmc(T0), later, later);
    expect(sample).toEqual({ clockTime: { sec: T0, nsec: 0 }, receiveTime: at, precision: -1 });
  });

  it('publishes at most once a second, also at 5 Hz', () => {
    const gps = sampler({ minFixes: 1 });
    const samples = [0, 0.2, 0.4, 0.6, 0.8].flatMap((fraction) =>
      feed(gps, T0, [rmc(T0, { fraction: `.${String(fraction * 10)}0` })], 0.1 + fraction),
    );
    expect(samples).toHaveLength(1);
    expect(feed(gps, T0 + 1, [rmc(T0 + 1)])).toHaveLength(1);
  });
});

describe('fix gating', () => {
  it('waits for --min-fixes consecutive good fixes', () => {
    const gps = sampler({ minFixes: 3 });
    expect(feed(gps, T0, burst(T0))).toHaveLength(0);
    expect(feed(gps, T0 + 1, burst(T0 + 1))).toHaveLength(0);
    expect(feed(gps, T0 + 2, burst(T0 + 2))).toHaveLength(1);
    expect(gps.goodFixes).toBe(3);
  });

  it('any invalid fix resets the count', () => {
    const gps = sampler({ minFixes: 2 });
    feed(gps, T0, burst(T0));
    feed(gps, T0 + 1, [rmc(T0 + 1), gga(T0 + 1, { valid: false })]);
    expect(gps.goodFixes).toBe(0);
    expect(feed(gps, T0 + 2, burst(T0 + 2))).toHaveLength(0);
    expect(feed(gps, T0 + 3, burst(T0 + 3))).toHaveLength(1);
    // Losing the fix stops samples at once.
    expect(feed(gps, T0 + 4, [rmc(T0 + 4, { valid: false }), gga(T0 + 4, { valid: false })])).toHaveLength(0);
    expect(feed(gps, T0 + 5, [gll(T0 + 5, { valid: false })])).toHaveLength(0);
  });

  it('ZDA alone is no fix: it gives the date but publishes nothing', () => {
    const gps = sampler({ minFixes: 1 });
    expect(feed(gps, T0, [zda(T0)])).toHaveLength(0);
    expect(feed(gps, T0 + 1, [zda(T0 + 1), gga(T0 + 1)])).toEqual([
      { clockTime: { sec: T0 + 1, nsec: 0 }, receiveTime: { sec: T0 + 1, nsec: 200_000_000 }, precision: -1 },
    ]);
  });

  it('publishes nothing from data that arrives faster than real time (buffered, replayed)', () => {
    const gps = sampler({ minFixes: 3 });
    const flood = [0, 1, 2, 3, 4, 5].flatMap((offset) => burst(T0 + offset));
    expect(feed(gps, T0 + 10, flood)).toHaveLength(0);
    expect(gps.counts.get('timing')).toBeGreaterThan(0);
  });

  it('time going backwards restarts the count and never republishes a second', () => {
    const gps = sampler({ minFixes: 1 });
    expect(feed(gps, T0, [rmc(T0)])).toHaveLength(1);
    expect(feed(gps, T0 + 1, [rmc(T0 - 5)])).toHaveLength(0);
    expect(gps.counts.get('backwards')).toBe(1);
    expect(feed(gps, T0 + 2, [rmc(T0)])).toHaveLength(0);
    expect(feed(gps, T0 + 3, [rmc(T0 + 3)])).toHaveLength(1);
  });

  it('after reset() (device reopened) the count starts over', () => {
    const gps = sampler({ minFixes: 2 });
    feed(gps, T0, burst(T0));
    feed(gps, T0 + 1, burst(T0 + 1));
    gps.reset();
    expect(feed(gps, T0 + 2, burst(T0 + 2))).toHaveLength(0);
    expect(feed(gps, T0 + 3, burst(T0 + 3))).toHaveLength(1);
  });
});

describe('dates', () => {
  it('time-only sentences take the last date and cross midnight', () => {
    const midnight = Date.UTC(2026, 11, 31, 0, 0, 0) / 1000 + 86_400; // 2027-01-01
    const gps = sampler({ minFixes: 1 });
    expect(feed(gps, midnight - 1, [rmc(midnight - 1)])).toHaveLength(1);
    // GGA first in the next burst, before the RMC with the new date.
    const [sample] = feed(gps, midnight, [gga(midnight)]);
    expect(sample?.clockTime).toEqual({ sec: midnight, nsec: 0 });
    const [next] = feed(gps, midnight + 1, [gll(midnight + 1)]);
    expect(next?.clockTime).toEqual({ sec: midnight + 1, nsec: 0 });
  });

  it('two-digit years: 69..99 are 19xx, then moved forward in 1024-week steps past the floor', () => {
    const floor: Timespec = { sec: Date.UTC(2019, 2, 14) / 1000, nsec: 0 };
    const tod = { hour: 0, minute: 2, second: 31, nsec: 420_000_000 };
    expect(datedTime({ day: 22, month: 8, year: 99, twoDigitYear: true }, tod, floor)).toEqual({
      sec: Date.UTC(1999, 7, 22, 0, 2, 31) / 1000 + WEEKS_1024,
      nsec: 420_000_000,
    });
    expect(datedTime({ day: 22, month: 8, year: 19, twoDigitYear: true }, tod, floor)?.sec).toBe(Date.UTC(2019, 7, 22, 0, 2, 31) / 1000);
  });

  it('with the release floor, a 2007 date from a pre-2019-firmware receiver lands after the floor', () => {
    const reported = Date.UTC(2007, 3, 8, 12, 0, 0) / 1000;
    const time = datedTime({ day: 8, month: 4, year: 7, twoDigitYear: true }, { hour: 12, minute: 0, second: 0, nsec: 0 });
    expect(time?.sec).toBe(reported + WEEKS_1024);
    expect(time!.sec).toBeGreaterThanOrEqual(RELEASE_FLOOR.sec);
    expect(time!.sec - WEEKS_1024).toBeLessThan(RELEASE_FLOOR.sec);
  });

  it('1980 dates (receiver defaults) and years before are refused, not moved forward', () => {
    const gps = sampler({ minFixes: 1 });
    const line = '$GPRMC,235946.005,A,8960.000000,N,00000.000000,E,0.000,0.00,050180,,,A*';
    const body = line.slice(1, -1);
    let sum = 0;
    for (const char of body) sum ^= char.charCodeAt(0);
    const at: Timespec = { sec: T0, nsec: 0 };
    const result = gps.line(`${line}${sum.toString(16).toUpperCase().padStart(2, '0')}`, at, at);
    expect(result.skip).toBe('bogus-date');
    expect(result.sample).toBeNull();
    expect(datedTime({ day: 6, month: 1, year: 1980, twoDigitYear: false }, { hour: 0, minute: 0, second: 0, nsec: 0 })).toBeNull();
  });

  it('a leap second (23:59:60) is parsed but not published; the next second is', () => {
    const midnight = Date.UTC(2026, 11, 31, 0, 0, 0) / 1000 + 86_400;
    const gps = sampler({ minFixes: 1 });
    expect(feed(gps, midnight - 1, [rmc(midnight - 1)])).toHaveLength(1);
    const leapLines = [rmc(midnight - 1, { second: '60' }), gga(midnight - 1, { second: '60' })];
    expect(feed(gps, midnight, leapLines)).toHaveLength(0);
    expect(gps.counts.get('leap-second')).toBeGreaterThan(0);
    expect(feed(gps, midnight + 1, [rmc(midnight)])).toHaveLength(1);
  });
});

describe('line splitter', () => {
  const stamp = (sec: number): Timespec => ({ sec, nsec: 0 });

  it('ends lines at \\r\\n, \\n or \\r, across chunks, stamped by the chunk that completed them', () => {
    const lines: [string, number][] = [];
    const splitter = new LineSplitter((line, receiveTime) => lines.push([line, receiveTime.sec]), () => undefined);
    splitter.push(Buffer.from('$A*00\r\n$B*0'), stamp(1), stamp(1));
    splitter.push(Buffer.from('0\n$C*00\r$D'), stamp(2), stamp(2));
    splitter.push(Buffer.from('*00\r\n'), stamp(3), stamp(3));
    expect(lines).toEqual([
      ['$A*00', 1],
      ['$B*00', 2],
      ['$C*00', 2],
      ['$D*00', 3],
    ]);
  });

  it('drops overlong lines whole and keeps working with a fixed buffer', () => {
    const lines: string[] = [];
    let overlong = 0;
    const splitter = new LineSplitter((line) => lines.push(line), () => (overlong += 1), 16);
    // 10 MB without a line end, in chunks: the buffer stays 16 bytes.
    for (let index = 0; index < 100; index += 1) splitter.push(Buffer.alloc(100_000, 0x41), stamp(1), stamp(1));
    splitter.push(Buffer.from('tail\n$OK*00\n0123456789abcdef\n0123456789abcdefX\n'), stamp(2), stamp(2));
    expect(lines).toEqual(['$OK*00', '0123456789abcdef']);
    expect(overlong).toBe(2);
  });
});
