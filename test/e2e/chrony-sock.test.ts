// End to end with the real chronyd (-x: never touches the clock) reading `refclock SOCK`:
// fixed, http and gps feeders over SOCK only (no segment made), chronyd restarted under a
// running feeder (time from the socket reappearing to the feeder sending again, measured),
// chronyd started after the feeder, and a non-root feeder against chronyd's root-only socket.
import { watch } from 'node:fs';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { cleanupsAfterEach } from '../helpers/cleanups.js';
import { monotonicRaw } from '../../src/clock.js';
import { refclockLines, type RefclockConfigOptions } from '../../src/refclock-config.js';
import { diffSeconds, type Timespec } from '../../src/time.js';
import {
  describeE2e,
  findTool,
  startChronyd,
  waitFor,
  waitForChronySelection,
  type Chronyd,
  type ChronySource,
} from '../helpers/daemons.js';
import { htntpLines } from '../helpers/cli.js';
import {
  flags,
  htntpBin,
  makeTempDir,
  startHtntp,
  startProcess,
  type RunningProcess,
  type TempDir,
} from '../helpers/process.js';
import { closeAll, startTimeServers, type TimeServer } from '../helpers/http/servers.js';
import { PacedWriter, startPtyPair } from '../helpers/gps/pty.js';
import { burst } from '../helpers/gps/sentences.js';

/** The tolerance on what chronyd reports for a -1 s reference. */
const TOLERANCE = 0.002;
/** The promise: samples again within 2 s of the socket reappearing. */
const RESUME_BOUND_SECONDS = 2;

let temp: TempDir;
const cleanups = cleanupsAfterEach();
beforeAll(async () => {
  temp = await makeTempDir('chrony-sock');
  // A non-root feeder must reach the socket's directory (the socket itself stays root-only).
  await chmod(temp.path, 0o755);
});
afterAll(async () => {
  await temp?.remove();
});

let socketCount = 0;
/** A fresh socket path in the shared temp dir. */
async function socketPath(): Promise<{ dir: string; path: string }> {
  socketCount += 1;
  const dir = join(temp.path, `s${socketCount}`);
  await mkdir(dir);
  await chmod(dir, 0o755);
  return { dir, path: join(dir, 'htntp.sock') };
}

/**
 * poll 2: a SOCK reader gets the samples as they are sent (1 a second here), and chrony
 * then wants a few per poll (with poll 0 it took only every third or so and never selected).
 */
function sockLine(path: string, refid: string, extra: Partial<RefclockConfigOptions> = {}): string {
  const [line] = refclockLines({ daemon: 'chrony', unit: 2, sock: path, refid, poll: 2, precision: -10, ...extra });
  return line!;
}

async function chronyd(lines: string[]): Promise<Chronyd> {
  const daemon = await startChronyd({ lines });
  cleanups.push(() => daemon.stop());
  return daemon;
}

/** chronyd reading a SOCK refclock (refid SOCK) at a new socket path. */
async function chronydOnNewSocket(): Promise<{ path: string; daemon: Chronyd }> {
  const { path } = await socketPath();
  return { path, daemon: await chronyd([sockLine(path, 'SOCK')]) };
}

/** The real CLI; `asNobody`: started as user nobody (setpriv), as a non-root service would be. */
function feeder(args: string[], options: { asNobody?: boolean } = {}): RunningProcess {
  const child = options.asNobody
    ? startProcess(findTool('setpriv')!, [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        process.execPath,
        htntpBin,
        ...args,
      ])
    : startHtntp(args);
  cleanups.push(() => child.stop('SIGTERM', 3_000));
  return child;
}

/** The source once chronyd has taken at least `samples` samples from it. */
async function sampled(daemon: Chronyd, refid: string, samples: number, timeoutMs = 20_000): Promise<ChronySource> {
  return waitFor(
    async () => {
      const source = (await daemon.sources()).find((candidate) => candidate.name === refid);
      const reach = source?.reach ?? 0;
      let count = 0;
      for (let bits = reach; bits > 0; bits >>= 1) count += bits & 1;
      return source !== undefined && count >= samples && source.lastRx !== undefined ? source : undefined;
    },
    { what: `chronyd to take ${samples} samples from ${refid}`, timeoutMs, intervalMs: 250 },
  );
}

/** Segments whose creator is `pid` (/proc/sysvipc/shm: key shmid perms size cpid ...). */
async function segmentsCreatedBy(pid: number): Promise<string[]> {
  const table = await readFile('/proc/sysvipc/shm', 'utf8');
  return table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => Number(fields[4]) === pid)
    .map((fields) => fields[0]!);
}

/**
 * Resolves with the raw-clock time the next stderr line matching `pattern` arrives (lines already there do not count).
 */
function nextLine(
  process: RunningProcess,
  pattern: RegExp,
  timeoutMs = 10_000,
): Promise<{ line: string; at: Timespec }> {
  const from = process.stderrLines.length;
  return new Promise((resolve, reject) => {
    const stream = process.child.stderr!;
    const check = (): void => {
      const line = process.stderrLines.slice(from).find((candidate) => pattern.test(candidate));
      if (line === undefined) return;
      done();
      resolve({ line, at: monotonicRaw() });
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no stderr line matched ${pattern} within ${timeoutMs} ms\n${process.output()}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
    };
    // The helper's own listener came first, so the line is in stderrLines when this runs.
    const onData = (): void => check();
    stream.on('data', onData);
    check();
  });
}

/** Raw-clock time the file `name` appears in `dir` (an inotify event, not a poll). */
function appearance(dir: string, name: string, timeoutMs = 15_000): { at: Promise<Timespec>; close(): void } {
  const watcher = watch(dir);
  const at = new Promise<Timespec>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not appear in ${dir}`)), timeoutMs);
    watcher.on('change', (_type, file) => {
      if (file === name) {
        clearTimeout(timer);
        resolve(monotonicRaw());
        watcher.close();
      }
    });
  });
  return { at, close: () => watcher.close() };
}

/** The real CLI once it has connected its socket. */
async function connectedFeeder(args: string[]): Promise<RunningProcess> {
  const fixed = feeder(args);
  await fixed.waitForLine(/^info socket connected sink=sock:/, { stream: 'stderr', timeoutMs: 15_000 });
  return fixed;
}

describeE2e('htntp fixed --sock read by chronyd -x', ['chronyd'], () => {
  it(
    'chronyd reports the local clock 1.000 s fast (±2 ms); no SHM segment is created',
    { timeout: 90_000 },
    async () => {
      const { path, daemon } = await chronydOnNewSocket();
      const fixed = await connectedFeeder(['fixed', '--offset', '-1', '--sock', path, '--verbose']);
      const tracking = await waitForChronySelection(daemon, 'SOCK');
      console.info(
        `chronyd tracking over SOCK: System time ${tracking.systemTimeFast.toFixed(9)} s fast, ` +
          `stratum ${tracking.stratum}`,
      );
      expect(tracking.systemTimeFast).toBeGreaterThan(1 - TOLERANCE);
      expect(tracking.systemTimeFast).toBeLessThan(1 + TOLERANCE);
      expect(await segmentsCreatedBy(fixed.pid)).toEqual([]);
      expect(fixed.stderrLines.some((line) => line.includes('segment attached'))).toBe(false);
      expect(fixed.stderrLines.some((line) => line.startsWith('debug sample published sinks=sock:'))).toBe(true);
    },
  );

  it('htntp config --sock prints the line this chronyd took', async () => {
    const options = { daemon: 'chrony', sock: '/run/chrony.htntp.sock', refid: 'HTTP', delay: '0.2', precision: '-10' };
    expect(await htntpLines(['config', ...flags(options)])).toEqual([
      'refclock SOCK /run/chrony.htntp.sock refid HTTP poll 4 offset 0.0 delay 0.2 precision 0.0009765625',
    ]);
  });
});

describeE2e('chronyd comes and goes under a running feeder', ['chronyd'], () => {
  it(
    'restarted three times: samples again within 2 s of the socket reappearing, each time',
    { timeout: 120_000 },
    async () => {
      const { dir, path } = await socketPath();
      let daemon = await chronyd([sockLine(path, 'SOCK')]);
      const fixed = await connectedFeeder(['fixed', '--offset', '-1', '--sock', path]);
      await sampled(daemon, 'SOCK', 2);
      const resumes: number[] = [];
      for (let restart = 0; restart < 3; restart += 1) {
        await daemon.stop();
        // Stopped: the feeder notices at its next sample, once.
        await nextLine(fixed, /^warn socket unavailable .*error=(ENOENT|ECONNREFUSED)/, 5_000);
        const appeared = appearance(dir, 'htntp.sock');
        const back = nextLine(fixed, /^info socket (re)?connected /, 15_000);
        daemon = await chronyd([sockLine(path, 'SOCK')]);
        const [socketAt, sent] = await Promise.all([appeared.at, back]);
        resumes.push(diffSeconds(sent.at, socketAt));
        await sampled(daemon, 'SOCK', 1);
      }
      console.info(
        `SOCK resume after chronyd restart (s from socket creation to the feeder ` +
          `sending): ${resumes.map((value) => value.toFixed(3)).join(' ')}`,
      );
      for (const resume of resumes) {
        expect(resume).toBeGreaterThanOrEqual(0);
        expect(resume).toBeLessThan(RESUME_BOUND_SECONDS);
      }
      // Once per change of state: one warning per outage, never one per lost sample.
      expect(fixed.stderrLines.filter((line) => line.startsWith('warn socket unavailable')).length).toBe(3);
      expect(fixed.exit()).toBeUndefined();
    },
  );

  it('chronyd started after the feeder: samples once it is up', { timeout: 60_000 }, async () => {
    const { path } = await socketPath();
    const fixed = feeder(['fixed', '--offset', '-1', '--sock', path]);
    await fixed.waitForLine(/^warn socket unavailable .*error=ENOENT .*hint=/, { stream: 'stderr', timeoutMs: 15_000 });
    const back = nextLine(fixed, /^info socket connected .*after=ENOENT/, 20_000);
    const daemon = await chronyd([sockLine(path, 'SOCK')]);
    await back;
    const source = await sampled(daemon, 'SOCK', 2);
    expect(source.measuredOffset).toBeCloseTo(1, 2); // chrony: positive = local clock ahead
  });
});

describeE2e("a non-root feeder and chronyd's root-only socket", ['chronyd', 'setpriv'], () => {
  it(
    'EACCES: logged once with the hint, retried, never fatal; SIGTERM still exits 0',
    { timeout: 60_000 },
    async () => {
      const { path, daemon } = await chronydOnNewSocket();
      const fixed = feeder(['fixed', '--offset', '-1', '--sock', path, '--interval', '0.2', '--verbose'], {
        asNobody: true,
      });
      const line = await fixed.waitForLine(/^warn socket unavailable /, { stream: 'stderr', timeoutMs: 15_000 });
      expect(line).toContain('error=EACCES');
      expect(line).toMatch(/hint=".*chrony\.service\.d\/htntp-sock\.conf.*chgrp htntp/);
      // Retried past the backoff, quietly (debug): still one warning, still running.
      await fixed.waitForLine(/^debug socket retry failed .*error=EACCES/, { stream: 'stderr', timeoutMs: 10_000 });
      await nextLine(fixed, /^debug socket retry failed .*error=EACCES/, 10_000);
      expect(fixed.exit()).toBeUndefined();
      const exit = await fixed.stop('SIGTERM', 3_000);
      expect(exit.code).toBe(0);
      expect(fixed.stderrLines.filter((candidate) => candidate.startsWith('warn socket unavailable')).length).toBe(1);
      expect(fixed.stderrLines.find((candidate) => candidate.startsWith('info socket closed'))).toMatch(
        /sent=0 errors=[1-9]/,
      );
      expect((await daemon.sources()).find((source) => source.name === 'SOCK')?.reach).toBe(0);
    },
  );

  it('root with --user nobody: connected before the drop, chronyd takes the samples', { timeout: 60_000 }, async () => {
    const { path, daemon } = await chronydOnNewSocket();
    const fixed = feeder(['fixed', '--offset', '-1', '--sock', path, '--user', 'nobody']);
    await fixed.waitForLine(/^info privileges dropped/, { stream: 'stderr', timeoutMs: 15_000 });
    const source = await sampled(daemon, 'SOCK', 2);
    expect(source.measuredOffset).toBeCloseTo(1, 2);
  });
});

describeE2e('htntp http --sock read by chronyd -x', ['chronyd'], () => {
  let servers: TimeServer[] = [];
  afterEach(async () => {
    await closeAll(servers);
  });

  it("chronyd measures the servers' offset within the error htntp reports", { timeout: 90_000 }, async () => {
    const truth = -0.75; // server clock - local clock
    servers = await startTimeServers([{ offset: truth }, { offset: truth }, { offset: truth }]);
    const { path } = await socketPath();
    const daemon = await chronyd([sockLine(path, 'HTTP', { precision: -7 })]);
    const http = feeder([
      'http',
      '--sock',
      path,
      '--interval',
      '60',
      '--probes',
      '6',
      ...servers.map((server) => server.url),
    ]);
    const estimate = await http.waitForLine(/^info http estimate /, { stream: 'stderr', timeoutMs: 30_000 });
    const error = Number(/ error=(\S+)/.exec(estimate)?.[1]);
    const source = await sampled(daemon, 'HTTP', 2, 30_000);
    console.info(
      `chronyd over SOCK from http: measured ${source.measuredOffset.toFixed(6)} s (truth ${-truth}, htntp ` +
        `error ${error.toFixed(6)})`,
    );
    expect(Math.abs(source.measuredOffset + truth)).toBeLessThanOrEqual(error + TOLERANCE);
    expect(await segmentsCreatedBy(http.pid)).toEqual([]);
  });
});

describeE2e('htntp gps --sock read by chronyd -x', ['chronyd', 'socat'], () => {
  it('chronyd measures receive - clock = latency - offset', { timeout: 60_000 }, async () => {
    const latency = 0.3; // the simulated receiver writes each burst 300 ms after the second
    const offset = 0.25;
    const { dir, path } = await socketPath();
    const pair = await startPtyPair(findTool('socat')!, dir);
    cleanups.push(() => pair.stop());
    const daemon = await chronyd([sockLine(path, 'GPS')]);
    const gps = feeder([
      'gps',
      '--device',
      pair.devicePath,
      '--sock',
      path,
      '--offset',
      String(offset),
      '--min-fixes',
      '2',
      '--no-leapfile',
    ]);
    await gps.waitForLine(/device open/, { stream: 'stderr', timeoutMs: 15_000 });
    const paced = new PacedWriter(pair.writerPath, {
      latency,
      burst: (second) => ({ lines: burst(second, { valid: true }), valid: true }),
    });
    cleanups.push(async () => paced.stop());
    paced.start();
    const source = await sampled(daemon, 'GPS', 3, 30_000);
    expect(source.measuredOffset).toBeGreaterThan(latency - offset - 0.001);
    expect(source.measuredOffset).toBeLessThan(latency - offset + 0.05);
    expect(await segmentsCreatedBy(gps.pid)).toEqual([]);
  });
});
