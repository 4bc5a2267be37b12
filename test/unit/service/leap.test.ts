// leap-seconds.list: parsing, TAI - UTC, the leap indicator during the last UTC day before
// a leap second, expiry and the #h hash, with fixture files and fake clocks; and the
// feeder applying it to samples, and htntp status's TAI line.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { leapAt, leapStatus, loadLeapSeconds, parseLeapSeconds, LeapSchedule } from '../../../src/leap.js';
import { loadLeapSchedule } from '../../../src/cli/service.js';
import { formatStatus, readStatus } from '../../../src/status.js';
import { feed } from '../../../src/feeder.js';
import { NtpdShm, type Leap } from '../../../src/shm.js';
import type { Sample, SampleSource } from '../../../src/sample.js';
import type { Clock } from '../../../src/clock.js';
import { readSegment, removeSegment } from '../../helpers/segments.js';
import { memoryLogger } from '../../helpers/log-capture.js';
import { units } from '../../helpers/units.js';

const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const REAL = fixture('leap-seconds.list'); // a copy of tzdata's file (expires 2026-06-28)
const FUTURE = fixture('leap-seconds-future.list'); // + fictional leaps: +1 end of 2027-06-30, -1 end of 2028-12-31

const at = (iso: string): { sec: number; nsec: number } => ({ sec: Date.parse(iso) / 1000, nsec: 0 });
const fakeClock = (iso: string): Clock => ({ realtime: () => at(iso), monotonicRaw: () => ({ sec: 1000, nsec: 0 }) });

describe('parseLeapSeconds', () => {
  it('reads the entries, the #$ update and #@ expiry lines, and checks the #h hash', () => {
    const table = loadLeapSeconds(REAL);
    expect(table.entries).toHaveLength(28);
    expect(table.entries[0]).toEqual({ time: Date.parse('1972-01-01T00:00:00Z') / 1000, taiOffset: 10 });
    expect(table.entries.at(-1)).toEqual({ time: Date.parse('2017-01-01T00:00:00Z') / 1000, taiOffset: 37 });
    expect(new Date((table.expires ?? 0) * 1000).toISOString()).toBe('2026-06-28T00:00:00.000Z');
    expect(new Date((table.updated ?? 0) * 1000).toISOString()).toBe('2025-07-07T00:00:00.000Z');
    expect(table.hashValid).toBe(true);
  });

  it('flags a file whose data no longer matches its hash', () => {
    const edited = readFileSync(REAL, 'utf8').replace(/^3692217600\s+37/m, '3692217600 38');
    expect(parseLeapSeconds(edited).hashValid).toBe(false);
  });

  it('rejects malformed data lines, disorder and an empty table', () => {
    const invalid = (text: string): unknown => {
      try {
        parseLeapSeconds(text);
      } catch (error) {
        return (error as NodeJS.ErrnoException).code;
      }
      return 'parsed';
    };
    expect(invalid('2272060800 ten\n')).toBe('ERR_LEAPFILE_INVALID');
    expect(invalid('2287785600 11\n2272060800 10\n')).toBe('ERR_LEAPFILE_INVALID');
    expect(invalid('2272060801 10\n')).toBe('ERR_LEAPFILE_INVALID');
    expect(invalid('# only comments\n')).toBe('ERR_LEAPFILE_INVALID');
    expect(invalid('2272060800 10 # 1 Jan 1972\r\n2287785600 11\r\n')).toBe('parsed');
  });
});

describe('leapAt / leapStatus', () => {
  const table = loadLeapSeconds(REAL);

  it('gives TAI - UTC before and after a leap second and raises 1 for the whole last day before it', () => {
    expect(leapAt(table, at('2016-12-30T23:59:59Z'))).toMatchObject({ taiOffset: 36, leap: 0 });
    expect(leapAt(table, at('2016-12-31T00:00:00Z'))).toMatchObject({
      taiOffset: 36,
      leap: 1,
      next: { step: 1, taiOffset: 37 },
    });
    expect(leapAt(table, at('2016-12-31T23:59:59Z'))).toMatchObject({ taiOffset: 36, leap: 1 });
    const after = leapAt(table, at('2017-01-01T00:00:00Z'));
    expect(after).toMatchObject({ taiOffset: 37, leap: 0 });
    expect(after.next).toBeUndefined();
    expect(leapAt(table, at('1971-06-01T00:00:00Z'))).toMatchObject({ taiOffset: 0, leap: 0 });
    expect(leapAt(table, at('1972-01-01T00:00:00Z')).taiOffset).toBe(10);
  });

  it('says when the file has expired', () => {
    expect(leapAt(table, at('2026-06-27T23:59:59Z')).expired).toBe(false);
    expect(leapAt(table, at('2026-06-28T00:00:00Z')).expired).toBe(true);
  });

  it('leapStatus(file, now): a pending insertion (1) and a pending deletion (2) in a fixture, on a fake clock', () => {
    const insert = leapStatus(FUTURE, at('2027-06-30T12:00:00Z'));
    expect(insert).toMatchObject({ file: FUTURE, taiOffset: 37, leap: 1, expired: false, hashValid: true });
    expect(new Date((insert.next?.time ?? 0) * 1000).toISOString()).toBe('2027-07-01T00:00:00.000Z');
    expect(leapStatus(FUTURE, at('2027-06-29T23:59:59Z'))).toMatchObject({ leap: 0, next: { step: 1 } });
    expect(leapStatus(FUTURE, at('2028-12-31T00:00:01Z'))).toMatchObject({
      taiOffset: 38,
      leap: 2,
      next: { step: -1, taiOffset: 37 },
    });
    expect(leapStatus(FUTURE, at('2029-01-01T00:00:00Z'))).toMatchObject({ taiOffset: 37, leap: 0 });
  });
});

describe('LeapSchedule and loadLeapSchedule', () => {
  it('logs a pending leap second once and an expired file once', () => {
    const log = memoryLogger();
    const schedule = new LeapSchedule(loadLeapSeconds(FUTURE), log.logger);
    expect(schedule.leapAt(at('2027-06-30T00:00:00Z'))).toBe(1);
    expect(schedule.leapAt(at('2027-06-30T00:00:01Z'))).toBe(1);
    expect(schedule.leapAt(at('2029-07-01T00:00:00Z'))).toBe(0);
    schedule.leapAt(at('2029-07-02T00:00:00Z'));
    expect(log.events()).toEqual(['info leap second pending', 'warn leap file expired']);
  });

  it('a file given by name must load; the system default is only warned about', () => {
    const log = memoryLogger();
    expect(() => loadLeapSchedule('/nonexistent/leap-seconds.list', log.logger)).toThrow(/ENOENT/);
    const edited = fixture('leap-seconds.list');
    expect(loadLeapSchedule(edited, log.logger, fakeClock('2026-07-01T00:00:00Z'))).toBeInstanceOf(LeapSchedule);
    expect(log.events()).toEqual(['info leap file loaded', 'warn leap file expired']);
    expect(loadLeapSchedule(false, log.logger)).toBeUndefined();
  });
});

describe('the feeder applies the schedule', () => {
  afterEach(() => [units.leapApplied, units.leapEarlier].forEach(removeSegment));

  function sourceOf(samples: Sample[]): SampleSource {
    return {
      name: 'list',
      async *samples() {
        yield* samples;
      },
    };
  }

  async function leapsPublished(unit: number, samples: Sample[]): Promise<Leap[]> {
    const seen: Leap[] = [];
    const controller = new AbortController();
    const watcher = new NtpdShm({ unit });
    await feed(sourceOf(samples), {
      unit,
      signal: controller.signal,
      leapSchedule: new LeapSchedule(loadLeapSeconds(FUTURE)),
      onSample: () => seen.push(watcher.leap as Leap),
    });
    watcher.detach();
    return seen;
  }

  it("sets leap 1 in the last day before the leap second, keeps a source's leap 3, and 0 otherwise", async () => {
    const sample = (iso: string, leap?: Leap): Sample => ({
      clockTime: at(iso),
      receiveTime: at(iso),
      precision: -10,
      ...(leap === undefined ? {} : { leap }),
    });
    const leaps = await leapsPublished(units.leapApplied, [
      sample('2027-06-29T23:59:59Z'),
      sample('2027-06-30T00:00:00Z'),
      sample('2027-06-30T23:59:59Z', 0),
      sample('2027-06-30T12:00:00Z', 3),
      sample('2027-07-01T00:00:00Z'),
      sample('2028-12-31T06:00:00Z'),
    ]);
    expect(leaps).toEqual([0, 1, 1, 3, 0, 2]);
  });

  it('writes "not in sync" (valid 0, leap 3) at attach, before the first sample', async () => {
    const controller = new AbortController();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const stuckUntilReleased: SampleSource = {
      name: 'gate',
      // Ends without a sample once released.
      // eslint-disable-next-line require-yield -- the generator is the SampleSource shape
      async *samples() {
        await gate;
      },
    };
    // A segment left with a valid sample by an earlier writer.
    const earlier = new NtpdShm({ unit: units.leapEarlier });
    earlier.update(at('2026-01-01T00:00:00Z'), { receiveTime: at('2026-01-01T00:00:00Z'), leap: 0 });
    expect(earlier.valid).toBe(1);
    const running = feed(stuckUntilReleased, { unit: units.leapEarlier, signal: controller.signal });
    expect(readSegment(units.leapEarlier)).toMatchObject({ valid: 0, leap: 3 });
    release();
    await running;
    earlier.detach();
  });
});

describe('htntp status: TAI and the pending leap second ', () => {
  afterEach(() => removeSegment(units.leapStatus));

  it('shows the sample clock time as TAI, TAI - UTC and a pending insertion from the fixture, in text and json', () => {
    const shm = new NtpdShm({ unit: units.leapStatus });
    shm.update(at('2027-06-30T12:00:00Z'), { receiveTime: at('2027-06-30T12:00:01Z'), leap: 1 });
    shm.detach();
    const result = readStatus({
      units: [units.leapStatus],
      leapfile: FUTURE,
      clock: fakeClock('2027-06-30T12:00:02Z'),
    });
    const [status] = result.units;
    expect(status !== undefined && 'tai' in status ? status.tai : undefined).toEqual({
      file: FUTURE,
      taiOffset: 37,
      tai: '2027-06-30T12:00:37.000000000 TAI',
      leapPending: 1,
      nextLeap: '2027-07-01T00:00:00.000Z',
      expires: '2029-06-28T00:00:00.000Z',
      expired: false,
    });
    expect(formatStatus(result)).toContain(
      '  TAI      2027-06-30T12:00:37.000000000 TAI (TAI-UTC 37 s; leap second pending: inserted before ' +
        '2027-07-01T00:00:00.000Z)',
    );
    const expired = readStatus({ units: [units.leapStatus], leapfile: REAL });
    expect(formatStatus(expired)).toMatch(
      /TAI-UTC 37 s; no leap second pending; .*leap-seconds\.list EXPIRED 2026-06-28T00:00:00\.000Z\)/,
    );
    expect(readStatus({ units: [units.leapStatus] }).units[0]).not.toHaveProperty('tai');
  });
});
