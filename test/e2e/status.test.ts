// `htntp status`: the plain function (fake clock, exact offset and age, reader state,
// never creates, never clears valid), the command's logic in-process (each look and the
// exit code returned) and the CLI (--json, exit code, --watch + SIGINT).
import { spawnSync, execFileSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatStatus, readStatus, type StatusResult, type UnitReport, type UnitStatus } from '../../src/status.js';
import { runStatus } from '../../src/cli/commands/status.js';
import type { Clock } from '../../src/clock.js';
import { NtpdShm, keyOfUnit } from '../../src/shm.js';
import { addSeconds, type Timespec } from '../../src/time.js';
import { cBuild } from '../helpers/cc.js';
import { runCommand, startHtntp, htntpBin } from '../helpers/process.js';
import { readSegment, removeSegment } from '../helpers/segments.js';
import { units } from '../helpers/units.js';
import { waitFor } from '../helpers/wait.js';

const UNIT = units.status;
const UNIT_MISSING = units.statusMissing;
const UNIT_WATCH = units.statusWatch;
const UNIT_WRONG_SIZE = units.statusWrongSize;
const UNITS = [UNIT, UNIT_MISSING, UNIT_WATCH];

function cleanUp(): void {
  UNITS.forEach(removeSegment);
  spawnSync('ipcrm', ['-M', String(keyOfUnit(UNIT_WRONG_SIZE))], { stdio: 'ignore' }); // NtpdShm cannot attach it
}
beforeAll(cleanUp);
afterEach(cleanUp);

const receive: Timespec = { sec: 1_700_000_000, nsec: 999_999_999 };
const clockTime: Timespec = { sec: 1_700_000_002, nsec: 1 }; // clock - receive = 1.000000002 s

/** CLOCK_REALTIME now, as the status reads it. */
function realtimeNow(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

function fakeClock(realtime: Timespec): Clock {
  return { realtime: () => realtime, monotonicRaw: () => ({ sec: 0, nsec: 0 }) };
}

function statusOf(reports: UnitReport[], unit: number): UnitStatus {
  const report = reports.find((entry) => entry.unit === unit);
  if (report === undefined || 'error' in report)
    throw new Error(`no status for unit ${unit}: ${JSON.stringify(report)}`);
  return report;
}

describe('readStatus()', () => {
  it('reports every field, UTC times with ns, the exact offset and the age', () => {
    const shm = new NtpdShm(UNIT);
    try {
      shm.update(clockTime, { receiveTime: receive, precision: -13, leap: 1 });
      const result = readStatus({ units: [UNIT], clock: fakeClock(addSeconds(receive, 2.5)) });
      expect(result.missing).toEqual([]);
      expect(statusOf(result.units, UNIT)).toMatchObject({
        unit: UNIT,
        key: '0x4e5450b3',
        shmId: shm.shmId,
        mode: 1,
        count: 2,
        valid: 1,
        clockTime: '2023-11-14T22:13:22.000000001Z',
        receiveTime: '2023-11-14T22:13:20.999999999Z',
        clock: clockTime,
        receive,
        offset: 1.000000002,
        age: 2.5,
        leap: 1,
        precision: -13,
        nsamples: 3,
        consistent: true,
        reader: 'waiting',
        readerSeen: false,
        size: 96,
        perm: '0666',
        uid: process.getuid?.(),
        creatorUid: process.getuid?.(),
        creatorPid: process.pid,
        lastPid: process.pid,
        attached: 1, // this test's own NtpdShm
      });
      // Never clears valid, never stays attached.
      expect(shm.valid).toBe(1);
      expect(shm.stat().nattch).toBe(1);
    } finally {
      shm.detach();
    }
  });

  it('sees a reader consume: valid back to 0 after a complete write, and the transition between two looks', () => {
    const shm = new NtpdShm(UNIT);
    try {
      const clock = fakeClock(receive);
      expect(statusOf(readStatus({ units: [UNIT], clock }).units, UNIT).reader).toBe('unknown'); // nothing written yet
      shm.update(clockTime, { receiveTime: receive });
      const before = readStatus({ units: [UNIT], clock });
      shm.valid = 0; // what ntpd/chrony do when they take the sample
      const after = statusOf(readStatus({ units: [UNIT], clock, previous: before }).units, UNIT);
      expect(after).toMatchObject({ reader: 'consuming', readerSeen: true, valid: 0 });
      expect(statusOf(readStatus({ units: [UNIT], clock }).units, UNIT).readerSeen).toBe(false);
      shm.count = 3; // a write in progress
      expect(statusOf(readStatus({ units: [UNIT], clock }).units, UNIT).reader).toBe('unknown');
    } finally {
      shm.detach();
    }
  });

  it('a sample past --stale-after is stale, shown so; --check exits 1 on it and on a never-written unit', async () => {
    const shm = new NtpdShm(UNIT);
    try {
      expect((await runStatus({ unit: [UNIT], interval: 1, check: true })).exitCode).toBe(1); // never written
      const receiveTime = addSeconds(realtimeNow(), -30); // the last sample of a feeder SIGKILLed 30 s ago
      shm.update(addSeconds(receiveTime, -1), { receiveTime });
      const stale = await runStatus({ unit: [UNIT], interval: 1, check: true, staleAfter: 5 });
      expect(stale.exitCode).toBe(1);
      expect(statusOf(stale.result.units, UNIT)).toMatchObject({ stale: true, valid: 1 });
      expect(formatStatus(stale.result)).toMatch(
        new RegExp(`^unit ${UNIT} \\[stale\\] .*\n[\\s\\S]*STALE: no fresh sample`),
      );
      const lenient = await runStatus({ unit: [UNIT], interval: 1, check: true, staleAfter: 3600 });
      expect([lenient.exitCode, statusOf(lenient.result.units, UNIT).stale]).toEqual([0, false]);
      // Without --check the look itself succeeds: staleness is shown, not an error.
      expect((await runStatus({ unit: [UNIT], interval: 1, staleAfter: 5 })).exitCode).toBe(0);
      const cli = startHtntp(['status', '--unit', String(UNIT), '--check', '--stale-after', '5', '--json']);
      expect((await cli.exited).code, cli.output()).toBe(1);
      expect((JSON.parse(cli.stdoutLines.join('\n')) as unknown[])[0]).toMatchObject({ unit: UNIT, stale: true });
    } finally {
      shm.detach();
    }
  });

  it('a never-written segment says so: no 1970 times, no offset or age', () => {
    const shm = new NtpdShm(UNIT);
    try {
      const status = statusOf(readStatus({ units: [UNIT], clock: fakeClock(receive) }).units, UNIT);
      expect(status).toMatchObject({
        written: false,
        clockTime: null,
        receiveTime: null,
        offset: null,
        age: null,
        reader: 'unknown',
      });
      const text = formatStatus(readStatus({ units: [UNIT] }));
      expect(text).toContain('clock    never written');
      expect(text).not.toMatch(/1970|NaN/);
      expect(text).toMatch(/offset {3}-\n {2}age {6}-\n/);
    } finally {
      shm.detach();
    }
  });

  it("after a feeder's clean stop a reader still attached is not 'consuming'", async () => {
    const feeder = startHtntp(['fixed', '--unit', String(UNIT), '--offset', '-1', '--interval', '0.2']);
    let reader: NtpdShm | undefined;
    try {
      await feeder.waitForLine(/segment attached/, { stream: 'stderr' });
      reader = new NtpdShm({ unit: UNIT, create: false });
      await waitFor(() => (reader?.valid === 1 ? true : undefined), {
        what: 'a sample',
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      reader.valid = 0; // consumed while the feeder is attached
      expect(statusOf(readStatus({ units: [UNIT] }).units, UNIT).reader).toBe('consuming');
      expect((await feeder.stop('SIGTERM')).code, feeder.output()).toBe(0);
      const stopped = statusOf(readStatus({ units: [UNIT] }).units, UNIT);
      expect(stopped).toMatchObject({ valid: 0, written: true, attached: 1, reader: 'idle' });
    } finally {
      reader?.detach();
      await feeder.stop('SIGKILL');
    }
  });

  it('never creates a segment: a unit asked for that does not exist is reported missing', () => {
    const result = readStatus({ units: [UNIT_MISSING] });
    expect(result).toEqual({ units: [], missing: [UNIT_MISSING] });
    expect(readSegment(UNIT_MISSING)).toBeUndefined();
  });

  it('by default lists every unit that exists', () => {
    const shm = new NtpdShm(UNIT);
    try {
      const units = readStatus().units.map((report) => report.unit);
      expect(units).toContain(UNIT);
      expect(units).not.toContain(UNIT_MISSING);
    } finally {
      shm.detach();
    }
  });
});

describe('runStatus()', () => {
  it('returns the look and the exit code: a missing unit asked for is exit code 1', async () => {
    const shm = new NtpdShm(UNIT);
    try {
      shm.update(clockTime, { receiveTime: receive, precision: -13 });
      const looks: StatusResult[] = [];
      const run = await runStatus({ unit: [UNIT, UNIT_MISSING], interval: 1 }, (result) => looks.push(result));
      expect(run.exitCode).toBe(1);
      expect(run.result.missing).toEqual([UNIT_MISSING]);
      expect(run.result.units).toMatchObject([{ unit: UNIT, count: 2, valid: 1, offset: 1.000000002, precision: -13 }]);
      expect(looks).toEqual([run.result]);
      expect((await runStatus({ unit: [UNIT], interval: 1 })).exitCode).toBe(0);
      expect(readSegment(UNIT_MISSING)).toBeUndefined();
    } finally {
      shm.detach();
    }
  });

  it('--watch yields a look every interval, each seeing the one before, until its signal stops it', async () => {
    const shm = new NtpdShm(UNIT_WATCH);
    try {
      shm.update(clockTime, { receiveTime: receive });
      const stop = new AbortController();
      const looks: StatusResult[] = [];
      const run = await runStatus(
        { unit: [UNIT_WATCH], watch: true, interval: 0.1 },
        (result) => {
          looks.push(result);
          if (looks.length === 1) shm.valid = 0; // a reader takes the sample between two looks
          if (looks.length === 3) stop.abort();
        },
        stop.signal,
      );
      expect(run.exitCode).toBe(0);
      expect(looks).toHaveLength(3);
      expect(run.result).toBe(looks[2]);
      expect(looks.map((look) => statusOf(look.units, UNIT_WATCH).readerSeen)).toEqual([false, true, true]);
    } finally {
      shm.detach();
    }
  });
});

describe('htntp status (CLI)', () => {
  it('--json prints an array of plain objects; a missing unit is exit code 1 with a message', async () => {
    const shm = new NtpdShm(UNIT);
    try {
      shm.update(clockTime, { receiveTime: receive, precision: -13 });
      const ok = JSON.parse(
        await runCommand(process.execPath, [htntpBin, 'status', '--unit', String(UNIT), '--json']),
      ) as UnitStatus[];
      expect(ok).toHaveLength(1);
      expect(ok[0]).toMatchObject({
        unit: UNIT,
        count: 2,
        valid: 1,
        offset: 1.000000002,
        clock: clockTime,
        precision: -13,
      });
      const run = startHtntp(['status', '--unit', String(UNIT), '--unit', String(UNIT_MISSING), '--json']);
      const exit = await run.exited;
      expect(exit.code, run.output()).toBe(1);
      expect((JSON.parse(run.stdoutLines.join('\n')) as UnitStatus[]).map((entry) => entry.unit)).toEqual([UNIT]);
      expect(run.stderrLines.join('\n')).toContain(`unit ${UNIT_MISSING} has no segment (key 0x4e5450b4)`);
      expect(readSegment(UNIT_MISSING)).toBeUndefined();
      const text = startHtntp(['status', '--unit', String(UNIT)]);
      expect((await text.exited).code).toBe(0);
      expect(text.stdoutLines.join('\n')).toMatch(/offset\s+\+1\.000000002 s/);
    } finally {
      shm.detach();
    }
  });

  it('a unit asked for that cannot be read (another size) is an error entry and exit code 1', async () => {
    const c = cBuild();
    try {
      execFileSync(c.compile('shm_create.c'), [String(UNIT_WRONG_SIZE), '80', '666']);
    } finally {
      c.cleanup();
    }
    const run = startHtntp(['status', '--unit', String(UNIT_WRONG_SIZE), '--json']);
    expect((await run.exited).code, run.output()).toBe(1);
    const [entry] = JSON.parse(run.stdoutLines.join('\n')) as UnitReport[];
    expect(entry).toMatchObject({ unit: UNIT_WRONG_SIZE, error: { code: 'EINVAL' } });
    expect(entry !== undefined && 'error' in entry && entry.error.message).toContain(
      `ipcrm -M 0x${keyOfUnit(UNIT_WRONG_SIZE).toString(16)}`,
    );
  });

  it('--watch refreshes, observes a reader taking the sample, and stops on SIGINT', async () => {
    const shm = new NtpdShm(UNIT_WATCH);
    const watch = startHtntp(['status', '--unit', String(UNIT_WATCH), '--json', '--watch', '--interval', '0.1']);
    try {
      shm.update(clockTime, { receiveTime: receive });
      await watch.waitForLine(/"valid":1/, { stream: 'stdout' });
      shm.valid = 0;
      const line = await watch.waitForLine(/"readerSeen":true/, { stream: 'stdout' });
      expect(JSON.parse(line)).toMatchObject([{ unit: UNIT_WATCH, valid: 0, reader: 'consuming' }]);
      expect(shm.valid).toBe(0);
      const exit = await watch.stop('SIGINT');
      expect(exit, watch.output()).toEqual({ code: 0, signal: null });
    } finally {
      await watch.stop('SIGKILL');
      shm.detach();
    }
  });
});
