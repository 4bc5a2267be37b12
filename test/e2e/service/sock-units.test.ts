// SOCK under the shipped units: the feeder run as htntp.service runs it (root limited to the
// unit's CapabilityBoundingSet with no_new_privs, then --user), the socket directory made as
// tmpfiles.d/htntp.conf makes it, and after every chronyd start the ExecStartPost= of
// chrony.service.d/htntp-sock.conf run as written. The htntp user and group are played by
// nobody/nogroup (a test must not add users); every other word comes from the files.
// chronyd restarted three times under the feeder, then started after it: samples in
// chronyd's refclocks log within 5 s of each start.
import { chmod, chown, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { cleanupsAfterEach } from '../../helpers/cleanups.js';
import { describeE2e, findTool, startChronyd, type Chronyd } from '../../helpers/daemons.js';
import {
  flags,
  makeTempDir,
  runCommand,
  setprivCaps,
  startConfinedHtntp,
  type RunningProcess,
  type TempDir,
} from '../../helpers/process.js';
import { waitFor } from '../../helpers/wait.js';
import { contribFile as contrib, unitSettings as settings } from '../../helpers/unit-files.js';

/** The promise of the issue: samples within 5 s of every chronyd start. */
const SAMPLES_WITHIN_MS = 5_000;
const STAND_IN = { user: 'nobody', group: 'nogroup' } as const;

/** The `d` line of tmpfiles.d/htntp.conf: path, mode, owner, group. */
function socketDirLine(): { path: string; mode: number; user: string; group: string } {
  const line = contrib('tmpfiles.d/htntp.conf')
    .split('\n')
    .find((candidate) => candidate.startsWith('d '));
  const [, path, mode, user, group] = line?.split(/\s+/) ?? [];
  if (path === undefined || mode === undefined || user === undefined || group === undefined)
    throw new Error('tmpfiles.d/htntp.conf has no d line');
  return { path, mode: Number.parseInt(mode, 8), user, group };
}

const shipped = socketDirLine();
/** The unit's words with the test's directory and stand-in user/group. */
const standIn = (word: string, dir: string): string =>
  word === shipped.path
    ? dir
    : word === 'htntp'
      ? STAND_IN.group
      : word.startsWith(`${shipped.path}/`)
        ? join(dir, word.slice(shipped.path.length + 1))
        : word;

/** The drop-in's ExecStartPost= commands, as argv lists ("-": failure ignored, as systemd does). */
function postCommands(dir: string): { argv: string[]; ignoreFailure: boolean }[] {
  return settings(contrib('chrony.service.d/htntp-sock.conf'))
    .filter(([key]) => key === 'ExecStartPost')
    .map(([, value]) => {
      const ignoreFailure = value.startsWith('-');
      return {
        argv: value
          .replace(/^-/, '')
          .split(/\s+/)
          .map((word) => standIn(word, dir)),
        ignoreFailure,
      };
    });
}

let temp: TempDir;
let socketDir: string;
let socketPath: string;
const cleanups = cleanupsAfterEach();

beforeAll(async () => {
  temp = await makeTempDir('sock-units');
  await chmod(temp.path, 0o755);
  return () => temp.remove();
});

let runs = 0;
/** A fresh socket directory made as systemd-tmpfiles makes the shipped one. */
async function makeSocketDir(): Promise<void> {
  runs += 1;
  socketDir = join(temp.path, `run${runs}`, 'htntp-sock');
  await mkdir(socketDir, { recursive: true });
  await chmod(join(temp.path, `run${runs}`), 0o755);
  const id = async (flag: '-u' | '-g', name: string): Promise<number> =>
    Number((await runCommand('id', [flag, name])).trim());
  const uid = shipped.user === 'root' ? 0 : await id('-u', STAND_IN.user);
  const gid = shipped.group === 'htntp' ? await id('-g', STAND_IN.user) : 0;
  await chown(socketDir, uid, gid);
  await chmod(socketDir, shipped.mode);
  socketPath = join(socketDir, 'chrony.sock');
}

let starts = 0;
/** chronyd with the socket and a refclocks log of its own, then the drop-in's ExecStartPost=. */
async function startChronydAsTheUnit(): Promise<{ daemon: Chronyd; logPath: string; startedAt: number }> {
  starts += 1;
  const logDir = join(temp.path, `logs${starts}`);
  await mkdir(logDir);
  const startedAt = performance.now();
  const daemon = await startChronyd({
    lines: [`refclock SOCK ${socketPath} refid SOCK poll 2`, 'log refclocks', `logdir ${logDir}`],
  });
  cleanups.push(() => daemon.stop());
  for (const { argv, ignoreFailure } of postCommands(socketDir)) {
    const [command, ...args] = argv;
    try {
      await runCommand(command!, args);
    } catch (error) {
      if (!ignoreFailure) throw error;
    }
  }
  return { daemon, logPath: join(logDir, 'refclocks.log'), startedAt };
}

/** Raw samples (numbered DP lines) chronyd logged for refid SOCK. */
async function loggedSamples(logPath: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(logPath, 'utf8');
  } catch {
    return 0;
  }
  return text.split('\n').filter((line) => /^\d{4}-\d\d-\d\d \S+ SOCK\s+\d+ /.test(line)).length;
}

/** Milliseconds from chronyd's start to its second logged sample. */
async function samplesAfter(start: { logPath: string; startedAt: number }): Promise<number> {
  await waitFor(async () => ((await loggedSamples(start.logPath)) >= 2 ? true : undefined), {
    what: `two samples in ${start.logPath}`,
    timeoutMs: SAMPLES_WITHIN_MS + 5_000,
    intervalMs: 100,
  });
  return performance.now() - start.startedAt;
}

/** htntp as htntp.service starts it: root within the unit's bounding set, no_new_privs, --user, its NODE_OPTIONS. */
function feederAsTheUnit(): RunningProcess {
  const unit = settings(contrib('htntp.service'));
  const values = (key: string): string[] => unit.filter(([name]) => name === key).map(([, value]) => value);
  const caps = setprivCaps(values('CapabilityBoundingSet')[0] ?? '');
  expect(values('NoNewPrivileges')).toEqual(['yes']);
  expect(values('ExecStart')[0]).toMatch(/ --user htntp /);
  const nodeOptions = values('Environment')
    .find((value) => value.startsWith('NODE_OPTIONS='))
    ?.slice('NODE_OPTIONS='.length);
  const options = { offset: '-1', interval: '0.5', sock: socketPath, user: STAND_IN.user, 'no-leapfile': true };
  const feeder = startConfinedHtntp(findTool('setpriv')!, caps, ['fixed', ...flags(options)], {
    env: { ...process.env, ...(nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }) },
  });
  cleanups.push(() => feeder.stop('SIGTERM', 3_000));
  return feeder;
}

describeE2e(
  'SOCK under the shipped units: the feeder as htntp.service runs it, chronyd with the drop-in',
  ['chronyd', 'setpriv'],
  () => {
    it(
      'chronyd restarted 3 times: samples within 5 s of each start, the feeder never exits',
      { timeout: 120_000 },
      async () => {
        await makeSocketDir();
        let start = await startChronydAsTheUnit();
        const feeder = feederAsTheUnit();
        await feeder.waitForLine(/^info privileges dropped user=nobody /, { stream: 'stderr', timeoutMs: 15_000 });
        const delays = [await samplesAfter(start)];
        for (let restart = 0; restart < 3; restart += 1) {
          await start.daemon.stop();
          start = await startChronydAsTheUnit();
          delays.push(await samplesAfter(start));
        }
        console.info(
          `SOCK under the units: ms from chronyd start to 2 samples ` +
            `logged: ${delays.map((ms) => ms.toFixed(0)).join(' ')}`,
        );
        for (const delay of delays) expect(delay).toBeLessThan(SAMPLES_WITHIN_MS);
        expect(feeder.exit()).toBeUndefined();
        // The drop happened before the restarts: every reconnect was made as the unprivileged user.
        expect(
          feeder.stderrLines.filter((line) => /^info socket (re)?connected /.test(line)).length,
        ).toBeGreaterThanOrEqual(3);
      },
    );

    it('chronyd started after the feeder: samples within 5 s of its start', { timeout: 60_000 }, async () => {
      await makeSocketDir();
      const feeder = feederAsTheUnit();
      await feeder.waitForLine(/^warn socket unavailable .*error=ENOENT/, { stream: 'stderr', timeoutMs: 15_000 });
      await feeder.waitForLine(/^info privileges dropped user=nobody /, { stream: 'stderr', timeoutMs: 15_000 });
      const start = await startChronydAsTheUnit();
      const delay = await samplesAfter(start);
      console.info(`SOCK under the units, chronyd after the feeder: ${delay.toFixed(0)} ms to 2 samples logged`);
      expect(delay).toBeLessThan(SAMPLES_WITHIN_MS);
    });

    it(
      'without the drop-in the same feeder gets EACCES once it has dropped, says how to fix it, and keeps running',
      { timeout: 60_000 },
      async () => {
        await makeSocketDir();
        const feeder = feederAsTheUnit();
        await feeder.waitForLine(/^info privileges dropped user=nobody /, { stream: 'stderr', timeoutMs: 15_000 });
        const daemon = await startChronyd({ lines: [`refclock SOCK ${socketPath} refid SOCK poll 2`] });
        cleanups.push(() => daemon.stop());
        const warning = await feeder.waitForLine(/^warn socket unavailable .*error=EACCES/, {
          stream: 'stderr',
          timeoutMs: 15_000,
        });
        expect(warning).toContain('chrony.service.d/htntp-sock.conf');
        expect(feeder.exit()).toBeUndefined();
      },
    );
  },
);
