// The earliest time that can be true: max(the package's build time, the last-good time
// the feeder saves), as systemd-timesyncd keeps its clock file. A time before it is never
// published, and a local clock reading before it is known to be wrong. The build time is
// stamped by `npm run build` (scripts/stamp-build.ts: SOURCE_DATE_EPOCH if set, else the
// build's clock) into dist/build-time.json. The last-good time is the mtime of the clock
// file (default /var/lib/htntp/clock, HTNTP_CLOCK_FILE, or an option); an operator resets
// it by deleting the file (with the feeder stopped), or moves it with `touch -d`.
import { closeSync, ftruncateSync, futimesSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clockSync, type ClockSync } from './clock.js';
import type { Logger } from './log.js';
import type { Sample } from './sample.js';
import { diffSeconds, formatUtc, fromSeconds, toSeconds } from './time.js';

export const DEFAULT_CLOCK_FILE = '/var/lib/htntp/clock';

/** Where the package keeps dist/: one folder up from src/ or dist/. */
const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));

export const BUILD_TIME_FILE = join(packageRoot, 'dist', 'build-time.json');

/** The clock file to read and save: `option` (null: none), else HTNTP_CLOCK_FILE, else the default. */
export function clockFilePath(option?: string | null): string | null {
  if (option !== undefined) return option;
  return process.env.HTNTP_CLOCK_FILE || DEFAULT_CLOCK_FILE;
}

/** The build time stamped into dist/build-time.json, seconds since the epoch (undefined: not stamped). */
export function buildTime(): number | undefined {
  try {
    const stamp = JSON.parse(readFileSync(BUILD_TIME_FILE, 'utf8')) as { builtAt?: unknown };
    const seconds = typeof stamp.builtAt === 'string' ? Date.parse(stamp.builtAt) / 1000 : NaN;
    return Number.isFinite(seconds) ? seconds : undefined;
  } catch {
    return undefined;
  }
}

/** The last-good time saved in `path` (its mtime), or undefined when there is none. */
export function lastGoodTime(path: string | null): number | undefined {
  if (path === null) return undefined;
  try {
    return statSync(path).mtimeMs / 1000;
  } catch {
    return undefined;
  }
}

export interface ClockFloor {
  /** Seconds since the epoch (0: nothing known). */
  seconds: number;
  /** Where it comes from, for logs and reasons. */
  source: string;
}

/** max(build time, last-good time in `clockFile`). */
export function clockFloor(clockFile: string | null): ClockFloor {
  const built = buildTime();
  const saved = lastGoodTime(clockFile);
  if (saved !== undefined && (built === undefined || saved > built)) {
    return { seconds: saved, source: `the last-good time in ${clockFile ?? ''}` };
  }
  if (built !== undefined) return { seconds: built, source: 'the package build time' };
  return { seconds: 0, source: 'nothing (no build stamp, no clock file)' };
}

export const describeFloor = (floor: ClockFloor): string =>
  `${formatUtc(fromSeconds(Math.floor(floor.seconds)))} (${floor.source})`;

/** Saves at most this often, seconds (the floor need not be recent; a disk need not be worn). */
export const SAVE_INTERVAL = 600;

/**
 * The feeder's side of the clock file: a published sample is saved as the last-good time
 * only when two witnesses agree, the kernel saying a daemon keeps the clock synchronised and
 * the sample agreeing with that clock within their bounds. The file is opened before the
 * feeder drops its privileges (open()) and written through that descriptor: a write sets
 * its mtime to the (synchronised) local clock.
 */
export class LastGoodClock {
  #fd: number | undefined;
  #lastSaved = -Infinity;
  #warned = false;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly kernel: () => ClockSync = clockSync,
  ) {}

  /** Opens (or creates, with an mtime of 0: no floor yet) the file; without its directory nothing is saved. */
  open(): void {
    try {
      this.#fd = openSync(this.path, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return this.#failed(error);
      try {
        this.#fd = openSync(this.path, 'wx', 0o644);
        // Created at a local clock not yet known to be right: that time is no floor.
        futimesSync(this.#fd, 0, 0);
      } catch (creating) {
        this.#failed(creating);
      }
    }
  }

  offer(sample: Sample): void {
    const local = toSeconds(sample.receiveTime);
    if (this.#fd === undefined || (local - this.#lastSaved < SAVE_INTERVAL && local >= this.#lastSaved)) return;
    let kernel: ClockSync;
    try {
      kernel = this.kernel();
    } catch {
      return;
    }
    const offset = diffSeconds(sample.clockTime, sample.receiveTime);
    if (!kernel.synchronised || Math.abs(offset) > kernel.maxError + 2 ** sample.precision) return;
    try {
      const text = `${new Date(local * 1000).toISOString()}\n`;
      ftruncateSync(this.#fd, 0);
      writeSync(this.#fd, text, 0);
      this.#lastSaved = local;
      this.logger.debug('last-good time saved', { path: this.path });
    } catch (error) {
      this.#failed(error);
    }
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #failed(error: unknown): void {
    // No state directory (a run outside its service unit) is normal; anything else is worth a word, once.
    const context = { path: this.path, error };
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.logger.debug('last-good time not saved', context);
    else if (!this.#warned) this.logger.warn('last-good time not saved', context);
    this.#warned = true;
  }
}
