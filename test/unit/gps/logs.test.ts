// The parser and sampler against every real receiver log (copies of ../shared/nmea): the times
// gpsd decoded (the .chk TPV "time" values) are the expected ones.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NmeaSampler } from '../../../src/sources/gps/sampler.js';
import { formatUtc, type Timespec } from '../../../src/time.js';
import { repoRoot } from '../../helpers/process.js';
import { e2eRequired } from '../../helpers/tools.js';

// Copies of the originals in ../shared/nmea beside the clone, so the tests run anywhere.
const LOG_DIR = process.env.HTNTP_NMEA_LOGS ?? join(import.meta.dirname, 'fixtures');
const SHARED_DIR = process.env.HTNTP_SHARED_NMEA ?? join(mainCheckout(repoRoot), '..', 'shared', 'nmea');

/** The main checkout of a git worktree (its `.git` file names `<main>/.git/worktrees/<name>`), else `root`. */
function mainCheckout(root: string): string {
  try {
    const gitdir = /^gitdir: (.+)$/m.exec(readFileSync(join(root, '.git'), 'utf8'))?.[1]?.trim();
    const match = gitdir === undefined ? null : /^(.*)\/\.git\/worktrees\/[^/]+$/.exec(gitdir);
    return match?.[1] ?? root;
  } catch {
    return root; // .git is a directory (a clone) or absent (an unpacked tarball)
  }
}
const logs = readdirSync(LOG_DIR)
  .filter((name) => name.endsWith('.log'))
  .sort();

// Rollover floor per log: a day before the capture and less than 1024 weeks before it
// (dates after that window are refused), except for the log that is about the rollover
// (its capture date, from its header, is the floor that exposes 1999).
const OLD_FLOOR: Timespec = { sec: Date.UTC(2000, 0, 1) / 1000, nsec: 0 };
const RECENT_FLOOR: Timespec = { sec: Date.UTC(2020, 0, 1) / 1000, nsec: 0 };
const floors: Record<string, Timespec> = {
  'april6_2019.log': { sec: Date.UTC(2019, 2, 14) / 1000, nsec: 0 },
  'meinberg-gps164.log': RECENT_FLOOR,
  'quectel-L70.log': RECENT_FLOOR,
};
// 1024 weeks, written out here rather than imported: the expectation must not share code.
const ROLLOVER = 1024 * 7 * 86_400;

function millis(time: Timespec): string {
  return formatUtc({ sec: time.sec, nsec: Math.floor(time.nsec / 1e6) * 1e6 }).replace(/(\.\d{3})\d{6}Z$/, '$1Z');
}

/** gpsd's TPV times of the log, moved forward past the floor the way a receiver's date must be. */
function expectedTimes(name: string, floor: Timespec): Map<string, number> {
  const times = new Map<string, number>();
  for (const line of readFileSync(join(LOG_DIR, `${name}.chk`), 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const object = JSON.parse(line) as { class?: string; time?: string; mode?: number };
    if (object.class !== 'TPV' || object.time === undefined) continue;
    let ms = Date.parse(object.time);
    while (ms / 1000 < floor.sec) ms += ROLLOVER * 1000;
    const key = new Date(ms).toISOString();
    times.set(key, Math.max(object.mode ?? 0, times.get(key) ?? 0));
  }
  return times;
}

/** hhmmss of a raw line (any time field position), for simulated arrival times. */
function secondsOfDay(line: string): number | undefined {
  const fields = line.split(',');
  const type = fields[0]?.slice(3);
  const field = type === 'GLL' ? fields[5] : ['RMC', 'GGA', 'ZDA', 'GNS'].includes(type ?? '') ? fields[1] : undefined;
  const match = /^(\d\d)(\d\d)(\d\d)/.exec(field ?? '');
  return match ? Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]) : undefined;
}

function replay(name: string) {
  const sampler = new NmeaSampler({ minFixes: 1, offset: 0, precision: -1, floor: floors[name] ?? OLD_FLOOR });
  const decoded = new Set<string>();
  const published: Timespec[] = [];
  // Arrival as a live receiver would give it: 0.3 s after the second its sentences carry.
  let arrival = 0;
  let lastOfDay = -1;
  let days = 0;
  const lines = readFileSync(join(LOG_DIR, name), 'latin1')
    .split(/\r\n|\n|\r/)
    .filter((line) => line !== '' && !line.startsWith('#'));
  for (const [index, line] of lines.entries()) {
    const ofDay = secondsOfDay(line);
    if (ofDay !== undefined) {
      if (ofDay < lastOfDay - 43_200) days += 1;
      lastOfDay = ofDay;
      arrival = days * 86_400 + ofDay;
    }
    const result = sampler.line(line, { sec: 1_000_000 + index, nsec: 0 }, { sec: arrival, nsec: 300_000_000 });
    if (result.time !== null) decoded.add(millis(result.time));
    if (result.sample !== null) published.push(result.sample.clockTime);
  }
  return { sampler, decoded, published, lines };
}

describe('real receiver logs', () => {
  it('finds the logs', () => {
    expect(logs.length).toBeGreaterThanOrEqual(8);
  });

  it('has unchanged copies of every original log in ../shared/nmea', (context) => {
    if (!existsSync(SHARED_DIR)) {
      const reason = `${SHARED_DIR} is missing: the originals the fixtures copy must lie beside the clone`;
      if (e2eRequired) throw new Error(`HTNTP_E2E=required: ${reason}`);
      process.stderr.write(`[htntp] skipping "${context.task.name}": ${reason}\n`);
      context.skip(reason);
    }
    const shared = readdirSync(SHARED_DIR).filter((name) => name.endsWith('.log') || name.endsWith('.log.chk'));
    expect(shared.length).toBeGreaterThanOrEqual(16);
    for (const name of shared)
      expect(readFileSync(join(LOG_DIR, name)).equals(readFileSync(join(SHARED_DIR, name))), name).toBe(true);
  });

  for (const name of logs) {
    describe(name, () => {
      const floor = floors[name] ?? OLD_FLOOR;
      const expected = expectedTimes(name, floor);
      const { sampler, decoded, published, lines } = replay(name);

      it('decodes every time gpsd decoded', () => {
        expect(expected.size).toBeGreaterThan(0);
        const missing = [...expected.keys()].filter((time) => !decoded.has(time));
        expect(missing).toEqual([]);
      });

      it('publishes every second gpsd had a fix for, at most once, in order', () => {
        const publishedKeys = published.map(millis);
        const fixed = [...expected.entries()].filter(([, mode]) => mode >= 2).map(([time]) => time);
        expect(fixed.filter((time) => !publishedKeys.includes(time))).toEqual([]);
        for (let index = 1; index < published.length; index += 1) {
          expect(published[index]!.sec).toBeGreaterThan(published[index - 1]!.sec);
        }
      });

      it('publishes only seconds that a valid fix sentence of the log states', () => {
        // Independent of the parser: a regex over the raw lines for A / quality>0 fixes.
        const validSeconds = new Set<string>();
        for (const line of lines) {
          const fields = line.split(',');
          const type = fields[0]?.slice(3);
          const valid =
            (type === 'RMC' && fields[2] === 'A') ||
            (type === 'GGA' && Number(fields[6]) > 0) ||
            (type === 'GLL' && fields[6]?.startsWith('A'));
          const ofDay = secondsOfDay(line);
          if (valid && ofDay !== undefined) validSeconds.add(String(ofDay));
        }
        for (const time of published) expect(validSeconds.has(String(time.sec % 86_400))).toBe(true);
      });

      it('counts every line and never throws', () => {
        expect(sampler.counts()['lines']).toBe(lines.length);
      });
    });
  }

  it('moves the 2019 Telit rollover date (1999-08-22) forward 1024 weeks', () => {
    const { sampler, published } = replay('april6_2019.log');
    expect(published.map(millis)).toEqual(['2019-04-07T00:02:31.420Z']);
    // The `2208-1` date just before it is refused, not guessed.
    expect(sampler.counts()['bogus-date']).toBe(1);
  });

  it('publishes nothing from the MTK cold start (V and 1980 dates)', () => {
    const { sampler, published } = replay('mtk-3301.log');
    expect(sampler.counts()['invalid-fix']).toBeGreaterThan(0);
    // The first fix (GGA quality 1, RMC A) is the first sample; nothing from 1980.
    expect(millis(published[0]!)).toBe('2008-08-23T08:14:36.000Z');
    expect(published.every((time) => time.sec >= Date.UTC(2008, 7, 23) / 1000)).toBe(true);
  });
});
