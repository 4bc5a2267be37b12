// The service layer in a real process: the real bin (`htntp fixed`), and
// for a source that ignores the stop signal a small feeder through addServiceOptions +
// runService (test/e2e/service/fixtures/feeder.ts). SIGTERM/SIGINT stop it within 2 s with
// exit 0 and valid = 0, even mid-wait; --user drops root after the attach and it keeps
// publishing (and reattaches after ipcrm as that user); --metrics answers.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { describeIf } from '../../helpers/tools.js';
import { NtpdShm, keyOfUnit } from '../../../src/shm.js';
import { repoRoot, startHtntp, startProcess, type RunningProcess } from '../../helpers/process.js';
import { readSegment, removeSegment, waitForCount } from '../../helpers/segments.js';
import { waitFor } from '../../helpers/wait.js';
import { units } from '../../helpers/units.js';

const UNITS = {
  term: units.processTerm,
  int: units.processInt,
  user: units.processUser,
  metrics: units.processMetrics,
  private: units.processPrivate,
};
const FIXTURE = new URL('./fixtures/feeder.ts', import.meta.url).pathname;

const started: RunningProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((child) => child.stop('SIGKILL', 2_000)));
  Object.values(UNITS).forEach(removeSegment);
});

function startFeeder(args: string[]): RunningProcess {
  const child = startProcess(process.execPath, ['--import', 'tsx', FIXTURE, '--no-leapfile', ...args], {
    cwd: repoRoot,
  });
  started.push(child);
  return child;
}

/** `htntp fixed` as users run it. */
/** Arguments of a fixed feeder on `unit` publishing ten samples a second. */
const fastFeeder = (unit: number): string[] => ['--offset', '0.25', '--interval', '0.1', '--unit', String(unit)];

function startFixed(args: string[]): RunningProcess {
  const child = startHtntp(['fixed', '--no-leapfile', ...args], { cwd: repoRoot });
  started.push(child);
  return child;
}

/**
 * Sends `signal` once the feeder is waiting, returns the exit and how long it took. An idle
 * machine exits within a few hundred ms; STOP_BOUND_MS leaves room for a loaded one and
 * stays far below what a stop that waited for the source would take (60 s, or never).
 */
const STOP_BOUND_MS = 10_000;
async function stopTimed(
  child: RunningProcess,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; elapsedMs: number }> {
  const sent = performance.now();
  child.child.kill(signal);
  const exit = await child.exited;
  return { code: exit.code, elapsedMs: performance.now() - sent };
}

function procStatus(pid: number, field: 'Uid' | 'Gid'): number[] {
  const line =
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((candidate) => candidate.startsWith(`${field}:`)) ?? '';
  return line.split(/\s+/).slice(1).filter(Boolean).map(Number);
}

describe('shutdown', () => {
  it('SIGTERM while the source waits for a sample: exit 0 at once (not at the next sample), valid = 0', async () => {
    const unit = UNITS.term;
    const child = startFixed(['--offset', '0.25', '--interval', '60', '--unit', String(unit), '-v']);
    await child.waitForLine(new RegExp(`^debug sample published sinks=shm:${unit}`), { timeoutMs: 15_000 });
    expect(readSegment(unit)?.valid).toBe(1);
    const { code, elapsedMs } = await stopTimed(child, 'SIGTERM');
    expect(code, child.output()).toBe(0);
    expect(elapsedMs).toBeLessThan(STOP_BOUND_MS);
    expect(readSegment(unit)?.valid).toBe(0);
    expect(child.stderrLines).toContain('info stopping reason="received SIGTERM"');
    expect(child.stderrLines).toContain(`info segment detached unit=${unit} published=1`);
  });

  it('SIGINT, a source ignoring it holding a timer: exit 0 after the grace (not the timer); json logs', async () => {
    const unit = UNITS.int;
    const child = startFeeder(['--unit', String(unit), '--source', 'stuck', '--log-format', 'json']);
    await child.waitForLine(/^fixture waiting$/, { timeoutMs: 15_000 });
    await waitFor(() => (readSegment(unit)?.valid === 1 ? true : undefined), {
      what: 'the sample',
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    const { code, elapsedMs } = await stopTimed(child, 'SIGINT');
    expect(code, child.output()).toBe(0);
    expect(elapsedMs).toBeLessThan(STOP_BOUND_MS);
    expect(readSegment(unit)?.valid).toBe(0);
    const events = child.stderrLines
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: string; event: string; time: string });
    expect(events.map((event) => event.event)).toEqual(['segment attached', 'stopping', 'segment detached']);
  });
});

// The privilege drop needs root: without it the suite skips with the reason, or fails
// under HTNTP_E2E=required.
function describeAsRoot(title: string, body: () => void): void {
  describeIf(title, 'runs as root', process.getuid?.() === 0 ? undefined : 'needs root (setuid/setgid)', body);
}

describeAsRoot('--user', () => {
  it('runs as that user after the attach, keeps publishing, and reattaches as that user after ipcrm', async () => {
    const unit = UNITS.user;
    const nobody = {
      uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })),
    };
    const child = startFixed([...fastFeeder(unit), '--user', 'nobody']);
    await child.waitForLine(/^info privileges dropped user=nobody/, { timeoutMs: 15_000 });
    expect(procStatus(child.pid, 'Uid')).toEqual([nobody.uid, nobody.uid, nobody.uid, nobody.uid]);
    expect(procStatus(child.pid, 'Gid')).toEqual([nobody.gid, nobody.gid, nobody.gid, nobody.gid]);
    // still publishing: count moves on by several samples after the drop
    const countAfterDrop = readSegment(unit)?.count ?? 0;
    await waitForCount(unit, countAfterDrop + 6, 'count to advance after the privilege drop');
    execFileSync('ipcrm', ['-M', `0x${keyOfUnit(unit).toString(16)}`]);
    await child.waitForLine(new RegExp(`^info segment reattached unit=${unit} .*created=true`), { timeoutMs: 20_000 });
    const fresh = await waitFor(
      () => {
        const snapshot = readSegment(unit);
        return snapshot !== undefined && snapshot.count >= 6 && snapshot.valid === 1 ? snapshot : undefined;
      },
      { what: 'samples in the new segment', timeoutMs: 20_000, intervalMs: 50 },
    );
    expect(fresh.mode).toBe(1);
    expect(creatorOf(unit)).toBe(nobody.uid);
    const { code } = await stopTimed(child, 'SIGTERM');
    expect(code, child.output()).toBe(0);
  });

  it('a 0600 segment stays writable after the drop; its removal is seen (by key) and a new one attached', async () => {
    const unit = UNITS.private;
    const child = startFixed([...fastFeeder(unit), '--perm', '0600', '--user', 'nobody', '-v']);
    await child.waitForLine(/^info privileges dropped user=nobody/, { timeoutMs: 15_000 });
    await child.waitForLine(new RegExp(`^debug segment watched by key unit=${unit} `), { timeoutMs: 20_000 });
    const countAfterDrop = readSegment(unit)?.count ?? 0;
    await waitForCount(unit, countAfterDrop + 6, 'count to advance in the 0600 segment after the drop');
    // IPC_STAT is refused now; the key lookup still sees the removal.
    execFileSync('ipcrm', ['-M', `0x${keyOfUnit(unit).toString(16)}`]);
    await child.waitForLine(new RegExp(`^warn segment removed unit=${unit} `), { timeoutMs: 20_000 });
    await child.waitForLine(new RegExp(`^info segment reattached unit=${unit} .*created=true`), { timeoutMs: 20_000 });
    await waitForCount(unit, 6, 'samples in the new segment');
    expect(creatorOf(unit)).toBe(Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })));
    const { code } = await stopTimed(child, 'SIGTERM');
    expect(code, child.output()).toBe(0);
    expect(readSegment(unit)).toMatchObject({ valid: 0, leap: 3 });
  });

  it('refuses to run when the user does not exist (exit 1, before any segment is created)', async () => {
    const unit = UNITS.user;
    const child = startFixed(['--offset', '0.25', '--unit', String(unit), '--user', 'no-such-user-htntp']);
    const exit = await child.exited;
    expect(exit.code).toBe(1);
    expect(child.output()).toMatch(/no such user: no-such-user-htntp/);
    expect(readSegment(unit)).toBeUndefined();
  });
});

/** The uid that created the unit's segment (IPC_STAT cuid). */
function creatorOf(unit: number): number {
  const shm = new NtpdShm({ unit, create: false, readOnly: true });
  try {
    return shm.stat().cuid;
  } finally {
    shm.detach();
  }
}

describe('--metrics', () => {
  it('serves the feeder metrics on a loopback port', async () => {
    const unit = UNITS.metrics;
    const child = startFixed([...fastFeeder(unit), '--metrics', '127.0.0.1:0']);
    const line = await child.waitForLine(/^info metrics listening url=/, { timeoutMs: 15_000 });
    const url = line.replace(/^.*url=/, '');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await waitFor(
      async () => {
        const body = await (await fetch(url)).text();
        return new RegExp(`^htntp_samples_published_total\\{unit="${unit}"\\} ([3-9]|\\d\\d+)$`, 'm').test(body)
          ? body
          : undefined;
      },
      { what: 'three published samples in the metrics', timeoutMs: 20_000 },
    );
    expect(text).toMatch(new RegExp(`^htntp_offset_seconds\\{unit="${unit}"\\} 0\\.25$`, 'm'));
    expect(text).toMatch(new RegExp(`^htntp_info\\{source="fixed",unit="${unit}"\\} 1$`, 'm'));
    expect(text).toMatch(new RegExp(`^process_cpu_seconds_total\\{unit="${unit}"\\} `, 'm'));
    const { code } = await stopTimed(child, 'SIGTERM');
    expect(code, child.output()).toBe(0);
  });
});
