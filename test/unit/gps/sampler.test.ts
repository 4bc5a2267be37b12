// The sampler's rules with made-up arrival times: which sentence is stamped, fix gating,
// dates (midnight, two-digit years, rollover, 1980), leap seconds, stale data.
import { describe, expect, it } from 'vitest';
import { datedTime, RELEASE_FLOOR } from '../../../src/sources/gps/date.js';
import type { ClockSync } from '../../../src/clock.js';
import { LineSplitter, printableLine } from '../../../src/sources/gps/lines.js';
import { NmeaSampler, type Notice, type SamplerOptions } from '../../../src/sources/gps/sampler.js';
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
    expect(samples[0]).toEqual({
      clockTime: { sec: T0, nsec: 0 },
      receiveTime: { sec: T0, nsec: 250_000_000 },
      precision: -1,
    });
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
    expect(gps.counts()['timing']).toBeGreaterThan(0);
  });

  it('time going backwards is a jump: not published, and the timeline goes on from where it was', () => {
    const gps = sampler({ minFixes: 1 });
    expect(feed(gps, T0, [rmc(T0)])).toHaveLength(1);
    expect(feed(gps, T0 + 1, [rmc(T0 - 5)])).toHaveLength(0);
    expect(gps.counts()['jump']).toBe(1);
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
    expect(datedTime({ day: 22, month: 8, year: 19, twoDigitYear: true }, tod, floor)?.sec).toBe(
      Date.UTC(2019, 7, 22, 0, 2, 31) / 1000,
    );
  });

  it('with the release floor, a 2007 date from a pre-2019-firmware receiver lands after the floor', () => {
    const reported = Date.UTC(2007, 3, 8, 12, 0, 0) / 1000;
    const time = datedTime(
      { day: 8, month: 4, year: 7, twoDigitYear: true },
      { hour: 12, minute: 0, second: 0, nsec: 0 },
    );
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
    expect(
      datedTime({ day: 6, month: 1, year: 1980, twoDigitYear: false }, { hour: 0, minute: 0, second: 0, nsec: 0 }),
    ).toBeNull();
  });

  it('a leap second (23:59:60) is parsed but not published; the next second is', () => {
    const midnight = Date.UTC(2026, 11, 31, 0, 0, 0) / 1000 + 86_400;
    const gps = sampler({ minFixes: 1 });
    expect(feed(gps, midnight - 1, [rmc(midnight - 1)])).toHaveLength(1);
    const leapLines = [rmc(midnight - 1, { second: '60' }), gga(midnight - 1, { second: '60' })];
    expect(feed(gps, midnight, leapLines)).toHaveLength(0);
    expect(gps.counts()['leap-second']).toBeGreaterThan(0);
    expect(feed(gps, midnight + 1, [rmc(midnight)])).toHaveLength(1);
  });
});

describe('line splitter', () => {
  const stamp = (sec: number): Timespec => ({ sec, nsec: 0 });

  it('ends lines at \\r\\n, \\n or \\r, across chunks, stamped by the chunk that completed them', () => {
    const lines: [string, number][] = [];
    const splitter = new LineSplitter(
      (line, receiveTime) => void lines.push([line, receiveTime.sec]),
      () => undefined,
    );
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

  it('leaves the lines after one that ends the turn for the next turn, in order, each with its stamp', async () => {
    const lines: [string, number][] = [];
    const splitter = new LineSplitter(
      (line, receiveTime) => {
        lines.push([line, receiveTime.sec]);
        return line === '$B*00';
      },
      () => undefined,
    );
    splitter.push(Buffer.from('$A*00\r\n$B*00\r\n$C*00\r\n$D'), stamp(1), stamp(1));
    splitter.push(Buffer.from('*00\r\n$B*00\n$E*00\n'), stamp(2), stamp(2));
    expect(lines).toEqual([
      ['$A*00', 1],
      ['$B*00', 1],
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.slice(2)).toEqual([
      ['$C*00', 1],
      ['$D*00', 2],
      ['$B*00', 2],
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.slice(5)).toEqual([['$E*00', 2]]);
    // A port closed or reopened drops what waits.
    splitter.push(Buffer.from('$B*00\n$F*00\n'), stamp(3), stamp(3));
    splitter.clear();
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.slice(6)).toEqual([['$B*00', 3]]);
  });

  it('drops overlong lines whole and keeps working with a fixed buffer', () => {
    const lines: string[] = [];
    let overlong = 0;
    const splitter = new LineSplitter(
      (line) => void lines.push(line),
      () => (overlong += 1),
      16,
    );
    // 10 MB without a line end, in chunks: the buffer stays 16 bytes.
    for (let index = 0; index < 100; index += 1) splitter.push(Buffer.alloc(100_000, 0x41), stamp(1), stamp(1));
    splitter.push(Buffer.from('tail\n$OK*00\n0123456789abcdef\n0123456789abcdefX\n'), stamp(2), stamp(2));
    expect(lines).toEqual(['$OK*00', '0123456789abcdef']);
    expect(overlong).toBe(2);
  });
});

describe('date jumps', () => {
  const SYNCHRONISED: ClockSync = { synchronised: true, maxError: 0.01, status: 0x1 };
  const UNSYNCHRONISED: ClockSync = { synchronised: false, maxError: 16, status: 0x41 };
  const YEAR_99_SHIFT = Date.UTC(1999, 10, 22) / 1000 + 2 * WEEKS_1024 - Date.UTC(2026, 10, 22) / 1000;

  /**
   * One second of a run: its RMC+GGA burst arrives 0.2 s after `arrival` on the raw clock; the local clock reads
   * arrival + localShift.
   */
  function run(gps: NmeaSampler, arrival: number, stated: number, localShift = 0, notices: Notice[] = []): number {
    let published = 0;
    for (const [index, line] of [rmc(stated), gga(stated)].entries()) {
      const raw = addSeconds({ sec: arrival, nsec: 0 }, 0.2 + index * 0.005);
      const result = gps.line(line, addSeconds(raw, localShift), raw);
      notices.push(...result.notices);
      if (result.sample !== null) {
        // Nothing published is ever off the receiver's true timeline by more than the latency.
        published += 1;
        expect(result.sample.clockTime.sec).toBe(stated);
      }
    }
    return published;
  }

  it('year-99 RMC (1999 moved to 2039) is never published; good fixes come back after --min-fixes', () => {
    const gps = sampler({ minFixes: 3, witness: () => SYNCHRONISED });
    const notices: Notice[] = [];
    let published = 0;
    for (let second = 0; second < 6; second += 1) published += run(gps, T0 + second, T0 + second, 0, notices);
    expect(published).toBe(4);
    // 30 s of consistent bad dates: a synchronised local clock that vouched for the old timeline contradicts them.
    for (let second = 6; second < 36; second += 1)
      expect(run(gps, T0 + second, T0 + second + YEAR_99_SHIFT, 0, notices)).toBe(0);
    const refused = notices.find((notice) => notice.event === 'fixes refused');
    expect(refused?.level).toBe('warn');
    expect(refused?.fields).toMatchObject({ why: 'jump', receiverTime: expect.stringMatching(/^2039-/) });
    expect(notices.filter((notice) => notice.event === 'fixes refused').length).toBeLessThanOrEqual(2);
    const back = [36, 37, 38, 39].map((second) => run(gps, T0 + second, T0 + second, 0, notices));
    expect(back).toEqual([0, 0, 1, 1]);
    expect(notices.at(-1)).toMatchObject({ event: 'fixes accepted again', level: 'info' });
    expect(gps.counts()['time-changed']).toBeUndefined();
  });

  it('without a synchronised local clock a burst shorter than --min-fixes is never published either', () => {
    const gps = sampler({ minFixes: 3, witness: () => UNSYNCHRONISED });
    for (let second = 0; second < 4; second += 1) run(gps, T0 + second, T0 + second);
    for (let second = 4; second < 6; second += 1) expect(run(gps, T0 + second, T0 + second + YEAR_99_SHIFT)).toBe(0);
    expect([6, 7, 8].map((second) => run(gps, T0 + second, T0 + second))).toEqual([0, 0, 1]);
  });

  it('a real change of receiver time (a day off before, the local clock agrees) wins after --min-fixes', () => {
    const gps = sampler({ minFixes: 3, witness: () => SYNCHRONISED });
    const notices: Notice[] = [];
    const DAY = 86_400;
    // The first fix is a day ahead of a synchronised local clock: warned, published after the run.
    expect([0, 1, 2].map((second) => run(gps, T0 + second, T0 + second + DAY, 0, notices))).toEqual([0, 0, 1]);
    expect(notices[0]).toMatchObject({ level: 'warn', event: 'first fix far from the synchronised local clock' });
    // The receiver corrects itself: three consistent fixes, the third is published.
    expect([3, 4, 5, 6].map((second) => run(gps, T0 + second, T0 + second, 0, notices))).toEqual([0, 0, 1, 1]);
    expect(notices.find((notice) => notice.event === 'receiver time changed')?.fields).toMatchObject({
      jumpSeconds: -DAY,
      fixes: 3,
    });
  });

  it('a change the synced local clock contradicts wins after 600 consistent fixes; a break restarts the run', () => {
    const gps = sampler({ minFixes: 3, witness: () => SYNCHRONISED });
    for (let second = 0; second < 3; second += 1) run(gps, T0 + second, T0 + second);
    const SHIFT = 3600;
    let published = 0;
    for (let second = 3; second < 300; second += 1) published += run(gps, T0 + second, T0 + second + SHIFT);
    // One fix back on the old timeline: the candidate run is gone.
    published += run(gps, T0 + 300, T0 + 300);
    for (let second = 301; second < 900; second += 1) published += run(gps, T0 + second, T0 + second + SHIFT);
    expect(published).toBe(0);
    expect(run(gps, T0 + 900, T0 + 900 + SHIFT)).toBe(1);
    expect(gps.counts()['time-changed']).toBe(1);
  });

  it('replayed data (an hour old, arriving in a flood) never builds a candidate run', () => {
    const gps = sampler({ minFixes: 3, witness: () => UNSYNCHRONISED });
    for (let second = 0; second < 4; second += 1) run(gps, T0 + second, T0 + second);
    const flood = [0, 1, 2, 3, 4, 5].flatMap((offset) => burst(T0 - 3600 + offset));
    expect(feed(gps, T0 + 4, flood)).toHaveLength(0);
    expect(gps.counts()['time-changed']).toBeUndefined();
    expect(gps.counts()['jump']).toBe(6);
  });

  it('a machine at 1970 (unsynchronised) is set by its receiver after --min-fixes, without warnings', () => {
    const gps = sampler({ minFixes: 3, witness: () => UNSYNCHRONISED });
    const notices: Notice[] = [];
    const toEpoch = -T0 + 86_400;
    expect([0, 1, 2, 3].map((second) => run(gps, T0 + second, T0 + second, toEpoch, notices))).toEqual([0, 0, 1, 1]);
    expect(notices).toEqual([]);
  });

  it('the witness is read only when fixes disagree, and a witness that throws counts as none', () => {
    let reads = 0;
    const gps = sampler({ minFixes: 1, witness: () => ((reads += 1), SYNCHRONISED) });
    for (let second = 0; second < 10; second += 1) run(gps, T0 + second, T0 + second);
    expect(reads).toBe(1);
    const failing = sampler({
      minFixes: 1,
      witness: () => {
        throw new Error('ntp_adjtime failed');
      },
    });
    expect([0, 1, 2].map((second) => run(failing, T0 + second, T0 + second + 7200))).toEqual([1, 1, 1]);
  });

  it('a time 1 s off the raw monotonic pace is tolerated; 2 s is a jump', () => {
    const gps = sampler({ minFixes: 1 });
    run(gps, T0, T0);
    expect(run(gps, T0 + 10, T0 + 11)).toBe(1);
    expect(run(gps, T0 + 20, T0 + 23)).toBe(0);
    expect(gps.counts()['jump']).toBe(1);
  });

  it('good fixes with an unusable date: a warning after 5 s naming the reason, then once a minute', () => {
    const gps = sampler({ minFixes: 1 });
    const notices: Notice[] = [];
    for (let second = 0; second < 70; second += 1) {
      const at: Timespec = { sec: T0 + second, nsec: 200_000_000 };
      notices.push(...gps.line(zda(Date.UTC(2150, 0, 1) / 1000 + second), at, at).notices);
      notices.push(...gps.line(rmc(Date.UTC(2150, 0, 1) / 1000 + second), at, at).notices);
    }
    const refused = notices.filter((notice) => notice.event === 'fixes refused');
    expect(refused.map((notice) => notice.fields['seconds'])).toEqual([5, 65]);
    expect(refused[0]?.fields).toMatchObject({ why: 'bogus-date', 'bogus-date': 6 });
  });

  it('a ZDA dated 2150 (past the window of one rollover period after the floor) is refused', () => {
    const gps = sampler({ minFixes: 1 });
    const at: Timespec = { sec: T0, nsec: 200_000_000 };
    expect(gps.line(zda(Date.UTC(2150, 0, 1) / 1000), at, at).skip).toBe('bogus-date');
    expect(
      datedTime({ day: 1, month: 1, year: 2046, twoDigitYear: false }, { hour: 0, minute: 0, second: 0, nsec: 0 }),
    ).not.toBeNull();
    expect(
      datedTime({ day: 1, month: 1, year: 2047, twoDigitYear: false }, { hour: 0, minute: 0, second: 0, nsec: 0 }),
    ).toBeNull();
  });
});

describe('log text of received lines', () => {
  it('escapes control characters, bytes above 0x7e and the backslash', () => {
    expect(printableLine('$GPRMC,\x1b[2J\x9b31m\\x,\x00\x7f\xff')).toBe('$GPRMC,\\x1b[2J\\x9b31m\\\\x,\\x00\\x7f\\xff');
    expect(printableLine('$GPGGA,123519,4807.038,N*47')).toBe('$GPGGA,123519,4807.038,N*47');
  });
});
