// A pseudo-terminal pair from socat (write to `writerPath`, the feeder opens `devicePath`)
// and a writer paced in real time like a receiver: a burst `latency` s after each second.
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { realtime } from '../../../src/clock.js';
import { diffSeconds, type Timespec } from '../../../src/time.js';
import { startProcess, type RunningProcess } from '../process.js';
import { findTool } from '../tools.js';

export interface PtyPair {
  writerPath: string;
  devicePath: string;
  process: RunningProcess;
  /** CLOCK_REALTIME when socat said both ptys exist. */
  readyAt: Timespec;
  stop(): Promise<void>;
}

/** socat's two ptys, linked as `dir`/writer and `dir`/device; resolves once socat printed both "PTY is" lines. */
export async function startPtyPair(socat: string, dir: string): Promise<PtyPair> {
  const writerPath = join(dir, 'writer');
  const devicePath = join(dir, 'device');
  const process = startProcess(socat, [
    '-d',
    '-d',
    `pty,raw,echo=0,link=${writerPath}`,
    `pty,raw,echo=0,link=${devicePath}`,
  ]);
  // Both "N PTY is /dev/pts/N" lines come before this one.
  await process.waitForLine(/starting data transfer loop/, { stream: 'stderr' });
  const ptys = process.stderrLines.filter((line) => / N PTY is /.test(line));
  if (ptys.length !== 2) throw new Error(`socat reported ${ptys.length} ptys\n${process.output()}`);
  return {
    writerPath,
    devicePath,
    process,
    readyAt: realtime(),
    stop: async () => void (await process.stop('SIGTERM', 2_000)),
  };
}

/** A pair in `parent`/`name` (made if missing), with the socat the e2e tools found. */
export async function startPtyPairIn(parent: string, name: string): Promise<PtyPair> {
  const socat = findTool('socat');
  if (socat === undefined) throw new Error('socat not found (apt-get install socat)');
  const dir = join(parent, name);
  await mkdir(dir, { recursive: true });
  return startPtyPair(socat, dir);
}

export interface Written {
  /** The second the burst's sentences carry. */
  second: number;
  /** CLOCK_REALTIME just before the write() of the burst. */
  writeTime: Timespec;
  /** The burst carried a valid fix. */
  valid: boolean;
}

export interface WriterOptions {
  /** Seconds after each second boundary the burst is written. */
  latency: number;
  /** The burst for a second (sentence lines without line ends). */
  burst: (second: number) => { lines: string[]; valid: boolean };
  lineEnd?: string;
  /** Write the burst's lines this far apart (ms), as a receiver at a low baud rate does; default all at once. */
  lineSpacingMs?: number;
}

/**
 * Writes one burst per second at second + latency, on CLOCK_REALTIME. A pty that went
 * away (socat killed) makes writes fail: they are skipped until `reopen()`.
 */
export class PacedWriter {
  readonly written: Written[] = [];
  #fd: number | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #lastSecond = -1;
  readonly #pending = new Set<NodeJS.Timeout>();

  constructor(
    private path: string,
    private readonly options: WriterOptions,
  ) {}

  start(): void {
    this.reopen();
    this.#schedule();
  }

  /** Opens the path again (a new socat with the same link). */
  reopen(path: string = this.path): void {
    this.path = path;
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = openSync(path, constants.O_WRONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  }

  /** Stop writing until reopen() (the device "vanished"). */
  detach(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #schedule(): void {
    if (this.#stopped) return;
    const now = realtime();
    // The next second whose burst time (second + latency) is still ahead.
    let second = now.sec;
    if (diffSeconds(now, { sec: second, nsec: 0 }) >= this.options.latency) second += 1;
    // A timer may fire a little early on CLOCK_REALTIME: never write a second twice.
    if (second <= this.#lastSecond) second = this.#lastSecond + 1;
    const delayMs = Math.max(0, (this.options.latency - diffSeconds(now, { sec: second, nsec: 0 })) * 1000);
    this.#timer = setTimeout(() => {
      this.#lastSecond = second;
      this.#write(second);
      this.#schedule();
    }, delayMs);
  }

  /** Writes right now, stamped (also used by the benchmark for its own pacing). */
  writeLines(lines: string[]): Timespec | null {
    if (this.#fd === null) return null;
    const bytes = Buffer.from(lines.map((line) => `${line}${this.options.lineEnd ?? '\r\n'}`).join(''), 'latin1');
    const writeTime = realtime();
    try {
      writeSync(this.#fd, bytes);
    } catch {
      this.detach();
      return null;
    }
    return writeTime;
  }

  #write(second: number): void {
    const { lines, valid } = this.options.burst(second);
    const spacing = this.options.lineSpacingMs;
    // The stamp that counts is the first line's: that is the one the feeder must stamp.
    const writeTime = this.writeLines(spacing === undefined ? lines : lines.slice(0, 1));
    if (writeTime !== null) this.written.push({ second, writeTime, valid });
    if (spacing === undefined) return;
    lines.slice(1).forEach((line, index) => {
      const timer = setTimeout(
        () => {
          this.#pending.delete(timer);
          if (!this.#stopped) this.writeLines([line]);
        },
        spacing * (index + 1),
      );
      this.#pending.add(timer);
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
    this.detach();
  }
}
