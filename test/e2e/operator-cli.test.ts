// The CLI as operators meet it: SIGHUP stops a feeder like SIGTERM (valid 0, exit 0),
// `status --watch | head -1` ends quietly, proxy credentials stay out of `ps`, bad
// --user/--group/--device fail before any segment exists, and a second feeder on a unit
// is refused.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NtpdShm } from '../../src/shm.js';
import { startProxy, type TestProxy } from '../helpers/http/proxy.js';
import { closeAll, startTimeServers, type TimeServer } from '../helpers/http/servers.js';
import { htntpBin, makeTempDir, startHtntp, startProcess, type TempDir } from '../helpers/process.js';
import { readSegment, removeSegment } from '../helpers/segments.js';
import { units } from '../helpers/units.js';

const UNIT_HUP = units.operatorHup;
const UNIT_WATCH = units.operatorWatch;
const UNIT_USER = units.operatorUser;
const UNIT_DEVICE = units.operatorDevice;
const UNIT_LOCK = units.operatorLock;
const UNITS = [UNIT_HUP, UNIT_WATCH, UNIT_USER, UNIT_DEVICE, UNIT_LOCK];

let temp: TempDir;
let servers: TimeServer[];
let proxy: TestProxy;
const PASSWORD = 'hunter2-s3cret';

beforeAll(async () => {
  UNITS.forEach(removeSegment);
  temp = await makeTempDir('operator');
  servers = await startTimeServers([{ offset: 0.25 }]);
  proxy = await startProxy({ credentials: `htntp:${PASSWORD}` });
});
afterAll(async () => {
  await closeAll(servers);
  await proxy.close();
  await temp.remove();
});
afterEach(() => UNITS.forEach(removeSegment));

/** A fixed feeder on `unit` that logs every sample it publishes. */
const startVerboseFeeder = (unit: number): ReturnType<typeof startHtntp> =>
  startHtntp(['fixed', '--unit', String(unit), '--offset', '-1', '--interval', '0.2', '--verbose']);

describe('signals and pipes', () => {
  it('SIGHUP stops a feeder like SIGTERM: logged, valid 0, exit 0', async () => {
    const feeder = startVerboseFeeder(UNIT_HUP);
    try {
      await feeder.waitForLine(/^debug sample published/, { stream: 'stderr' });
      expect(readSegment(UNIT_HUP)?.valid).toBe(1);
      const exit = await feeder.stop('SIGHUP');
      expect(exit, feeder.output()).toEqual({ code: 0, signal: null });
      expect(
        feeder.stderrLines.some((line) => /^info stopping reason="?received SIGHUP/.test(line)),
        feeder.output(),
      ).toBe(true);
      expect(readSegment(UNIT_HUP)?.valid).toBe(0);
    } finally {
      await feeder.stop('SIGKILL');
    }
  });

  it('`status --watch | head -1` ends quietly with exit 0 once head has gone', async () => {
    const shm = new NtpdShm(UNIT_WATCH);
    try {
      const script =
        `"$0" "$1" status --watch --interval 0.1 --unit ${UNIT_WATCH} | head -1; echo "htntp exit ` +
        `$\{PIPESTATUS[0]}" >&2`;
      const pipeline = startProcess('bash', ['-c', script, process.execPath, htntpBin]);
      const exit = await pipeline.exited;
      expect(exit.code, pipeline.output()).toBe(0);
      expect(pipeline.stdoutLines[0]).toContain(`unit ${UNIT_WATCH}`);
      expect(pipeline.stderrLines, pipeline.output()).toEqual(['htntp exit 0']);
    } finally {
      shm.detach();
    }
  });
});

describe('proxy credentials', () => {
  const url = (): string => servers[0]?.url ?? '';

  it('in argv: a warning, and `ps` (/proc/PID/cmdline) no longer shows them', async () => {
    const feeder = startHtntp([
      'http',
      '--dry-run',
      '--interval',
      '1',
      '--probes',
      '2',
      '--proxy',
      `htntp:${PASSWORD}@127.0.0.1:${proxy.port}`,
      url(),
    ]);
    try {
      await feeder.waitForLine(/sample \(dry run\)/, { stream: 'stderr', timeoutMs: 20_000 });
      expect(
        feeder.stderrLines.some((line) => /^warn proxy credentials on the command line/.test(line)),
        feeder.output(),
      ).toBe(true);
      const cmdline = readFileSync(`/proc/${feeder.pid}/cmdline`, 'latin1');
      expect(cmdline).not.toContain(PASSWORD);
      expect(cmdline).toContain('***@127.0.0.1');
      // logs never repeat them
      expect([...feeder.stdoutLines, ...feeder.stderrLines].join('\n')).not.toContain(PASSWORD);
    } finally {
      await feeder.stop('SIGTERM');
    }
  });

  it('--proxy-file: used, no warning, nothing secret in argv', async () => {
    const file = join(temp.path, 'proxy');
    writeFileSync(file, `# the site proxy\nhttp://htntp:${PASSWORD}@127.0.0.1:${proxy.port}\n`);
    chmodSync(file, 0o600);
    const before = proxy.forwards + proxy.connects;
    const once = startHtntp(['http', '--once', '--dry-run', '--json', '--probes', '2', '--proxy-file', file, url()]);
    const exit = await once.exited;
    expect(exit.code, once.output()).toBe(0);
    expect(proxy.forwards + proxy.connects).toBeGreaterThan(before);
    expect(once.stderrLines.some((line) => line.includes('proxy credentials on the command line'))).toBe(false);
    expect([...once.stdoutLines, ...once.stderrLines].join('\n')).not.toContain(PASSWORD);
  });

  it('--proxy-file that cannot be read fails before anything starts', async () => {
    const cli = startHtntp(['http', '--unit', String(UNIT_USER), '--proxy-file', join(temp.path, 'absent'), url()]);
    expect((await cli.exited).code).toBe(1);
    expect(cli.stderrLines.join('\n')).toMatch(/ENOENT.*absent/);
    expect(readSegment(UNIT_USER)).toBeUndefined();
  });
});

describe('validate before touching', () => {
  it.each([
    ['--user nosuchuser', ['--user', 'htntp-nosuchuser'], /no such user: htntp-nosuchuser/],
    ['--group nosuchgroup', ['--group', 'htntp-nosuchgroup'], /no such group: htntp-nosuchgroup/],
  ])('%s: exit 1 naming it, and no segment was created', async (_name, extra, message) => {
    const cli = startHtntp(['fixed', '--unit', String(UNIT_USER), '--offset', '-1', ...extra]);
    expect((await cli.exited).code, cli.output()).toBe(1);
    expect(cli.stderrLines.join('\n')).toMatch(message);
    expect(readSegment(UNIT_USER)).toBeUndefined();
  });

  it('gps with a missing device: exit 1, no segment', async () => {
    const cli = startHtntp(['gps', '--unit', String(UNIT_DEVICE), '--device', join(temp.path, 'ttyNOPE')]);
    expect((await cli.exited).code, cli.output()).toBe(1);
    expect(cli.stderrLines.join('\n')).toMatch(/device .*ttyNOPE does not exist/);
    expect(readSegment(UNIT_DEVICE)).toBeUndefined();
  });

  it('a metrics port in use: exit 1, no segment', async () => {
    const holder = startHtntp(['fixed', '--unit', String(UNIT_HUP), '--offset', '-1', '--metrics', '0']);
    try {
      const line = await holder.waitForLine(/metrics/, { stream: 'stderr' });
      const busy = /127\.0\.0\.1:(\d+)/.exec(line)?.[1];
      expect(busy, line).toBeDefined();
      const cli = startHtntp(['fixed', '--unit', String(UNIT_DEVICE), '--offset', '-1', '--metrics', String(busy)]);
      expect((await cli.exited).code, cli.output()).toBe(1);
      expect(cli.stderrLines.join('\n')).toMatch(/EADDRINUSE/);
      expect(readSegment(UNIT_DEVICE)).toBeUndefined();
    } finally {
      await holder.stop('SIGTERM');
    }
  });
});

describe('one writer per unit', () => {
  it("a second feeder on a unit exits 1 naming the first one's pid, before writing anything", async () => {
    const first = startVerboseFeeder(UNIT_LOCK);
    try {
      await first.waitForLine(/^debug sample published/, { stream: 'stderr' });
      const countBefore = readSegment(UNIT_LOCK)?.count;
      const second = startHtntp(['fixed', '--unit', String(UNIT_LOCK), '--offset', '1']);
      expect((await second.exited).code, second.output()).toBe(1);
      expect(second.stderrLines.join('\n')).toMatch(
        new RegExp(
          `unit ${UNIT_LOCK} \\(key 0x[0-9a-f]+\\) is already fed by pid ${first.pid} \\(.*fixed.*\\): one ` +
            `writer per unit`,
        ),
      );
      expect(second.stderrLines.some((line) => /segment attached/.test(line))).toBe(false);
      // The first feeder's samples went on untouched: count moved only by its own writes, offset -1 s.
      const after = readSegment(UNIT_LOCK);
      expect(after?.count ?? 0).toBeGreaterThanOrEqual(countBefore ?? 0);
      expect((after?.clockTimeStampSec ?? 0) - (after?.receiveTimeStampSec ?? 0)).toBe(-1);
      // Once the first is gone, the unit is free again.
      expect((await first.stop('SIGTERM')).code).toBe(0);
      const third = startHtntp(['fixed', '--unit', String(UNIT_LOCK), '--offset', '1', '--once']);
      expect((await third.exited).code, third.output()).toBe(0);
    } finally {
      await first.stop('SIGKILL');
    }
  });
});
