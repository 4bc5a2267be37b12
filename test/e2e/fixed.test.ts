// End to end: the real `htntp fixed --offset -1` (bin/htntp.js) read by the real readers,
// each on its own unit (chronyd and ntpd both consume samples): chronyd -x says the local
// clock is 1.000 s fast, ntpsec ntpd's peerstats say SHM offset -1.000 s, ntpshmmon lists
// clock - receive = -1 s. Then the process contract: SIGTERM -> exit 0 with valid = 0;
// --once -> exactly one sample left valid.
import { afterEach, expect, it } from 'vitest';
import { realtime } from '../../src/clock.js';
import { refclockLines } from '../../src/refclock-config.js';
import { NtpdShm } from '../../src/shm.js';
import { diffSeconds } from '../../src/time.js';
import {
  describeE2e,
  readSegment,
  runNtpshmmon,
  startChronyd,
  startNtpd,
  waitForChronySelection,
  type ChronyTracking,
  type PeerstatsLine,
} from '../helpers/daemons.js';
import { exclusiveSegment } from '../helpers/exclusive.js';
import { startHtntp, type RunningProcess } from '../helpers/process.js';
import { units } from '../helpers/units.js';

const UNITS = {
  chronyd: units.fixedChronyd,
  ntpd: units.fixedNtpd,
  ntpshmmon: units.fixedNtpshmmon,
  sigterm: units.fixedSigterm,
  once: units.fixedOnce,
};
/** The tolerance on what the daemons report for a -1 s reference. */
const TOLERANCE = 0.002;

const cleanups: (() => Promise<unknown>)[] = [];
const held: NtpdShm[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  for (const segment of held.splice(0)) {
    segment.remove();
    segment.detach();
  }
});

/**
 * The unit's segment, created by this test and held until afterEach: a concurrent run of
 * this file (other developers' suites) waits instead of removing it under our reader.
 */
async function holdUnit(unit: number): Promise<NtpdShm> {
  const segment = await exclusiveSegment(unit);
  held.push(segment);
  return segment;
}

/** `htntp fixed --offset -1` on `unit`, verbose so each published sample shows on stderr. */
async function startFixed(unit: number, extra: string[] = []): Promise<RunningProcess> {
  await holdUnit(unit);
  const feeder = startHtntp(['fixed', '--offset', '-1', '--unit', String(unit), '--verbose', ...extra]);
  cleanups.push(() => feeder.stop('SIGTERM', 3_000));
  await feeder.waitForLine(new RegExp(`^info segment attached unit=${unit} `), { stream: 'stderr', timeoutMs: 15_000 });
  return feeder;
}

describeE2e('htntp fixed --offset -1 read by chronyd -x', ['chronyd'], () => {
  it('chronyd reports the local clock 1.000 s fast (±2 ms)', { timeout: 60_000 }, async () => {
    const unit = UNITS.chronyd;
    await startFixed(unit);
    const chronyd = await startChronyd({
      lines: refclockLines({ daemon: 'chrony', unit, refid: 'FIX', poll: 0, precision: -10 }),
    });
    cleanups.push(() => chronyd.stop());
    // Synchronised to FIX, with at least 4 samples behind the estimate (reach 0o17).
    const tracking: ChronyTracking = await waitForChronySelection(chronyd, 'FIX', 40_000);
    console.info(
      `chronyd tracking: System time ${tracking.systemTimeFast.toFixed(9)} s fast, last ` +
        `offset ${tracking.lastOffset}, stratum ${tracking.stratum}`,
    );
    expect(tracking.systemTimeFast).toBeGreaterThan(1 - TOLERANCE);
    expect(tracking.systemTimeFast).toBeLessThan(1 + TOLERANCE);
    expect(tracking.stratum).toBe(1);
    expect(tracking.leapStatus).toBe('Normal');
  });
});

describeE2e('htntp fixed --offset -1 read by ntpsec ntpd', ['ntpd'], () => {
  it('ntpd peerstats report SHM offset -1.000 s (±2 ms)', { timeout: 60_000 }, async () => {
    const unit = UNITS.ntpd;
    await startFixed(unit);
    const ntpd = await startNtpd({ lines: refclockLines({ daemon: 'ntpsec', unit, refid: 'FIX', poll: 1 }) });
    cleanups.push(() => ntpd.stop());
    // minpoll 1: a line every 2 s; three lines = three samples ntpd accepted.
    const lines: PeerstatsLine[] = await ntpd.waitForPeerstats(unit, 3);
    const shown = lines.map((line) => `[${line.status.toString(16)} ${line.offset.toFixed(9)} ${line.dispersion}]`);
    console.info(`ntpd peerstats SHM(${unit}) [status offset dispersion]: ${shown.join(' ')}`);
    expect(lines.every((line) => line.peer === `SHM(${unit})`)).toBe(true);
    for (const line of lines) {
      expect(line.offset).toBeGreaterThan(-1 - TOLERANCE);
      expect(line.offset).toBeLessThan(-1 + TOLERANCE);
    }
  });
});

describeE2e('htntp fixed --offset -1 watched by ntpshmmon', ['ntpshmmon'], () => {
  it('ntpshmmon lists the samples with clock - receive = -1 s', { timeout: 60_000 }, async () => {
    const unit = UNITS.ntpshmmon;
    await startFixed(unit, ['--precision', '-12']);
    const samples = await runNtpshmmon({ units: [unit], count: 3, seconds: 10 });
    expect(samples.length).toBeGreaterThanOrEqual(3);
    const now = realtime();
    for (const sample of samples) {
      expect(sample.unit).toBe(unit);
      expect(sample.offset).toBe(-1); // exact: both timestamps come from one realtime reading
      expect(sample.precision).toBe(-12);
      expect(sample.leap).toBe(0);
      const age = diffSeconds(now, sample.receive);
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(15);
    }
    // One sample a second, each seen once: receive times strictly increase.
    const receives = samples.map((sample) => sample.receive);
    for (let index = 1; index < receives.length; index += 1)
      expect(diffSeconds(receives[index]!, receives[index - 1]!)).toBeGreaterThan(0.5);
  });
});

// The process contract needs no daemon; it runs wherever the addon is built.
describeE2e('htntp fixed as a process', [], () => {
  it('SIGTERM: exit 0, and the segment says valid = 0 afterwards', { timeout: 60_000 }, async () => {
    const unit = UNITS.sigterm;
    const feeder = await startFixed(unit, ['--interval', '0.2']);
    await feeder.waitForLine(new RegExp(`^debug sample published sinks=shm:${unit} offset=-1 `), {
      stream: 'stderr',
      timeoutMs: 20_000,
    });
    expect(readSegment(unit)?.valid).toBe(1); // nobody consumes this unit
    feeder.child.kill('SIGTERM');
    const exit = await feeder.exited;
    expect(exit, feeder.output()).toEqual({ code: 0, signal: null });
    const after = readSegment(unit);
    expect(after?.valid).toBe(0);
    expect(
      feeder.stderrLines.some((line) => new RegExp(`^info segment detached unit=${unit} published=\\d+`).test(line)),
    ).toBe(true);
  });

  it('--once: exactly one sample (count + 2), left valid', { timeout: 60_000 }, async () => {
    const unit = UNITS.once;
    const countBefore = (await holdUnit(unit)).count;
    const once = startHtntp(['fixed', '--offset', '-1', '--unit', String(unit), '--once', '--json']);
    cleanups.push(() => once.stop('SIGKILL', 1_000));
    const exit = await once.exited;
    expect(exit, once.output()).toEqual({ code: 0, signal: null });
    expect(JSON.parse(once.stdoutLines.join(''))).toEqual({ unit, offset: -1, published: 1 });
    const after = readSegment(unit);
    expect(after).toBeDefined();
    expect(after?.count).toBe(countBefore + 2);
    expect(after?.valid).toBe(1);
    expect(after?.mode).toBe(1);
    const clock = { sec: after?.clockTimeStampSec ?? 0, nsec: after?.clockTimeStampNSec ?? 0 };
    const receive = { sec: after?.receiveTimeStampSec ?? 0, nsec: after?.receiveTimeStampNSec ?? 0 };
    expect(diffSeconds(clock, receive)).toBe(-1);
    expect(Math.abs(diffSeconds(realtime(), receive))).toBeLessThan(15);
  });
});
