// The protocol under load: update() as fast as it can, clock - receive held constant,
// while another process reads the ntpd way (count, fence, copy, clear valid, fence,
// compare count) millions of times. No accepted sample may be torn. Unit 128.
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { monotonicRaw } from '../src/clock.js';
import { NtpdShm } from '../src/shm.js';
import { diffSeconds } from '../src/time.js';
import { cBuild, type CBuild } from './helpers/cc.js';
import { removeSegment } from './helpers/segments.js';

const UNIT = 128;
const READ_SECONDS = 3;
const MAX_READS = 20_000_000;
const DIFF = { sec: 1, nsec: 234_567 }; // clock - receive of every sample written

interface ReaderResult {
  reads: number;
  notValid: number;
  clashes: number;
  badMode: number;
  accepted: number;
  torn: number;
  firstTorn: string;
}

let c: CBuild;
beforeAll(() => {
  c = cBuild();
  removeSegment(UNIT);
});
afterAll(() => c.cleanup());
afterEach(() => removeSegment(UNIT));

describe('protocol under load', () => {
  it('an ntpd-style reader never accepts a torn sample', async () => {
    const readerPath = c.compile('ntpd_reader.c');
    const shm = new NtpdShm(UNIT);
    const reader = spawn(readerPath, [String(UNIT), String(READ_SECONDS), String(MAX_READS), String(DIFF.sec), String(DIFF.nsec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    reader.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    reader.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => reader.once('close', (code) => resolve(code)));
    let finished = false;
    void exited.then(() => (finished = true));

    // Bursts of updates, yielding between them so the reader's exit can be seen;
    // bounded by a deadline in case the reader hangs.
    let written = 0;
    const start = monotonicRaw();
    try {
      while (!finished && diffSeconds(monotonicRaw(), start) < READ_SECONDS + 15) {
        for (let i = 0; i < 20_000; i++, written++) {
          // Every field changes from one sample to the next; the difference never does.
          const receive = { sec: 1_700_000_000 + (written % 100_000), nsec: (written * 7_919) % 999_000_000 };
          shm.update({ sec: receive.sec + DIFF.sec, nsec: receive.nsec + DIFF.nsec }, { receiveTime: receive, precision: -20, leap: 0 });
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      if (!finished) reader.kill('SIGKILL');
      shm.detach();
    }
    expect(await exited, output).toBe(0);
    const result = JSON.parse(output) as ReaderResult;
    console.log(`torn test: ${written} updates; reader: ${JSON.stringify(result)}`);
    expect(result.reads).toBeGreaterThan(1_000_000);
    expect(result.accepted, 'the reader must accept samples, or the test proves nothing').toBeGreaterThan(0);
    expect(result.badMode).toBe(0);
    expect(result.torn, result.firstTorn).toBe(0);
  });
});
