// Date jumps over a real pty: a receiver simulated on a socat pair, paced in real time,
// read by GpsSource in this process (so the local clock and the kernel's clock state,
// the witness, can be set) and by the real `htntp gps --report-offset` CLI.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanupsAfterEach } from '../helpers/cleanups.js';
import { monotonicRaw, realtime, type Clock, type ClockSync } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import type { Sample } from '../../src/sample.js';
import { GpsSource } from '../../src/sources/gps/source.js';
import { addSeconds, diffSeconds } from '../../src/time.js';
import { describeE2e, waitFor } from '../helpers/daemons.js';
import { makeTempDir, startHtntp, type TempDir } from '../helpers/process.js';
import { PacedWriter, startPtyPairIn, type PtyPair } from '../helpers/gps/pty.js';
import { burst, gga, gll, rmc } from '../helpers/gps/sentences.js';

const LATENCY = 0.3;
const MIN_FIXES = 3;
const SYNCHRONISED: ClockSync = { synchronised: true, maxError: 0.01, status: 0x1 };
const UNSYNCHRONISED: ClockSync = { synchronised: false, maxError: 16, status: 0x41 };
const DAY = 86_400;

let temp: TempDir;
const cleanups = cleanupsAfterEach();
beforeAll(async () => {
  temp = await makeTempDir('gps-dates');
});
afterAll(async () => {
  await temp?.remove();
});

async function ptyPair(name: string): Promise<PtyPair> {
  const pair = await startPtyPairIn(temp.path, name);
  cleanups.push(() => pair.stop());
  return pair;
}

/** The same instant with its year replaced: a receiver dating it wrongly. */
function inYear(second: number, year: number): number {
  const date = new Date(second * 1000);
  date.setUTCFullYear(year);
  return date.getTime() / 1000;
}

interface Run {
  samples: Sample[];
  events: { event: string; [field: string]: unknown }[];
  paced: PacedWriter;
  /** Resolves with the first sample that satisfies `test`. */
  sample(test: (sample: Sample) => boolean, what: string): Promise<Sample>;
}

/**
 * A receiver whose burst for second s states `stated(s)` (null: a burst without a fix),
 * read by a GpsSource with the given witness and local clock.
 */
async function receiver(
  name: string,
  stated: (second: number) => { lines: string[]; valid: boolean },
  witness: ClockSync,
  clock?: Clock,
): Promise<Run> {
  const pair = await ptyPair(name);
  const events: Run['events'] = [];
  const source = new GpsSource({
    device: pair.devicePath,
    baud: 9600,
    minFixes: MIN_FIXES,
    witness: () => witness,
    ...(clock === undefined ? {} : { clock }),
    logger: createLogger({
      format: 'json',
      level: 'debug',
      write: (line) => events.push(JSON.parse(line) as Run['events'][number]),
    }),
  });
  const controller = new AbortController();
  const samples: Sample[] = [];
  const iterating = (async () => {
    for await (const sample of source.samples(controller.signal)) samples.push(sample);
  })();
  cleanups.push(async () => {
    controller.abort();
    await iterating;
  });
  await waitFor(() => (events.some((entry) => entry.event === 'device open') ? true : undefined), {
    what: 'the device to open',
    timeoutMs: 10_000,
    intervalMs: 20,
  });
  const paced = new PacedWriter(pair.writerPath, { latency: LATENCY, burst: stated });
  cleanups.push(() => paced.stop());
  paced.start();
  const sample = (test: (sample: Sample) => boolean, what: string): Promise<Sample> =>
    waitFor(() => samples.find(test), { what, timeoutMs: 40_000, intervalMs: 50 });
  return { samples, events, paced, sample };
}

/** Every sample is a second the receiver stated as true, stamped when that burst arrived. */
function expectOnTimeline(run: Run, trueSecond: (stated: number) => boolean): void {
  for (const sample of run.samples) {
    expect(trueSecond(sample.clockTime.sec), `published ${new Date(sample.clockTime.sec * 1000).toISOString()}`).toBe(
      true,
    );
    const written = run.paced.written.find((entry) => entry.second === sample.clockTime.sec);
    if (written !== undefined) expect(diffSeconds(sample.receiveTime, written.writeTime)).toBeLessThan(0.5);
  }
}

describeE2e('GPS date jumps over a socat pty', ['socat'], () => {
  it('year-99 RMC mid-run: nothing off published, a warning, good samples back within --min-fixes + 2 s', async () => {
    const start = realtime().sec + 1;
    const badFrom = start + 6;
    const goodAgain = badFrom + 8;
    const run = await receiver(
      'bogus-burst',
      (second) => {
        if (second < badFrom || second >= goodAgain) return { lines: burst(second), valid: true };
        // RMC "99" (1999, moved forward 2 x 1024 weeks to 2039), the rest of the burst without a date of its own.
        return { lines: [rmc(inYear(second, 1999)), gga(second), gll(second)], valid: false };
      },
      SYNCHRONISED,
    );
    await run.sample((sample) => sample.clockTime.sec < badFrom, 'a sample before the burst');
    const back = await run.sample((sample) => sample.clockTime.sec >= goodAgain, 'a sample after the burst');
    expect(back.clockTime.sec).toBeLessThanOrEqual(goodAgain + MIN_FIXES + 2);
    process.stderr.write(
      `[gps dates] year-99 burst: first sample ${back.clockTime.sec - goodAgain} s after good data returned\n`,
    );
    expectOnTimeline(run, (sec) => Math.abs(sec - realtime().sec) < 60);
    expect(run.samples.filter((sample) => sample.clockTime.sec >= badFrom && sample.clockTime.sec < goodAgain)).toEqual(
      [],
    );
    const refused = run.events.find((entry) => entry.event === 'fixes refused');
    expect(refused, JSON.stringify(run.events.filter((entry) => entry.level !== 'debug'))).toMatchObject({
      level: 'warn',
      why: 'jump',
    });
    expect(String(refused?.receiverTime)).toMatch(/^2039-/);
    expect(run.events.some((entry) => entry.event === 'fixes accepted again')).toBe(true);
    expect(run.events.some((entry) => entry.event === 'receiver time changed')).toBe(false);
  }, 60_000);

  it('a receiver a day ahead that corrects itself: warned at once, the correction taken after the run', async () => {
    const start = realtime().sec + 1;
    const correctedFrom = start + 6;
    const run = await receiver(
      'time-change',
      (second) => ({ lines: burst(second < correctedFrom ? second + DAY : second), valid: true }),
      SYNCHRONISED,
    );
    await run.sample((sample) => sample.clockTime.sec > realtime().sec + DAY / 2, 'a sample of the wrong day');
    const corrected = await run.sample(
      (sample) => sample.clockTime.sec < realtime().sec + DAY / 2,
      'a sample after the correction',
    );
    // The candidate needs MIN_FIXES consistent fixes; its last one is published.
    expect(corrected.clockTime.sec).toBeGreaterThanOrEqual(correctedFrom + MIN_FIXES - 1);
    expect(corrected.clockTime.sec).toBeLessThanOrEqual(correctedFrom + MIN_FIXES + 1);
    process.stderr.write(
      `[gps dates] time change: first corrected sample ${corrected.clockTime.sec - correctedFrom} s after the change\n`,
    );
    expect(run.events.find((entry) => entry.event === 'first fix far from the synchronised local clock')).toMatchObject(
      { level: 'warn' },
    );
    const changed = run.events.find((entry) => entry.event === 'receiver time changed');
    expect(changed).toMatchObject({ level: 'warn', fixes: MIN_FIXES });
    // The jump less the elapsed raw time: the burst's arrival jitter is in it.
    expect(Math.abs(Number(changed?.jumpSeconds) + DAY)).toBeLessThan(0.5);
    await run.sample((sample) => sample.clockTime.sec >= corrected.clockTime.sec + 1, 'the next corrected sample');
    const after = run.samples.filter((sample) => sample.clockTime.sec < realtime().sec + DAY / 2);
    // On the corrected timeline only, each second once, in order.
    for (let index = 1; index < after.length; index += 1)
      expect(after[index]!.clockTime.sec).toBeGreaterThan(after[index - 1]!.clockTime.sec);
    expectOnTimeline(run, (sec) => Math.abs(sec - realtime().sec) < 60 || Math.abs(sec - DAY - realtime().sec) < 60);
  }, 60_000);

  it('a machine at 1970 (unsynchronised) is set by its receiver after --min-fixes, without a warning', async () => {
    // The local clock: 1970-01-02 plus the real elapsed time; the raw monotonic clock is the real one.
    const shift = realtime().sec - DAY;
    const clock: Clock = { realtime: () => addSeconds(realtime(), -shift), monotonicRaw };
    const start = realtime().sec + 1;
    const run = await receiver('epoch', (second) => ({ lines: burst(second), valid: true }), UNSYNCHRONISED, clock);
    const first = await run.sample(() => true, 'the first sample');
    expect(first.receiveTime.sec).toBeLessThan(2 * DAY);
    expect(diffSeconds(first.clockTime, first.receiveTime)).toBeGreaterThan(shift - 2);
    expect(first.clockTime.sec).toBeGreaterThanOrEqual(start + MIN_FIXES - 1);
    expectOnTimeline(run, (sec) => Math.abs(sec - realtime().sec) < 60);
    expect(run.events.filter((entry) => entry.level === 'warn')).toEqual([]);
  }, 60_000);

  it('--report-offset prints median, IQR of clock - receive and the correction; -v escapes control bytes', async () => {
    const pair = await ptyPair('report');
    const cli = startHtntp([
      'gps',
      '--device',
      pair.devicePath,
      '--report-offset',
      '8',
      '--min-fixes',
      '2',
      '--json',
      '-v',
      '--log-format',
      'text',
      '--no-leapfile',
    ]);
    cleanups.push(async () => void (await cli.stop('SIGTERM', 3_000)));
    await cli.waitForLine(/device open/, { stream: 'stderr' });
    // A hostile line with a terminal escape in every burst.
    const paced = new PacedWriter(pair.writerPath, {
      latency: LATENCY,
      burst: (second) => ({ lines: [...burst(second), '$GPTXT,\x1b[2J\x1b[31mRED*00'], valid: true }),
    });
    cleanups.push(() => paced.stop());
    paced.start();
    const exit = await cli.exited;
    expect(exit.code, cli.output()).toBe(0);
    const report = JSON.parse(cli.stdoutLines.join('')) as {
      samples: number;
      median: number;
      iqr: number;
      correction: number;
      offset: number;
    };
    // 8 s, 2 fixes to acquire: at least 4 samples even on a busy machine.
    expect(report.samples).toBeGreaterThanOrEqual(4);
    // clock - receive = -(latency + pty/scheduling delay): the delay is ms, at most tens of ms when loaded.
    expect(report.median).toBeLessThan(-LATENCY);
    expect(report.median).toBeGreaterThan(-LATENCY - 0.05);
    expect(report.correction).toBeCloseTo(-report.median, 9);
    expect(report.iqr).toBeGreaterThanOrEqual(0);
    expect(report.iqr).toBeLessThan(0.05);
    const stderr = cli.stderrLines.join('\n');
    expect(stderr).toMatch(/line skipped.*\\x1b\[2J\\x1b\[31mRED/);
    expect(stderr.includes('\x1b')).toBe(false);
    process.stderr.write(
      `[gps dates] --report-offset: ${report.samples} samples, median ${(report.median * 1000).toFixed(2)} ms, ` +
        `IQR ${(report.iqr * 1000).toFixed(2)} ms\n`,
    );
  }, 40_000);
});
