// contrib/systemd: the units' promises checked against the files, and the feeder run the
// way htntp.service runs it: root limited to the unit's CapabilityBoundingSet with
// no_new_privs (setpriv), attaching to a 0600 segment another user created (as chronyd
// running as _chrony does) and dropping to --user nobody..
import { accessSync, constants, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  flags,
  makeTempDir,
  repoRoot,
  runCommand,
  setprivCaps,
  startConfinedHtntp,
  startProcess,
  type RunningProcess,
} from '../../helpers/process.js';
import { readSegment, removeSegment, waitForCount } from '../../helpers/segments.js';
import { e2eRequired, e2eTool } from '../../helpers/tools.js';
import { units } from '../../helpers/units.js';
import { contribFile, unitSettings } from '../../helpers/unit-files.js';

const UNIT = units.systemd;
const unitFile = contribFile;
const settings = unitSettings;

describe('unit files', () => {
  for (const name of ['htntp.service', 'htntp-gps@.service']) {
    it(`${name}: Type=exec, Restart=on-failure, starts as root and drops with --user, keeps SysV IPC visible`, () => {
      const unit = new Map(settings(unitFile(name)));
      expect(unit.get('Type')).toBe('exec');
      expect(unit.get('Restart')).toBe('on-failure');
      expect(unit.get('ExecStart')).toMatch(/ --user htntp /);
      expect(unit.has('User')).toBe(false);
      for (const forbidden of ['PrivateIPC', 'DynamicUser', 'RemoveIPC', 'MemoryDenyWriteExecute'])
        expect(unit.has(forbidden), forbidden).toBe(false);
      expect(unit.get('CapabilityBoundingSet')).toBe('CAP_SETUID CAP_SETGID CAP_IPC_OWNER');
      expect(unit.get('NoNewPrivileges')).toBe('yes');
      // The read-only ntp_adjtime the HTTPS gate and the GPS date check ask: allowed, and
      // without CAP_SYS_TIME (above) nothing can set the clock.
      const filters = settings(unitFile(name))
        .filter(([key]) => key === 'SystemCallFilter')
        .map(([, value]) => value);
      expect(filters).toEqual(['@system-service', 'adjtimex clock_adjtime']);
      expect(unit.has('ProtectClock')).toBe(false);
    });

    it(`${name}: its NODE_OPTIONS are options this node takes`, async () => {
      const environment = settings(unitFile(name))
        .filter(([key]) => key === 'Environment')
        .map(([, value]) => value);
      const nodeOptions = environment.find((value) => value.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length);
      expect(nodeOptions).toBeDefined();
      const run = startProcess(process.execPath, ['-e', 'process.stdout.write(process.env.NODE_OPTIONS ?? "")'], {
        env: { ...process.env, NODE_OPTIONS: nodeOptions },
      });
      const exit = await run.exited;
      expect([exit.code, ...run.stdoutLines, ...run.stderrLines]).toEqual([0, nodeOptions]);
    });

    it(`${name}: finds htntp on systemd's PATH, wherever npm -g put it`, () => {
      expect(new Map(settings(unitFile(name))).get('ExecStart')).toMatch(/^\/usr\/bin\/env htntp /);
    });

    it(`${name}: waits for no network before the time daemon, and needs no order for SOCK`, () => {
      const unit = settings(unitFile(name));
      const values = (key: string): string[] => unit.filter(([setting]) => setting === key).map(([, value]) => value);
      expect(values('After').join(' ')).not.toContain('network-online.target');
      expect(values('Wants').join(' ')).not.toContain('network-online.target');
      for (const coupling of ['PartOf', 'BindsTo']) expect(values(coupling), coupling).toEqual([]);
    });
  }

  it('the chrony drop-in only gives sockets (never links) in the root-owned SOCK directory to the htntp group', () => {
    const posts = settings(unitFile('chrony.service.d/htntp-sock.conf'))
      .filter(([key]) => key === 'ExecStartPost')
      .map(([, value]) => value);
    expect(posts).toHaveLength(1);
    // "-": a chrony.conf without the socket still starts; -type s: a link is never followed.
    expect(posts[0]).toMatch(
      /^-\/usr\/bin\/find \/run\/htntp-sock -maxdepth 1 -type s -exec chgrp htntp \{\} \+ -exec chmod g\+w \{\} \+$/,
    );
    expect(unitFile('tmpfiles.d/htntp.conf')).toMatch(/^d \/run\/htntp-sock 0750 root htntp -$/m);
  });

  it('every GPS instance has its own options file; the shared defaults hold none', () => {
    const gps = settings(unitFile('htntp-gps@.service'));
    expect(gps.filter(([key]) => key === 'EnvironmentFile').map(([, value]) => value)).toEqual([
      '/etc/htntp/gps-%i.env',
    ]);
    expect(unitFile('htntp.default')).not.toMatch(/^HTNTP_GPS_OPTS=/m);
    const example = unitFile('gps.env.example');
    expect(example).toMatch(/^HTNTP_GPS_OPTS="[^"]*--unit \d+[^"]*--metrics 127\.0\.0\.1:\d+/m);
  });

  it('pass systemd-analyze verify (the template as an instance)', async (context) => {
    const analyze = e2eTool(context, 'systemd-analyze');
    const dir = await makeTempDir('units');
    try {
      writeFileSync(join(dir.path, 'htntp.service'), unitFile('htntp.service'));
      writeFileSync(join(dir.path, 'htntp-gps@ttyUSB0.service'), unitFile('htntp-gps@.service'));
      // --man=no: whether the Documentation= man pages are installed is the host's business.
      const units = [join(dir.path, 'htntp.service'), join(dir.path, 'htntp-gps@ttyUSB0.service')];
      const run = startProcess(analyze, ['verify', '--man=no', ...units]);
      const exit = await run.exited;
      expect([exit.code, ...run.stdoutLines, ...run.stderrLines]).toEqual([0]);
    } finally {
      await dir.remove();
    }
  });
});

function setprivPath(): string | undefined {
  for (const path of ['/usr/bin/setpriv', '/bin/setpriv']) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  return undefined;
}

const setpriv = setprivPath();
const missing =
  setpriv === undefined
    ? 'setpriv not found (apt-get install util-linux)'
    : process.getuid?.() !== 0
      ? 'needs root'
      : undefined;
if (missing !== undefined && !e2eRequired)
  process.stderr.write(`[htntp e2e] skipping "htntp.service's capabilities": ${missing}\n`);

/** The segment as chronyd (running as _chrony) leaves it: 0600, owned by another user. */
async function createForeignSegment(setprivPath: string): Promise<void> {
  const create =
    `import('${repoRoot}/dist/shm.js').then(({ NtpdShm }) => new NtpdShm({ unit: ${UNIT}, perm: ` +
    `0o600 }).detach())`;
  await runCommand(setprivPath, [
    '--reuid',
    '12345',
    '--regid',
    '12345',
    '--clear-groups',
    process.execPath,
    '-e',
    create,
  ]);
}

describe.skipIf(missing !== undefined && !e2eRequired)(
  `htntp.service's capabilities${missing === undefined ? '' : ` [skipped: ${missing}]`}`,
  () => {
    let feeder: RunningProcess | undefined;
    afterEach(async () => {
      await feeder?.stop('SIGKILL', 2_000);
      removeSegment(UNIT);
    });

    it('are enough to attach a 0600 segment of another user, drop to nobody and keep publishing', async () => {
      if (missing !== undefined || setpriv === undefined)
        throw new Error(`HTNTP_E2E=required: ${missing ?? 'setpriv'}`);
      await createForeignSegment(setpriv);
      // CAP_SETUID CAP_SETGID CAP_IPC_OWNER -> setpriv's names
      const caps = setprivCaps(new Map(settings(unitFile('htntp.service'))).get('CapabilityBoundingSet') ?? '');
      const options = { offset: '0.5', interval: '0.1', unit: UNIT, user: 'nobody', 'no-leapfile': true };
      feeder = startConfinedHtntp(setpriv, caps, ['fixed', ...flags(options)]);
      await feeder.waitForLine(new RegExp(`^info segment attached unit=${UNIT} .*created=false perm=0600`), {
        timeoutMs: 15_000,
      });
      await feeder.waitForLine(/^info privileges dropped user=nobody uid=65534/, { timeoutMs: 20_000 });
      const countAfterDrop = readSegment(UNIT)?.count ?? 0;
      await waitForCount(UNIT, countAfterDrop + 6, 'samples in the foreign 0600 segment after the drop');
      feeder.child.kill('SIGTERM');
      expect((await feeder.exited).code, feeder.output()).toBe(0);
      expect(readSegment(UNIT)?.valid).toBe(0);
    });

    it('without CAP_IPC_OWNER the same attach is refused with EACCES (why the unit keeps it)', async () => {
      if (missing !== undefined || setpriv === undefined)
        throw new Error(`HTNTP_E2E=required: ${missing ?? 'setpriv'}`);
      await createForeignSegment(setpriv);
      const options = { offset: '0.5', unit: UNIT, user: 'nobody', 'no-leapfile': true };
      feeder = startConfinedHtntp(setpriv, ['+setuid', '+setgid'], ['fixed', ...flags(options)]);
      const exit = await feeder.exited;
      expect(exit.code).toBe(1);
      expect(feeder.output()).toMatch(/shmat EACCES/);
    });
  },
);
