// The floor: max(build stamp, last-good time), and when the feeder saves the last-good time.
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realtime, type ClockSync } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import {
  buildTime,
  BUILD_TIME_FILE,
  clockFloor,
  clockFilePath,
  DEFAULT_CLOCK_FILE,
  LastGoodClock,
  SAVE_INTERVAL,
} from '../../src/floor.js';
import { addSeconds, toSeconds } from '../../src/time.js';

const setClockFile = (path: string, seconds: number): void => {
  writeFileSync(path, '');
  utimesSync(path, seconds, seconds);
};

const dir = mkdtempSync(join(tmpdir(), 'htntp-floor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SYNCHRONISED: ClockSync = { synchronised: true, maxError: 0.05, status: 0x1 };
const UNSYNCHRONISED: ClockSync = { synchronised: false, maxError: 16, status: 0x41 };
const mtime = (path: string): number => statSync(path).mtimeMs / 1000;

describe('the floor', () => {
  it('is the build stamp written at build time, with no clock file', () => {
    const stamp = JSON.parse(readFileSync(BUILD_TIME_FILE, 'utf8')) as { builtAt: string };
    expect(buildTime()).toBe(Date.parse(stamp.builtAt) / 1000);
    // Stamped by the build, not now: at or before this test's start.
    expect(buildTime()).toBeLessThanOrEqual(realtime().sec);
    expect(clockFloor(join(dir, 'absent'))).toEqual({ seconds: buildTime(), source: 'the package build time' });
  });

  it('is the last-good time when that is later, and the build time when it is earlier', () => {
    const path = join(dir, 'clock');
    const later = (buildTime() ?? 0) + 1000;
    setClockFile(path, later);
    expect(clockFloor(path)).toEqual({ seconds: later, source: `the last-good time in ${path}` });
    setClockFile(path, (buildTime() ?? 0) - 1000);
    expect(clockFloor(path).source).toBe('the package build time');
  });

  it('reads its file from the option, else HTNTP_CLOCK_FILE, else /var/lib/htntp/clock', () => {
    const saved = process.env.HTNTP_CLOCK_FILE;
    try {
      delete process.env.HTNTP_CLOCK_FILE;
      expect(clockFilePath()).toBe(DEFAULT_CLOCK_FILE);
      process.env.HTNTP_CLOCK_FILE = join(dir, 'env-clock');
      expect(clockFilePath()).toBe(join(dir, 'env-clock'));
      expect(clockFilePath(null)).toBeNull();
      expect(clockFilePath('/x/clock')).toBe('/x/clock');
    } finally {
      if (saved === undefined) delete process.env.HTNTP_CLOCK_FILE;
      else process.env.HTNTP_CLOCK_FILE = saved;
    }
  });
});

describe('LastGoodClock', () => {
  const sample = (offset: number, precision = -10) => {
    const receiveTime = realtime();
    return { receiveTime, clockTime: addSeconds(receiveTime, offset), precision };
  };
  const quiet = createLogger({ level: 'error' });

  it('creates its file with no floor, then saves a sample that agrees with a synchronised kernel clock', () => {
    const path = join(dir, 'saved');
    const saver = new LastGoodClock(path, quiet, () => SYNCHRONISED);
    saver.open();
    expect(mtime(path)).toBe(0);
    const offered = sample(-0.01);
    saver.offer(offered);
    saver.close();
    // Written now: the mtime is the local clock's, which the sample and the kernel vouch for.
    expect(Math.abs(mtime(path) - toSeconds(offered.receiveTime))).toBeLessThan(1);
    expect(readFileSync(path, 'utf8')).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z\n$/);
  });

  it('saves nothing while the kernel says unsynchronised, or when the sample disagrees with the clock', () => {
    for (const [name, kernel, offset] of [
      ['unsynchronised', UNSYNCHRONISED, 0],
      ['disagreeing', SYNCHRONISED, 30 * 86_400],
    ] as const) {
      const path = join(dir, name);
      const saver = new LastGoodClock(path, quiet, () => kernel);
      saver.open();
      saver.offer(sample(offset));
      saver.close();
      expect(mtime(path)).toBe(0);
    }
  });

  it(`saves at most once per ${SAVE_INTERVAL} s, and says once why it cannot save`, () => {
    const path = join(dir, 'often');
    setClockFile(path, 1000);
    const saver = new LastGoodClock(path, quiet, () => SYNCHRONISED);
    saver.open();
    saver.offer(sample(0));
    const first = mtime(path);
    expect(first).toBeGreaterThan(1000);
    setClockFile(path, 1000);
    saver.offer(sample(0.001));
    expect(mtime(path)).toBe(1000);
    saver.close();
    const lines: string[] = [];
    // A directory where the file should be: EISDIR.
    const failing = new LastGoodClock(
      dir,
      createLogger({ level: 'warn', write: (line) => lines.push(line) }),
      () => SYNCHRONISED,
    );
    failing.open();
    failing.offer(sample(0));
    expect(lines.filter((line) => /last-good time not saved/.test(line))).toHaveLength(1);
    // No directory at all: nothing said above debug.
    const absent = new LastGoodClock(
      join(dir, 'no-such-dir', 'clock'),
      createLogger({ level: 'info', write: (line) => lines.push(line) }),
      () => SYNCHRONISED,
    );
    absent.open();
    absent.offer(sample(0));
    expect(lines).toHaveLength(1);
  });
});
