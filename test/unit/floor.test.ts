// The floor: max(build stamp, last-good time), and when the feeder saves the last-good time.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realtime, type ClockSync } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { buildTime, BUILD_TIME_FILE, clockFloor, clockFilePath, DEFAULT_CLOCK_FILE, LastGoodClock, SAVE_INTERVAL, saveLastGoodTime } from '../../src/floor.js';
import { addSeconds, toSeconds } from '../../src/time.js';

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
    saveLastGoodTime(path, later);
    expect(clockFloor(path)).toEqual({ seconds: later, source: `the last-good time in ${path}` });
    expect(readFileSync(path, 'utf8')).toBe(`${new Date(later * 1000).toISOString()}\n`);
    saveLastGoodTime(path, (buildTime() ?? 0) - 1000);
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

  it('saves a sample that agrees with a synchronised kernel clock, the earlier of the two times', () => {
    const path = join(dir, 'saved');
    const saver = new LastGoodClock(path, createLogger({ level: 'error' }), () => SYNCHRONISED);
    const offered = sample(-0.01);
    saver.offer(offered);
    expect(mtime(path)).toBeCloseTo(toSeconds(offered.clockTime), 2);
  });

  it('saves nothing while the kernel says unsynchronised, or when the sample disagrees with the clock', () => {
    const unsynchronised = join(dir, 'unsynchronised');
    new LastGoodClock(unsynchronised, createLogger({ level: 'error' }), () => UNSYNCHRONISED).offer(sample(0));
    expect(() => statSync(unsynchronised)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    const disagreeing = join(dir, 'disagreeing');
    new LastGoodClock(disagreeing, createLogger({ level: 'error' }), () => SYNCHRONISED).offer(sample(30 * 86_400));
    expect(() => statSync(disagreeing)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it(`saves at most once per ${SAVE_INTERVAL} s, and warns once when the file cannot be written`, () => {
    const path = join(dir, 'often');
    const saver = new LastGoodClock(path, createLogger({ level: 'error' }), () => SYNCHRONISED);
    saver.offer(sample(0));
    const first = mtime(path);
    saver.offer(sample(0.001));
    expect(mtime(path)).toBe(first);
    const lines: string[] = [];
    // A directory where the file should be: EISDIR.
    const missing = new LastGoodClock(dir, createLogger({ level: 'warn', write: (line) => lines.push(line) }), () => SYNCHRONISED);
    missing.offer(sample(0));
    missing.offer({ ...sample(0), receiveTime: addSeconds(realtime(), SAVE_INTERVAL + 1) });
    expect(lines.filter((line) => /last-good time not saved/.test(line))).toHaveLength(1);
  });
});
