// `htntp doctor` against the real readers: each fault an operator meets, reproduced with a
// real chronyd -x or ntpsec ntpd and real `htntp fixed` feeders, and named by doctor with
// its fix.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runDoctor, type DoctorOptions, type UnitDiagnosis } from '../../src/doctor/index.js';
import { presetOptions, refclockLines } from '../../src/refclock-config.js';
import { keyOfUnit } from '../../src/shm.js';
import { cBuild } from '../helpers/cc.js';
import { describeE2e, findTool, startChronyd, startNtpd, waitFor, type Chronyd } from '../helpers/daemons.js';
import { flags, htntpBin, makeTempDir, startHtntp, startProcess, type RunningProcess } from '../helpers/process.js';
import { ntpqCommand } from '../helpers/tools.js';
import { units } from '../helpers/units.js';

const UNIT = {
  healthy: units.doctorHealthy,
  removed: units.doctorRemoved,
  size: units.doctorSize,
  private: units.doctorPrivate,
  unconfigured: units.doctorUnconfigured,
  disagree: units.doctorDisagree,
  absent: units.doctorAbsent,
  ntpd: units.doctorNtpd,
  mismatchRead: units.doctorMismatchRead,
  mismatchWrite: units.doctorMismatchWrite,
  ntpq: units.doctorNtpq,
};

/** The extracted chronyc: doctor is given its path, never left to PATH. */
const chronyc = (): string => findTool('chronyc') ?? 'chronyc';
const ALL = Object.values(UNIT);

const cleanups: (() => Promise<unknown>)[] = [];
function cleanSegments(): void {
  // By key: NtpdShm (removeSegment) cannot attach the wrong-size one.
  for (const unit of ALL) spawnSync('ipcrm', ['-M', String(keyOfUnit(unit))], { stdio: 'ignore' });
}
beforeEach(cleanSegments);
afterEach(async () => {
  await Promise.all(
    cleanups
      .splice(0)
      .reverse()
      .map((cleanup) => cleanup()),
  );
  cleanSegments();
});

/** A private directory removed after the test. */
async function tempDir(prefix: string): ReturnType<typeof makeTempDir> {
  const temp = await makeTempDir(prefix);
  cleanups.push(() => temp.remove());
  return temp;
}

async function startFixed(unit: number, offset = -1): Promise<RunningProcess> {
  const feeder = startHtntp(['fixed', ...flags({ offset, unit, interval: '0.25', precision: '-10' })]);
  cleanups.push(() => feeder.stop('SIGTERM', 3_000));
  await feeder.waitForLine(/^info segment attached/, { stream: 'stderr', timeoutMs: 15_000 });
  return feeder;
}

async function chronydWith(lines: string[]): Promise<Chronyd> {
  const chronyd = await startChronyd({ lines });
  cleanups.push(() => chronyd.stop());
  return chronyd;
}

/** doctor pointed at this chronyd's config (and nothing of the host's). */
function chronyOptions(chronyd: Chronyd, units: number[]): DoctorOptions {
  return { units, configPaths: { chrony: [chronyd.confPath], ntp: [] }, chronyc: chronyc() };
}

/** The doctor CLI on `target` (a unit or a socket), pointed like chronyOptions() at this chronyd's config alone. */
function doctorCli(chronyd: Chronyd, target: { unit: number } | { sock: string }): RunningProcess {
  const pointed = { 'chrony-conf': chronyd.confPath, 'ntp-conf': '/dev/null', chronyc: chronyc() };
  return startHtntp(['doctor', ...flags({ ...target, ...pointed })]);
}

function only(report: { units: UnitDiagnosis[] }, unit: number): UnitDiagnosis {
  const diagnosis = report.units.find((entry) => entry.unit === unit);
  if (diagnosis === undefined) throw new Error(`no diagnosis of unit ${unit}: ${JSON.stringify(report)}`);
  return diagnosis;
}

const codes = (diagnosis: UnitDiagnosis): string[] => diagnosis.findings.map((finding) => finding.code);

/** chronyd has taken at least one sample of a SOCK refid (reach not 0). */
async function sockReached(chronyd: Chronyd, refid: string): Promise<void> {
  await waitFor(
    async () =>
      (await chronyd.sources()).find((source) => source.name === refid && source.reach !== 0) ? true : undefined,
    {
      what: `chronyd to take a sample of ${refid}`,
      timeoutMs: 30_000,
      intervalMs: 250,
    },
  );
}

async function reached(chronyd: Chronyd, refid: string): Promise<void> {
  await waitFor(
    async () =>
      (await chronyd.sources()).find((source) => source.name === refid && (source.reach & 0o3) === 0o3)
        ? true
        : undefined,
    {
      what: `chronyd to take samples of ${refid}`,
      timeoutMs: 30_000,
      intervalMs: 250,
    },
  );
}

describeE2e('htntp doctor with chronyd -x', ['chronyd'], () => {
  it(
    'healthy: fed by htntp, read by chronyd, chronyd agrees with what is published; exit 0 from the CLI',
    { timeout: 60_000 },
    async () => {
      const unit = UNIT.healthy;
      await startFixed(unit);
      const chronyd = await chronydWith(
        refclockLines({ daemon: 'chrony', unit, refid: 'FIX', poll: 0, precision: -10 }),
      );
      await reached(chronyd, 'FIX');
      const diagnosis = only(await runDoctor(chronyOptions(chronyd, [unit])), unit);
      expect(diagnosis, JSON.stringify(diagnosis)).toMatchObject({ verdict: 'healthy', segment: 'present', size: 96 });
      expect(diagnosis.processes.map((process) => [process.name, process.role]).sort()).toEqual([
        ['chronyd', 'reader'],
        ['htntp fixed', 'feeder'],
      ]);
      expect(diagnosis.chrony?.name).toBe('FIX');
      // No disagreement found: chronyd's offset, with its pending correction, is what htntp publishes.
      expect(codes(diagnosis).filter((code) => code.startsWith('chrony'))).toEqual([]);
      const cli = doctorCli(chronyd, { unit });
      expect((await cli.exited).code, cli.output()).toBe(0);
      expect(cli.stdoutLines[0]).toMatch(
        new RegExp(`^unit ${unit} \\(key 0x[0-9a-f]+\\): ok: fed by htntp fixed\\[\\d+\\]; read by chronyd\\[\\d+\\]`),
      );
    },
  );

  it(
    'the segment removed (ipcrm) under chronyd: chronyd named as reading a removed segment, restart it',
    { timeout: 60_000 },
    async () => {
      const unit = UNIT.removed;
      const feeder = await startFixed(unit);
      const chronyd = await chronydWith(
        refclockLines({ daemon: 'chrony', unit, refid: 'RMV', poll: 0, precision: -10 }),
      );
      await reached(chronyd, 'RMV');
      execFileSync('ipcrm', ['-M', String(keyOfUnit(unit))]);
      await feeder.waitForLine(/^info segment reattached/, { stream: 'stderr', timeoutMs: 10_000 });
      const diagnosis = only(await runDoctor(chronyOptions(chronyd, [unit])), unit);
      expect(diagnosis.verdict).toBe('problem');
      expect(diagnosis.summary).toMatch(
        new RegExp(`chronyd\\[${chronyd.process.pid}\\] still reads a removed segment`),
      );
      expect(diagnosis.fix).toMatch(/restart chronyd/);
      expect(codes(diagnosis)).toEqual(expect.arrayContaining(['reader-on-removed', 'no-reader']));
    },
  );

  it(
    'a segment of the wrong size (4096 bytes) that chronyd attached: the size, and the ipcrm fix',
    { timeout: 60_000 },
    async () => {
      const unit = UNIT.size;
      execFileSync(cBuild().compile('shm_create.c'), [String(unit), '4096', '666']);
      const chronyd = await chronydWith(refclockLines({ daemon: 'chrony', unit, refid: 'BIG', poll: 0 }));
      // A feeder refuses it outright, before writing anything.
      const feeder = startHtntp(['fixed', '--unit', String(unit), '--offset', '-1']);
      expect((await feeder.exited).code).toBe(1);
      expect(feeder.stderrLines.join('\n')).toMatch(/EINVAL.*not 96 bytes.*ipcrm -M/);
      const report = await runDoctor(chronyOptions(chronyd, [unit]));
      const diagnosis = only(report, unit);
      expect(report.exitCode).toBe(1);
      expect(diagnosis).toMatchObject({ verdict: 'problem', size: 4096 });
      expect(diagnosis.summary).toMatch(/4096 bytes, not 96/);
      expect(diagnosis.fix).toContain(`ipcrm -M 0x${keyOfUnit(unit).toString(16)}`);
    },
  );

  it(
    'chronyd created the unit 0600 and nothing writes it: never written, read by chronyd, private',
    { timeout: 60_000 },
    async () => {
      const unit = UNIT.private;
      const chronyd = await chronydWith(refclockLines({ daemon: 'chrony', unit, refid: 'PRV', poll: 0, perm: 0o600 }));
      await waitFor(
        () =>
          spawnSync('ipcs', ['-m'])
            .stdout.toString()
            .includes(`0x${keyOfUnit(unit).toString(16)}`)
            ? true
            : undefined,
        { what: 'chronyd to create the segment', timeoutMs: 10_000 },
      );
      const diagnosis = only(await runDoctor(chronyOptions(chronyd, [unit])), unit);
      expect(diagnosis).toMatchObject({ verdict: 'problem', perm: '0600' });
      expect(diagnosis.sample).toMatchObject({ written: false, offset: null, age: null });
      // A feeder another test file runs meanwhile may write a unit this chrony.conf does not
      // name: the doctor then rightly names the wrong unit in one of them, which explains the rest.
      if (codes(diagnosis).includes('unit-mismatch')) {
        expect(diagnosis.summary).toMatch(
          new RegExp(`^chronyd reads unit ${unit} \\(.*\\), htntp \\w+\\[\\d+\\] writes unit \\d+: `),
        );
        return;
      }
      expect(diagnosis.summary).toMatch(
        new RegExp(`nothing has ever written unit ${unit} \\(read by chronyd\\[${chronyd.process.pid}\\]\\)`),
      );
      expect(codes(diagnosis)).toContain('private');
    },
  );

  it(
    'chronyd reads another unit than its config file now says: the offsets disagree',
    { timeout: 60_000 },
    async () => {
      const read = UNIT.healthy;
      const configured = UNIT.disagree;
      await startFixed(read, -1);
      await startFixed(configured, 0.5);
      const chronyd = await chronydWith(
        refclockLines({ daemon: 'chrony', unit: read, refid: 'MIX', poll: 0, precision: -10 }),
      );
      await reached(chronyd, 'MIX');
      // The file as edited since chronyd started: MIX moved to the other unit.
      const temp = await tempDir('doctor-conf');
      const edited = join(temp.path, 'chrony.conf');
      await writeFile(
        edited,
        [
          `bindcmdaddress ${chronyd.socketPath}`,
          ...refclockLines({ daemon: 'chrony', unit: configured, refid: 'MIX', poll: 0, precision: -10 }),
          '',
        ].join('\n'),
      );
      const diagnosis = only(
        await runDoctor({ units: [configured], configPaths: { chrony: [edited], ntp: [] }, chronyc: chronyc() }),
        configured,
      );
      expect(diagnosis.verdict).toBe('problem');
      expect(codes(diagnosis)).toEqual(expect.arrayContaining(['chrony-disagrees', 'no-reader']));
      expect(diagnosis.findings.find((finding) => finding.code === 'chrony-disagrees')?.message).toMatch(
        /chronyd sees refid MIX at -?[01]\.\d+ s .* but -?[01]\.500000 s is published/,
      );
    },
  );
});

describeE2e('htntp doctor without a daemon', [], () => {
  it(
    'fed but not configured, configured but not fed: one unit mismatch; a second feeder is refused',
    { timeout: 60_000 },
    async () => {
      const temp = await tempDir('doctor-conf');
      const conf = join(temp.path, 'chrony.conf');
      await writeFile(
        conf,
        `${refclockLines(presetOptions('gps', { daemon: 'chrony', unit: UNIT.absent })).join('\n')}\n`,
      );
      await startFixed(UNIT.unconfigured);
      // A second feeder on the fed unit is refused before it writes (doctor names two writers
      // that something else started: see the unit tests).
      const second = startHtntp(['fixed', '--offset', '1', '--unit', String(UNIT.unconfigured)]);
      expect((await second.exited).code).toBe(1);
      expect(second.stderrLines.join('\n')).toMatch(/already fed by pid \d+/);
      const report = await runDoctor({
        units: [UNIT.unconfigured, UNIT.absent],
        configPaths: { chrony: [conf], ntp: [] },
      });
      expect(report.exitCode).toBe(1);
      // One configured unit nothing feeds, one fed unit nothing reads: one fault, named on both.
      const absent = only(report, UNIT.absent);
      expect(absent).toMatchObject({ verdict: 'problem', segment: 'absent' });
      expect(absent.summary).toMatch(
        new RegExp(
          `^chronyd reads unit ${UNIT.absent} \\(${conf}:1\\), htntp fixed\\[\\d+\\] writes ` +
            `unit ${UNIT.unconfigured}: `,
        ),
      );
      expect(codes(absent)).toContain('unit-mismatch');
      expect(codes(absent)).not.toContain('absent');
      const fed = only(report, UNIT.unconfigured);
      expect(fed.verdict).toBe('problem');
      expect(
        fed.processes.filter((process) => process.role === 'feeder'),
        JSON.stringify(fed.processes),
      ).toHaveLength(1);
      expect(fed.summary).toBe(absent.summary);
      expect(codes(fed)).not.toContain('not-configured');
    },
  );
});

describeE2e('htntp doctor with ntpsec ntpd', ['ntpd'], () => {
  it(
    'ntpd is seen attached as the reader; a segment removed under it is named with the restart fix',
    { timeout: 60_000 },
    async () => {
      const unit = UNIT.ntpd;
      const feeder = await startFixed(unit);
      const ntpd = await startNtpd({ lines: refclockLines({ daemon: 'ntpsec', unit, refid: 'NTF', poll: 1 }) });
      cleanups.push(() => ntpd.stop());
      await ntpd.waitForPeerstats(unit, 1);
      const options: DoctorOptions = {
        units: [unit],
        configPaths: { chrony: [], ntp: [ntpd.confPath] },
        ntpq: ['/nonexistent/ntpq'],
      };
      const before = only(await runDoctor(options), unit);
      expect(before.processes.map((process) => [process.name, process.role]).sort()).toEqual([
        ['htntp fixed', 'feeder'],
        ['ntpd', 'reader'],
      ]);
      expect(before.configured).toMatchObject([{ daemon: 'ntpd', unit, refid: 'NTF', file: ntpd.confPath }]);
      // ntpq cannot be run here: that part is unknown (exit 2), never a false "healthy".
      expect(before.verdict, JSON.stringify(before)).toBe('unknown');
      expect(codes(before)).toEqual(['ntpd-unreachable']);
      execFileSync('ipcrm', ['-M', String(keyOfUnit(unit))]);
      await feeder.waitForLine(/^info segment reattached/, { stream: 'stderr', timeoutMs: 10_000 });
      const after = only(await runDoctor(options), unit);
      expect(after.verdict).toBe('problem');
      expect(after.summary).toMatch(new RegExp(`ntpd\\[${ntpd.process.pid}\\] still reads a removed segment`));
      expect(after.fix).toMatch(/restart ntpd/);
    },
  );
});

describeE2e('htntp doctor --sock with chronyd -x', ['chronyd'], () => {
  it(
    "chronyd's SOCK socket: held by chronyd and configured; a leftover file nobody listens on; no socket at all",
    { timeout: 60_000 },
    async () => {
      const temp = await tempDir('doctor-sock');
      const path = join(temp.path, 'htntp.sock');
      const chronyd = await chronydWith([`refclock SOCK ${path} refid SCK poll 1`]);
      const options: DoctorOptions = {
        socks: [path],
        configPaths: { chrony: [chronyd.confPath], ntp: [] },
        chronyc: chronyc(),
      };
      const feeder = startHtntp(['fixed', '--offset', '-1', '--sock', path, '--interval', '0.25']);
      cleanups.push(() => feeder.stop('SIGTERM', 3_000));
      await sockReached(chronyd, 'SCK');
      const live = (await runDoctor(options)).socks[0];
      expect(live, JSON.stringify(live)).toMatchObject({
        path,
        verdict: 'healthy',
        exists: true,
        configured: [{ path, refid: 'SCK' }],
      });
      expect(live?.holders).toEqual([{ pid: chronyd.process.pid, name: 'chronyd' }]);
      expect(live?.feeders.map((entry) => entry.pid)).toEqual([feeder.pid]);
      expect(live?.chrony?.name).toBe('SCK');
      await feeder.stop('SIGTERM', 3_000);
      await chronyd.stop();
      const gone = await runDoctor({ ...options, configPaths: { chrony: [], ntp: [] } });
      expect(gone.exitCode).toBe(1);
      expect(gone.socks[0]?.summary).toBe(`no socket at ${path} and no chrony or ntpd-rs config names it`);
      // A socket file left bound by a process that exited: nothing listens.
      execFileSync('python3', [
        '-c',
        'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind(sys.argv[1])',
        path,
      ]);
      const stale = (await runDoctor({ ...options, configPaths: { chrony: [], ntp: [] } })).socks[0];
      expect(stale).toMatchObject({ verdict: 'problem', exists: true, holders: [] });
      expect(stale?.summary).toMatch(/nothing listens on .*leftover socket file/);
    },
  );
});

/** A feeder of `path` run as nobody: its socket is root's 0755, so it can never send. */
function nobodyFeeder(path: string): RunningProcess {
  const feeder = startProcess(findTool('setpriv')!, [
    '--reuid=nobody',
    '--regid=nogroup',
    '--clear-groups',
    process.execPath,
    htntpBin,
    'fixed',
    '--offset',
    '-1',
    '--sock',
    path,
    '--interval',
    '0.25',
    '--no-leapfile',
  ]);
  cleanups.push(() => feeder.stop('SIGTERM', 3_000));
  return feeder;
}

describeE2e('htntp doctor: SOCK outages are problems, never ok', ['chronyd', 'setpriv'], () => {
  it(
    'a SOCK refclock no feeder reaches: exit 1 with the fix; a feeder denied by the mode: named with the group fix',
    { timeout: 90_000 },
    async () => {
      const temp = await tempDir('doctor-sock-outage');
      execFileSync('chmod', ['755', temp.path]);
      const path = join(temp.path, 'chrony.sock');
      const chronyd = await chronydWith([`refclock SOCK ${path} refid OUT poll 1`]);
      const options: DoctorOptions = {
        socks: [path],
        configPaths: { chrony: [chronyd.confPath], ntp: [] },
        chronyc: chronyc(),
      };
      const alone = await runDoctor(options);
      expect(alone.exitCode).toBe(1);
      const lonely = alone.socks[0];
      expect(lonely?.summary).toBe(`no feeder sends to ${path}: no running htntp has --sock ${path}`);
      expect(lonely?.fix).toContain(`start htntp with --sock ${path}`);
      expect(lonely?.findings.map((finding) => finding.code)).toEqual(
        expect.arrayContaining(['sock-no-feeder', 'chrony-no-samples']),
      );
      const cli = doctorCli(chronyd, { sock: path });
      expect((await cli.exited).code, cli.output()).toBe(1);
      expect(cli.stdoutLines[0]).toMatch(/^sock .*: PROBLEM: no feeder sends to /);

      const feeder = nobodyFeeder(path);
      await feeder.waitForLine(/^warn socket unavailable .*error=EACCES/, { stream: 'stderr', timeoutMs: 15_000 });
      const denied = (await runDoctor(options)).socks[0];
      expect(denied?.verdict).toBe('problem');
      expect(denied?.summary, denied?.summary).toMatch(
        new RegExp(
          `^htntp fixed\\[${feeder.pid}\\] \\(uid 65534, groups 65534\\) may not write ${path} \\(0[0-7]{3} uid 0 ` +
            `gid 0\\): every sample gets EACCES$`,
        ),
      );
      expect(denied?.fix).toContain('chrony.service.d/htntp-sock.conf');
      // The fix as the drop-in applies it: the group, writable. The same feeder then sends.
      execFileSync('chgrp', ['nogroup', path]);
      execFileSync('chmod', ['g+w', path]);
      await feeder.waitForLine(/^info socket connected /, { stream: 'stderr', timeoutMs: 15_000 });
      await sockReached(chronyd, 'OUT');
      const fixed = (await runDoctor(options)).socks[0];
      expect(fixed?.verdict, JSON.stringify(fixed)).toBe('healthy');
    },
  );

  it(
    "chronyc that cannot reach chronyd is 'could not check' (exit 2) in chronyc's own words",
    { timeout: 60_000 },
    async () => {
      const temp = await tempDir('doctor-chronyc');
      const path = join(temp.path, 'chrony.sock');
      const conf = join(temp.path, 'chrony.conf');
      await writeFile(conf, `refclock SOCK ${path} refid NON\n`);
      const report = await runDoctor({
        socks: [path],
        configPaths: { chrony: [conf], ntp: [] },
        chronyc: chronyc(),
        chronySocket: join(temp.path, 'nothing.sock'),
      });
      const finding = report.socks[0]?.findings.find((entry) => entry.code === 'chrony-unreachable');
      expect(finding?.message).toMatch(
        new RegExp(
          '^could not ask chronyd: `\\S+chronyc -n -c -h \\S+nothing\\.sock (sources|tracking)` exited 1: ' +
            '(Could not open connection to daemon|506 Cannot talk to daemon)$',
        ),
      );
      expect(finding?.severity).toBe('unchecked');
      const missing = await runDoctor({
        socks: [path],
        configPaths: { chrony: [conf], ntp: [] },
        chronyc: '/nonexistent/chronyc',
      });
      expect(missing.socks[0]?.findings.find((entry) => entry.code === 'chrony-unreachable')?.message).toMatch(
        /\/nonexistent\/chronyc could not be run \(ENOENT\): give its path with --chronyc PATH or HTNTP_CHRONYC=PATH/,
      );
    },
  );

  it('a mistyped --chrony-conf is an error, not an empty check', async () => {
    const cli = startHtntp(['doctor', '--chrony-conf', '/etc/chrony/chrony.cnof']);
    const exit = await cli.exited;
    expect(exit.code).not.toBe(0);
    expect(cli.output()).toMatch(/chrony\.cnof does not exist/);
  });
});

describeE2e('htntp doctor: chronyd reads one unit, htntp writes another', ['chronyd'], () => {
  it('named as one fault on both units, with one fix', { timeout: 60_000 }, async () => {
    await startFixed(UNIT.mismatchWrite);
    const chronyd = await chronydWith(
      refclockLines({ daemon: 'chrony', unit: UNIT.mismatchRead, refid: 'MIS', poll: 0 }),
    );
    const line =
      (await readFile(chronyd.confPath, 'utf8')).split('\n').findIndex((text) => text.startsWith('refclock SHM')) + 1;
    const report = await runDoctor(chronyOptions(chronyd, [UNIT.mismatchRead, UNIT.mismatchWrite]));
    expect(report.exitCode).toBe(1);
    for (const unit of [UNIT.mismatchRead, UNIT.mismatchWrite]) {
      const diagnosis = only(report, unit);
      expect(diagnosis.summary, JSON.stringify(diagnosis)).toMatch(
        new RegExp(
          `^chronyd reads unit ${UNIT.mismatchRead} \\(.*\\), htntp fixed\\[\\d+\\] writes ` +
            `unit ${UNIT.mismatchWrite}: `,
        ),
      );
      expect(diagnosis.fix).toBe(
        `make them the same: run the feeder with --unit ${UNIT.mismatchRead}, or change ${chronyd.confPath}:${line} ` +
          `to unit ${UNIT.mismatchWrite} and restart chronyd`,
      );
      expect(
        codes(diagnosis).filter((code) => ['absent', 'not-configured', 'never-written', 'no-reader'].includes(code)),
      ).toEqual([]);
    }
  });
});

describeE2e("htntp doctor with ntpsec's own ntpq", ['ntpd', 'ntpq', 'nsenter'], () => {
  it(
    'ntpq answers on loopback: SHM(N) seen by ntpd; with no ntpd to ask: could-not-check, not "restart ntpd"',
    { timeout: 90_000 },
    async () => {
      const unit = UNIT.ntpq;
      await startFixed(unit);
      // ntpq asks "localhost", which a host may resolve to ::1 first (Debian's own /etc/hosts
      // may list only that): ntpd answers on both loopbacks.
      const loopbacks = ['interface listen ::1', 'restrict 127.0.0.1', 'restrict ::1'];
      const ntpd = await startNtpd({
        lines: [...loopbacks, ...refclockLines({ daemon: 'ntpsec', unit, refid: 'NTQ', poll: 1 })],
      });
      cleanups.push(() => ntpd.stop());
      await ntpd.waitForPeerstats(unit, 2);
      const ntpq = ntpqCommand()!;
      // ntpd lives in its own network namespace: ntpq asks it from there.
      const inside = [findTool('nsenter')!, `--net=/proc/${ntpd.process.pid}/ns/net`, ...ntpq];
      const options: DoctorOptions = { units: [unit], configPaths: { chrony: [], ntp: [ntpd.confPath] }, ntpq: inside };
      const diagnosis = await waitFor(
        async () => {
          const candidate = only(await runDoctor(options), unit);
          return candidate.ntpd !== undefined && candidate.ntpd.reach !== 0 ? candidate : undefined;
        },
        { what: 'ntpq to list SHM with reach', timeoutMs: 40_000, intervalMs: 1_000 },
      );
      expect(diagnosis.ntpd?.remote).toBe(`SHM(${unit})`);
      expect(diagnosis.verdict, JSON.stringify(diagnosis)).toBe('healthy');
      // From outside the namespace nothing answers on 127.0.0.1: ntpq says so and exits 0.
      const outside = only(await runDoctor({ ...options, ntpq }), unit);
      expect(outside.verdict).toBe('unknown');
      expect(codes(outside)).toContain('ntpd-unreachable');
      expect(codes(outside)).not.toContain('ntpd-missing');
      expect(outside.findings.find((finding) => finding.code === 'ntpd-unreachable')?.message).toMatch(
        /\*\*\*(Socket error; probably ntpd is not running|Request timed out)/,
      );
    },
  );
});
