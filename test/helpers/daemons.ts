// The real SHM readers for end-to-end tests: chronyd (-x: never touches the clock), ntpsec's
// ntpd (`disable ntp`, loopback only, one network namespace per instance) and ntpshmmon.
// Config lines in (from src/refclock-config.ts), parsed readings out. Each daemon gets a
// private temp dir; stop() kills it and removes the dir.
//
// Signs, since the three disagree:
//   ntpd peerstats `offset` = reference - local (a clock sample 1 s behind gives -1.000).
//   chronyc tracking "System time: X seconds fast of NTP time" -> `systemTimeFast` = +X;
//   the CSV field is chrony's correction, the opposite sign, converted here.
//   chronyc sources offsets: positive = local clock ahead of the source (opposite of ntpq).
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Timespec } from '../../src/time.js';
import { diffSeconds } from '../../src/time.js';
import { parseChronySources, type ChronySource } from '../../src/doctor/daemon-query.js';
import { makeTempDir, runCommand, startProcess, type RunningProcess } from './process.js';
import { findTool, type ToolName } from './tools.js';
import { waitFor } from './wait.js';

export { waitFor } from './wait.js';
export { removeSegment, readSegment, waitForCount } from './segments.js';
export { e2eTool, describeE2e, findTool, missingTools, e2eRequired } from './tools.js';

function toolPath(name: ToolName): string {
  const path = findTool(name);
  if (path === undefined)
    throw new Error(`${name} not found: check with e2eTool()/describeE2e() before starting daemons`);
  return path;
}

async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

interface DaemonBase {
  /** The private directory (config, log, stats, socket). */
  readonly dir: string;
  readonly confPath: string;
  readonly logPath: string;
  readonly process: RunningProcess;
  /** The daemon's log file so far. */
  log(): Promise<string>;
  /** Kills the daemon (SIGTERM, then SIGKILL) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Waits until `ready()` says yes. If the daemon exits or the deadline passes, stops it
 * and throws with its output and log.
 */
async function whenReady(
  daemon: DaemonBase,
  what: string,
  ready: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  try {
    // An exit ends the wait at once (a probe error would only count as "not yet").
    const outcome = await waitFor(
      async () => (daemon.process.exit() ? 'exited' : (await ready()) ? 'ready' : undefined),
      { what, timeoutMs },
    );
    if (outcome === 'exited') throw new Error(`${what}: the daemon exited ${JSON.stringify(daemon.process.exit())}`);
  } catch (error) {
    const log = await daemon.log();
    await daemon.stop();
    throw new Error(`${(error as Error).message}\n${daemon.process.output()}\n${log}`, { cause: error });
  }
}

function stopper(process: RunningProcess, removeDir: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      await process.stop('SIGTERM', 5_000);
      await removeDir();
    })();
    return stopping;
  };
}

// ---------------------------------------------------------------- chronyd

export interface ChronydOptions {
  /** Lines appended to the generated chrony.conf (refclock lines etc.). */
  lines: readonly string[];
  /** NTP port; 0 (default) = no NTP socket at all. */
  port?: number;
  /** Start-up deadline: chronyc answers (default 10 s). */
  timeoutMs?: number;
  /** chronyd's environment (e.g. libfaketime to give it a wrong clock). */
  env?: NodeJS.ProcessEnv;
}

export interface ChronyTracking {
  referenceId: string;
  /** Refid of a refclock or the address of a server. */
  referenceName: string;
  stratum: number;
  refTime: number;
  /** Seconds the system clock is ahead of NTP time ("X seconds fast"); negative = slow. */
  systemTimeFast: number;
  /** Estimated local offset at the last update; positive = local clock was ahead. */
  lastOffset: number;
  rmsOffset: number;
  /** ppm, positive = the system clock runs fast. */
  frequencyPpm: number;
  residualFrequencyPpm: number;
  skewPpm: number;
  rootDelay: number;
  rootDispersion: number;
  updateInterval: number;
  leapStatus: string;
}

export type { ChronySource };

export interface Chronyd extends DaemonBase {
  readonly socketPath: string;
  /** Runs chronyc against this instance's command socket. */
  chronyc(args: readonly string[]): Promise<string>;
  tracking(): Promise<ChronyTracking>;
  sources(): Promise<ChronySource[]>;
}

function csvFields(line: string, expected: number, what: string): string[] {
  const fields = line.trim().split(',');
  if (fields.length < expected) throw new Error(`unexpected chronyc ${what} line: ${JSON.stringify(line)}`);
  return fields;
}

export function parseChronyTracking(csv: string): ChronyTracking {
  const line = csv.split('\n').find((candidate) => candidate.trim() !== '') ?? '';
  const f = csvFields(line, 14, 'tracking');
  const number = (index: number): number => Number(f[index]);
  return {
    referenceId: f[0] ?? '',
    referenceName: f[1] ?? '',
    stratum: number(2),
    refTime: number(3),
    // chrony's CSV gives the correction still to apply: negative when the clock is fast.
    systemTimeFast: -number(4),
    lastOffset: number(5),
    rmsOffset: number(6),
    // chrony prints "N ppm slow" as -N in CSV: positive = fast, as documented above.
    frequencyPpm: number(7),
    residualFrequencyPpm: number(8),
    skewPpm: number(9),
    rootDelay: number(10),
    rootDispersion: number(11),
    updateInterval: number(12),
    leapStatus: f[13] ?? '',
  };
}

export { parseChronySources };

export async function startChronyd(options: ChronydOptions): Promise<Chronyd> {
  const chronydPath = toolPath('chronyd');
  const chronycPath = toolPath('chronyc');
  const temp = await makeTempDir('chronyd');
  const dir = temp.path;
  // chronyd insists on a command-socket directory no one else can write to.
  const socketDir = join(dir, 'run');
  await mkdir(socketDir);
  await chmod(socketDir, 0o750);
  const socketPath = join(socketDir, 'chronyd.sock');
  const confPath = join(dir, 'chrony.conf');
  const logPath = join(dir, 'chronyd.log');
  const conf = [
    `pidfile ${join(dir, 'chronyd.pid')}`,
    `bindcmdaddress ${socketPath}`,
    'cmdport 0',
    `port ${options.port ?? 0}`,
    `driftfile ${join(dir, 'chrony.drift')}`,
    ...options.lines,
  ];
  await writeFile(confPath, `${conf.join('\n')}\n`);
  // -n: stay in the foreground so the pid is ours; -x: never touch the system clock.
  const daemon = startProcess(
    chronydPath,
    ['-n', '-x', '-u', 'root', '-f', confPath, '-L', '0', '-l', logPath],
    options.env === undefined ? {} : { env: options.env },
  );
  const stop = stopper(daemon, temp.remove);
  const chronyc = (args: readonly string[]): Promise<string> =>
    runCommand(chronycPath, ['-n', '-h', socketPath, ...args], { timeoutMs: 15_000 });
  const chronyd: Chronyd = {
    dir,
    confPath,
    logPath,
    socketPath,
    process: daemon,
    log: () => readIfExists(logPath),
    stop,
    chronyc,
    tracking: async () => parseChronyTracking(await chronyc(['-c', 'tracking'])),
    sources: async () => parseChronySources(await chronyc(['-c', 'sources'])),
  };
  await whenReady(
    chronyd,
    'chronyd to answer chronyc',
    async () => existsSync(socketPath) && (await chronyd.tracking()) !== undefined,
    options.timeoutMs,
  );
  return chronyd;
}

/** chronyd's tracking once it has selected `refid` ('*') with 4 samples behind the estimate (reach 0o17). */
export async function waitForChronySelection(
  chronyd: Chronyd,
  refid: string,
  timeoutMs = 60_000,
): Promise<ChronyTracking> {
  return waitFor(
    async () => {
      const source = (await chronyd.sources()).find((candidate) => candidate.name === refid);
      const current = await chronyd.tracking();
      return source?.state === '*' && (source.reach & 0o17) === 0o17 && current.referenceName === refid
        ? current
        : undefined;
    },
    { what: `chronyd to select ${refid} with 4 samples`, timeoutMs, intervalMs: 500 },
  );
}

// ---------------------------------------------------------------- ntpd (ntpsec)

export interface NtpdOptions {
  /** Lines appended to the generated ntp.conf (refclock lines etc.). */
  lines: readonly string[];
  /** Start-up deadline: ntpd logged that it listens (default 10 s). */
  timeoutMs?: number;
}

export interface PeerstatsLine {
  mjd: number;
  /** Seconds past midnight UTC. */
  secondsOfDay: number;
  /** Unix time of the line, from mjd + seconds. */
  time: number;
  /** `SHM(2)` for refclocks, an address for servers. */
  peer: string;
  /** The SHM unit when peer is `SHM(N)`. */
  unit: number | undefined;
  /** Peer status word, hex. */
  status: number;
  /** Seconds, reference - local: a reference 1 s behind the local clock gives -1. */
  offset: number;
  delay: number;
  dispersion: number;
  jitter: number;
}

export interface Ntpd extends DaemonBase {
  readonly peerstatsPath: string;
  peerstats(): Promise<PeerstatsLine[]>;
  /** The unit's peerstats lines once there are `count` of them (ntpd accepted that many samples). */
  waitForPeerstats(unit: number, count: number, timeoutMs?: number): Promise<PeerstatsLine[]>;
}

const MJD_UNIX_EPOCH = 40587;

export function parsePeerstats(text: string): PeerstatsLine[] {
  const lines: PeerstatsLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [mjd, seconds, peer, status, offset, delay, dispersion, jitter] = f.map((field, index) =>
      index === 2 ? field : index === 3 ? Number.parseInt(field, 16) : Number(field),
    ) as [number, number, string, number, number, number, number, number];
    const unitMatch = /^SHM\((\d+)\)$/.exec(peer);
    lines.push({
      mjd,
      secondsOfDay: seconds,
      time: (mjd - MJD_UNIX_EPOCH) * 86_400 + seconds,
      peer,
      unit: unitMatch ? Number(unitMatch[1]) : undefined,
      status,
      offset,
      delay,
      dispersion,
      jitter,
    });
  }
  return lines;
}

export async function startNtpd(options: NtpdOptions): Promise<Ntpd> {
  const ntpdPath = toolPath('ntpd');
  const unsharePath = toolPath('unshare');
  const ipPath = toolPath('ip');
  const temp = await makeTempDir('ntpd');
  const dir = temp.path;
  const confPath = join(dir, 'ntp.conf');
  const logPath = join(dir, 'ntpd.log');
  const peerstatsPath = join(dir, 'peerstats');
  const conf = [
    'disable ntp', // open loop: ntpd never adjusts the clock
    'disable kernel',
    `driftfile ${join(dir, 'ntp.drift')}`,
    `statsdir ${dir}/`,
    'statistics peerstats',
    'filegen peerstats file peerstats type none enable',
    'interface ignore wildcard',
    'interface listen 127.0.0.1',
    ...options.lines,
  ];
  await writeFile(confPath, `${conf.join('\n')}\n`);
  // A network namespace of its own: parallel instances never clash on UDP 123. SysV IPC
  // is not namespaced by --net, so ntpd still sees the segment. exec keeps the pid ours.
  const script = 'ip_cmd="$1"; shift; "$ip_cmd" link set lo up && exec "$@"';
  const daemon = startProcess(unsharePath, [
    '--net',
    'sh',
    '-c',
    script,
    'sh',
    ipPath,
    ntpdPath,
    '-n',
    '-c',
    confPath,
    '-l',
    logPath,
  ]);
  const stop = stopper(daemon, temp.remove);
  const ntpd: Ntpd = {
    dir,
    confPath,
    logPath,
    peerstatsPath,
    process: daemon,
    log: () => readIfExists(logPath),
    stop,
    peerstats: async () => parsePeerstats(await readIfExists(peerstatsPath)),
    waitForPeerstats: (unit, count, timeoutMs = 40_000) =>
      waitFor(
        async () => {
          const ours = (await ntpd.peerstats()).filter((line) => line.unit === unit);
          return ours.length >= count ? ours : undefined;
        },
        { what: `${count} peerstats lines for SHM(${unit})`, timeoutMs, intervalMs: 500 },
      ),
  };
  await whenReady(
    ntpd,
    'ntpd to listen on 127.0.0.1',
    async () => /Listen normally on \d+ lo 127\.0\.0\.1/.test(await ntpd.log()),
    options.timeoutMs,
  );
  // ntpd skips a line it cannot parse and runs on: a test would wait for nothing.
  const configErrors = (await ntpd.log()).split('\n').filter((line) => /CONFIG: syntax error/.test(line));
  if (configErrors.length > 0) {
    await ntpd.stop();
    throw new Error(
      `ntpd refused lines of its config:\n${configErrors.join('\n')}` +
        `\n${conf.map((line, index) => `${index + 1}: ${line}`).join('\n')}`,
    );
  }
  return ntpd;
}

// ---------------------------------------------------------------- ntpshmmon

export interface ShmmonSample {
  unit: number;
  /** When ntpshmmon saw the sample. */
  seen: Timespec;
  /** The segment's receive time (ntpshmmon's "Clock" column). */
  receive: Timespec;
  /** The segment's clock time (ntpshmmon's "Real" column). */
  clock: Timespec;
  leap: number;
  precision: number;
  /** clock - receive, seconds. */
  offset: number;
}

const SAMPLE_LINE = /^sample NTP([\s\S]?)\s+(\d+)\.(\d{9})\s+(\d+)\.(\d{9})\s+(\d+)\.(\d{9})\s+(-?\d+)\s+(-?\d+)\s*$/;

/**
 * ntpshmmon names a unit "NTP" + the byte '0' + unit (so unit 100 is byte 0x94); read
 * its output as latin1. Unit 208 wraps to NUL, which printf drops.
 */
export function parseNtpshmmon(text: string): ShmmonSample[] {
  const samples: ShmmonSample[] = [];
  for (const line of text.split('\n')) {
    const m = SAMPLE_LINE.exec(line);
    if (!m) continue;
    const tag = m[1] ?? '';
    const unit = tag === '' ? 208 : (tag.charCodeAt(0) - 0x30 + 256) % 256;
    const spec = (sec: string | undefined, nsec: string | undefined): Timespec => ({
      sec: Number(sec),
      nsec: Number(nsec),
    });
    const seen = spec(m[2], m[3]);
    const receive = spec(m[4], m[5]);
    const clock = spec(m[6], m[7]);
    samples.push({
      unit,
      seen,
      receive,
      clock,
      leap: Number(m[8]),
      precision: Number(m[9]),
      offset: diffSeconds(clock, receive),
    });
  }
  return samples;
}

export interface NtpshmmonOptions {
  /** Only these units (default: all; other tests' units show up too). */
  units?: readonly number[];
  /** Stop once this many samples of `units` were seen (default: run for `seconds`). */
  count?: number;
  /** Stop once this holds for the samples of `units` seen so far. */
  until?: (samples: readonly ShmmonSample[]) => boolean;
  /** ntpshmmon -t: it stops by itself after this long. */
  seconds: number;
}

/** Runs `ntpshmmon -t SECS` (read-only: it never clears valid) and returns the samples seen. */
export async function runNtpshmmon(options: NtpshmmonOptions): Promise<ShmmonSample[]> {
  const { units, count, until, seconds } = options;
  const wanted = (sample: ShmmonSample): boolean => units === undefined || units.includes(sample.unit);
  // ntpshmmon's stdout is block-buffered into a pipe: stdbuf makes it line by line, so
  // `count` can end the run early.
  const monitor = startProcess(toolPath('stdbuf'), ['-oL', toolPath('ntpshmmon'), '-t', String(seconds)], {
    encoding: 'latin1',
  });
  const collected = (): ShmmonSample[] => parseNtpshmmon(monitor.stdoutLines.join('\n')).filter(wanted);
  try {
    const enough = (): boolean =>
      (count !== undefined && collected().length >= count) || (until?.(collected()) ?? false);
    await waitFor(() => (monitor.exit() || enough() ? true : undefined), {
      what: `${count ?? 'the'} ntpshmmon samples`,
      timeoutMs: seconds * 1000 + 5_000,
      intervalMs: 100,
    });
  } finally {
    await monitor.stop('SIGTERM', 2_000);
  }
  const exit = monitor.exit();
  if (exit && exit.code !== 0 && exit.signal === null)
    throw new Error(`ntpshmmon failed ${JSON.stringify(exit)}\n${monitor.output()}`);
  return collected();
}
