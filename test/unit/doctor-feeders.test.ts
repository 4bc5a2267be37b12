// doctor's newer pure parts: feeders and their ids from /proc (a /proc made here), who may
// write a socket, the tool chosen by option or environment, ntpq's "no answer" that exits
// 0, timeouts in words, ntpd-rs's ntp.toml, and one unit mismatch named once.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDaemonConfig, type ConfiguredUnit } from '../../src/doctor/daemon-config.js';
import { chooseTool, queryNtpd } from '../../src/doctor/daemon-query.js';
import { diagnose } from '../../src/doctor/diagnose.js';
import { htntpFeeders, mayWrite, parseStatusIds, type FeederProcess } from '../../src/doctor/processes.js';
import { makeTempDir, type TempDir } from '../helpers/process.js';

let temp: TempDir;
beforeAll(async () => {
  temp = await makeTempDir('doctor-feeders');
});
afterAll(() => temp.remove());

function fakeProcess(root: string, pid: number, comm: string, argv: string[], ids: string): void {
  mkdirSync(join(root, String(pid)), { recursive: true });
  writeFileSync(join(root, String(pid), 'comm'), `${comm}\n`);
  writeFileSync(join(root, String(pid), 'cmdline'), `${argv.join('\0')}\0`);
  writeFileSync(join(root, String(pid), 'status'), `Name:\t${comm}\n${ids}`);
}

describe('htntpFeeders', () => {
  it('finds --sock and --unit in argv and in a retitled command line, with the ids the process runs as now', () => {
    const root = join(temp.path, 'proc');
    fakeProcess(
      root,
      101,
      'node',
      ['node', '/usr/bin/htntp', 'fixed', '--sock', '/run/htntp-sock/a.sock', '--offset', '1'],
      'Uid:\t0\t65534\t65534\t65534\nGid:\t0\t65534\t65534\t65534\nGroups:\t65534 20 \n',
    );
    // An empty Groups line is followed by others, as in the kernel's own file.
    fakeProcess(
      root,
      102,
      'htntp',
      ['htntp http --unit 150 --interval 60 example.org'],
      'Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nNStgid:\t102\n',
    );
    fakeProcess(
      root,
      103,
      'node',
      ['node', 'bin/htntp.js', 'gps', '-d', '/dev/ttyUSB0', '--sock=/run/htntp-sock/g.sock', '-u', '1'],
      'Uid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\nGroups:\t6\n',
    );
    fakeProcess(
      root,
      104,
      'node',
      ['node', 'bin/htntp.js', 'status', '--unit', '2'],
      'Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n',
    );
    fakeProcess(root, 105, 'chronyd', ['/usr/sbin/chronyd'], 'Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n');
    const feeders = htntpFeeders(root).sort((a, b) => a.pid - b.pid);
    expect(feeders).toEqual([
      {
        pid: 101,
        name: 'htntp fixed',
        units: [],
        socks: ['/run/htntp-sock/a.sock'],
        uid: 65534,
        gid: 65534,
        groups: [65534, 20],
      },
      { pid: 102, name: 'htntp http', units: [150], socks: [], uid: 0, gid: 0, groups: [] },
      { pid: 103, name: 'htntp gps', units: [1], socks: ['/run/htntp-sock/g.sock'], uid: 5, gid: 6, groups: [6] },
    ]);
  });

  it('parseStatusIds takes the effective ids (the second column)', () => {
    expect(parseStatusIds('Uid:\t0\t1000\t0\t0\nGid:\t0\t100\t0\t0\nGroups:\t4 24\n')).toEqual({
      uid: 1000,
      gid: 100,
      groups: [4, 24],
    });
    expect(parseStatusIds('Name:\tx\n')).toBeUndefined();
  });
});

describe('mayWrite', () => {
  const socket = { uid: 0, gid: 65534, mode: 0o775 };
  it.each([
    ['root', { uid: 0, gid: 0, groups: [] }, { ...socket, mode: 0o700 }, true],
    ['the owner without w', { uid: 7, gid: 7, groups: [] }, { uid: 7, gid: 7, mode: 0o577 }, false],
    ['in the group by its primary gid', { uid: 65534, gid: 65534, groups: [] }, socket, true],
    ['in the group as a supplementary one', { uid: 9, gid: 9, groups: [65534] }, socket, true],
    ['in the group, group without w', { uid: 9, gid: 65534, groups: [] }, { ...socket, mode: 0o757 }, false],
    ['another user, other without w', { uid: 9, gid: 9, groups: [] }, socket, false],
    ['another user, other with w', { uid: 9, gid: 9, groups: [] }, { ...socket, mode: 0o777 }, true],
  ])('%s', (_name, ids, file, expected) => {
    expect(mayWrite(ids, file)).toBe(expected);
  });
});

describe('chooseTool and the queries', () => {
  it('the option wins over the environment, which wins over PATH', () => {
    expect(chooseTool('ntpq', '--ntpq', 'HTNTP_NTPQ', '/opt/x/ntpq', { HTNTP_NTPQ: '/env/ntpq' }).command).toEqual([
      '/opt/x/ntpq',
    ]);
    expect(
      chooseTool('ntpq', '--ntpq', 'HTNTP_NTPQ', undefined, { HTNTP_NTPQ: 'nsenter -t 5 -n ntpq' }).command,
    ).toEqual(['nsenter', '-t', '5', '-n', 'ntpq']);
    expect(chooseTool('chronyc', '--chronyc', 'HTNTP_CHRONYC', undefined, {}).command).toEqual(['chronyc']);
  });

  it("a '***' line with exit 0 is no answer; a hang is a timeout; a missing program names the option", async () => {
    const script = join(temp.path, 'ntpq-no-daemon');
    writeFileSync(script, '#!/bin/sh\necho "***Socket error; probably ntpd is not running"\nexit 0\n', { mode: 0o755 });
    expect(await queryNtpd({ command: [script], option: '--ntpq', env: 'HTNTP_NTPQ' })).toEqual({
      ok: false,
      reason: `${script} -pn: ***Socket error; probably ntpd is not running`,
    });
    const slow = await queryNtpd(
      { command: ['/bin/sh', '-c', 'sleep 5', 'ntpq'], option: '--ntpq', env: 'HTNTP_NTPQ' },
      200,
    );
    expect(slow).toEqual({ ok: false, reason: '`/bin/sh -c sleep 5 ntpq -pn` did not answer within 0.2 s' });
    const missing = await queryNtpd({ command: ['/nonexistent/ntpq'], option: '--ntpq', env: 'HTNTP_NTPQ' });
    expect(missing).toEqual({
      ok: false,
      reason: '/nonexistent/ntpq could not be run (ENOENT): give its path with --ntpq PATH or HTNTP_NTPQ=PATH',
    });
    const failing = join(temp.path, 'ntpq-fails');
    writeFileSync(failing, '#!/bin/sh\necho "ntpq: cannot resolve host" >&2\nexit 1\n', { mode: 0o755 });
    expect(await queryNtpd({ command: [failing], option: '--ntpq', env: 'HTNTP_NTPQ' })).toEqual({
      ok: false,
      reason: `\`${failing} -pn\` exited 1: ntpq: cannot resolve host`,
    });
  });
});

describe("ntpd-rs's ntp.toml", () => {
  it('sock sources are found with their path; other sources and tables are not', () => {
    const toml = join(temp.path, 'ntp.toml');
    writeFileSync(
      toml,
      [
        '[observability]',
        'log-level = "info"',
        '',
        '[[source]]',
        'mode = "pool"',
        'address = "pool.example"',
        '',
        '[[source]]',
        "mode = 'sock'",
        'path = "/run/htntp-sock/ntpd-rs.sock" # htntp',
        'precision = 0.1',
        '',
        '[synchronization]',
        'path = "/not/a/source"',
      ].join('\n'),
    );
    const config = readDaemonConfig({ chrony: [], ntp: [], ntpdRs: [toml, join(temp.path, 'absent.toml')] });
    expect(config.socks).toEqual([{ daemon: 'ntpd-rs', file: toml, line: 8, path: '/run/htntp-sock/ntpd-rs.sock' }]);
    expect(config.files).toEqual([toml]);
  });
});

describe('unit mismatch', () => {
  it('one fault with one fix, instead of "absent" and "never written"', () => {
    const reads: ConfiguredUnit = {
      daemon: 'chrony',
      file: '/etc/chrony/conf.d/htntp.conf',
      line: 1,
      unit: 151,
      refid: 'HTTP',
      offset: 0,
      noselect: false,
    };
    const feeder: FeederProcess = { pid: 812, name: 'htntp http', units: [150], socks: [], uid: 0, gid: 0, groups: [] };
    const diagnosis = diagnose({
      unit: 151,
      segment: { state: 'absent' },
      processes: [],
      stale: [],
      procComplete: true,
      configured: [reads],
      configFiles: [reads.file],
      now: { sec: 1_800_000_000, nsec: 0 },
      maxAge: 10,
      mismatch: { reads, writes: 150, feeder },
    });
    expect(diagnosis.verdict).toBe('problem');
    expect(diagnosis.summary).toBe(
      'chronyd reads unit 151 (/etc/chrony/conf.d/htntp.conf:1), htntp http[812] writes unit 150: one of them ' +
        'names the wrong unit',
    );
    expect(diagnosis.fix).toBe(
      'make them the same: run the feeder with --unit 151, or change /etc/chrony/conf.d/htntp.conf:1 to unit 150 ' +
        'and restart chronyd',
    );
    expect(diagnosis.findings.map((finding) => finding.code)).toEqual(['unit-mismatch']);
  });
});
