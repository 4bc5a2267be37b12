// The protocol under load: update() as fast as it can, clock - receive held constant,
// while another process reads the ntpd way (count, fence, copy, clear valid, fence,
// compare count) millions of times.
//
// ntpd's read order has a hole of its own (see test/e2e/c/ntpd_reader.c): a copy taken while
// a write is in progress, with count odd and unchanged across it, passes its count check.
// Such copies carry valid == 0, which tells them apart from a writer bug; a reader that
// also drops copies with valid 0 (chrony does) accepts nothing torn at all.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monotonicRaw } from '../../src/clock.js';
import { diffSeconds } from '../../src/time.js';
import { cBuild, type CBuild } from '../helpers/cc.js';
import { exclusiveSegment } from '../helpers/exclusive.js';
import { units } from '../helpers/units.js';

const UNIT = units.torn;
// Copies the reader must take while the writer runs (each one overlaps a stream of
// writes). An idle machine gets there in about a second; a starved one gets the time bound.
const TARGET_READS = 100_000;
const TIMEOUT_SECONDS = 90;
const DIFF = { sec: 1, nsec: 234_567 }; // clock - receive of every sample written

interface ReaderResult {
  reads: number;
  notValid: number;
  clashes: number;
  badMode: number;
  midWrite: number;
  accepted: number;
  tornMidWrite: number;
  tornUnexplained: number;
  firstTorn: string;
}

let c: CBuild;
let readerPath: string;
beforeAll(() => {
  c = cBuild();
  readerPath = c.compile('ntpd_reader.c');
});
afterAll(() => c.cleanup());

/** Writes as fast as update() goes while the C reader runs; returns what the reader saw. */
async function underLoad(mode: 'ntpd' | 'checked'): Promise<ReaderResult> {
  const shm = await exclusiveSegment(UNIT);
  const reader = spawn(
    readerPath,
    [mode, String(UNIT), String(TARGET_READS), String(TIMEOUT_SECONDS), String(DIFF.sec), String(DIFF.nsec)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  reader.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  reader.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => reader.once('close', (code) => resolve(code)));
  let finished = false;
  void exited.then(() => (finished = true));

  // Bursts of updates, yielding between them so the reader's exit can be seen; bounded
  // by a deadline in case the reader hangs.
  let written = 0;
  const start = monotonicRaw();
  try {
    while (!finished && diffSeconds(monotonicRaw(), start) < TIMEOUT_SECONDS + 15) {
      for (let i = 0; i < 20_000; i++, written++) {
        // Every field changes from one sample to the next; the difference never does.
        const receive = { sec: 1_700_000_000 + (written % 100_000), nsec: (written * 7_919) % 999_000_000 };
        shm.update(
          { sec: receive.sec + DIFF.sec, nsec: receive.nsec + DIFF.nsec },
          { receiveTime: receive, precision: -20, leap: 0 },
        );
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    if (!finished) reader.kill('SIGKILL');
    shm.remove();
    shm.detach();
  }
  expect(await exited, output).toBe(0);
  const result = JSON.parse(output) as ReaderResult;
  console.log(`torn test (${mode} reader): ${written} updates; reader: ${JSON.stringify(result)}`);
  // Counted, not timed: the reader copied TARGET_READS times while the writer ran, and
  // accepted a share of them (a copy that clashes with a write is dropped, as ntpd does).
  expect(result.reads, 'copies before the time bound').toBe(TARGET_READS);
  expect(result.accepted, 'the reader must accept samples, or the test proves nothing').toBeGreaterThanOrEqual(
    TARGET_READS / 100,
  );
  expect(result.badMode).toBe(0);
  return result;
}

describe('protocol under load', () => {
  it(
    'an ntpd-order reader accepts nothing torn but copies taken mid-write (its own race)',
    { timeout: (TIMEOUT_SECONDS + 30) * 1000 },
    async () => {
      const result = await underLoad('ntpd');
      // tornMidWrite may be a few per million here; a real ntpd polls once per poll interval
      // against one write a second, so its window is a few ns a second.
      expect(result.tornUnexplained, result.firstTorn).toBe(0);
    },
  );

  it(
    'a reader that also drops copies with valid 0 (as chrony does) accepts nothing torn',
    { timeout: (TIMEOUT_SECONDS + 30) * 1000 },
    async () => {
      const result = await underLoad('checked');
      expect(result.tornMidWrite + result.tornUnexplained, result.firstTorn).toBe(0);
    },
  );
});
