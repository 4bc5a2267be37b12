// `htntp doctor`'s work outside the CLI: gather the facts of each unit (segment, attached
// processes, config files, the daemons' own view) and diagnose them.
import { systemClock, type Clock } from '../clock.js';
import { STALE_SAMPLE_SECONDS } from '../sample.js';
import { MAX_UNIT, NtpdShm, keyOfUnit, statUnit } from '../shm.js';
import { DEFAULT_CONFIG_PATHS, readDaemonConfig, type ConfigPaths } from './daemon-config.js';
import {
  CHRONYC_ENV,
  NTPQ_ENV,
  chooseTool,
  queryChrony,
  queryNtpd,
  type Answer,
  type ChronyView,
  type NtpPeer,
} from './daemon-query.js';
import { diagnose, type SegmentFacts, type UnitDiagnosis, type UnitMismatch } from './diagnose.js';
import { htntpFeeders, sysvAttachments, type AttachedProcess, type FeederProcess } from './processes.js';
import type { ConfiguredUnit, DaemonConfig } from './daemon-config.js';
import { diagnoseSock, sockFacts, type SockDiagnosis } from './sock.js';

export type { UnitDiagnosis, Finding, Verdict, Severity } from './diagnose.js';
export type { SockDiagnosis } from './sock.js';

export interface DoctorOptions {
  /**
   * Units to check; default every unit that has a segment, an attachment or a config line (none when only socks are
   * asked for).
   */
  units?: readonly number[];
  /** chrony SOCK refclock paths to check; default those a chrony config names. */
  socks?: readonly string[];
  configPaths?: ConfigPaths;
  /** chronyd's command socket (default: a `bindcmdaddress` of the config, else chronyc's own default). */
  chronySocket?: string;
  /**
   * The ntpq command (default $HTNTP_NTPQ, else `ntpq` on PATH), e.g. a wrapper that enters ntpd's network namespace.
   */
  ntpq?: string | readonly string[];
  /** The chronyc command (default $HTNTP_CHRONYC, else `chronyc` on PATH). */
  chronyc?: string | readonly string[];
  procRoot?: string;
  /** Seconds after which a sample is stale (default 10: daemons drop older receive times). */
  maxAge?: number;
  clock?: Clock;
}

export interface DoctorReport {
  units: UnitDiagnosis[];
  socks: SockDiagnosis[];
  /** Config files read. */
  configFiles: string[];
  /** 0 healthy, 1 a problem found, 2 something could not be checked. */
  exitCode: 0 | 1 | 2;
}

export const DEFAULT_MAX_AGE = STALE_SAMPLE_SECONDS;

function segmentFacts(unit: number): SegmentFacts {
  let stat;
  try {
    stat = statUnit(unit);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return code === 'ENOENT' ? { state: 'absent' } : { state: 'unreadable', error: message };
  }
  let shm: NtpdShm | undefined;
  try {
    shm = new NtpdShm({ unit, create: false, readOnly: true });
    return { state: 'present', stat, snapshot: shm.snapshot() };
  } catch {
    return { state: 'present', stat }; // another size or not readable: IPC_STAT says enough
  } finally {
    shm?.detach();
  }
}

/**
 * A daemon that reads one unit while htntp writes another: a configured unit no feeder
 * writes, paired with the nearest fed unit no config names (a typo is a digit off), and
 * the other way round. Named once, the same on both units.
 */
function mismatchOf(
  unit: number,
  configured: readonly ConfiguredUnit[],
  feeders: readonly FeederProcess[],
): { mismatch?: UnitMismatch } {
  const fed = (candidate: number): boolean => feeders.some((feeder) => feeder.units.includes(candidate));
  const named = (candidate: number): boolean => configured.some((entry) => entry.unit === candidate);
  const nearest = (to: number, candidates: number[]): number | undefined =>
    candidates.sort((a, b) => Math.abs(a - to) - Math.abs(b - to) || a - b)[0];
  const readsUnfed = [...new Set(configured.map((entry) => entry.unit))].filter((candidate) => !fed(candidate));
  const writesUnnamed = [...new Set(feeders.flatMap((feeder) => feeder.units))].filter(
    (candidate) => !named(candidate),
  );
  let reads: number | undefined;
  let writes: number | undefined;
  if (readsUnfed.includes(unit)) {
    writes = nearest(unit, writesUnnamed);
    reads = writes === undefined ? undefined : unit;
  } else if (writesUnnamed.includes(unit)) {
    reads = nearest(unit, readsUnfed);
    writes = reads === undefined ? undefined : unit;
  }
  // Paired both ways only: each side's nearest must be the other.
  if (
    reads === undefined ||
    writes === undefined ||
    nearest(writes, [...readsUnfed]) !== reads ||
    nearest(reads, [...writesUnnamed]) !== writes
  )
    return {};
  const entry = configured.find((candidate) => candidate.unit === reads);
  const feeder = feeders.find((candidate) => candidate.units.includes(writes ?? -1));
  return entry === undefined || feeder === undefined ? {} : { mismatch: { reads: entry, writes, feeder } };
}

/** Units named in a config file, with a segment (or one this user may not look at), or attached to. */
function unitsInUse(config: DaemonConfig, attachedTo: (unit: number) => AttachedProcess[]): number[] {
  const found = new Set(config.units.map((entry) => entry.unit));
  for (let unit = 0; unit <= MAX_UNIT; unit += 1) {
    if (attachedTo(unit).length > 0) found.add(unit);
    try {
      statUnit(unit);
      found.add(unit);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') found.add(unit);
    }
  }
  return [...found].sort((a, b) => a - b);
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const { clock = systemClock, maxAge = DEFAULT_MAX_AGE } = options;
  const config = readDaemonConfig(options.configPaths ?? DEFAULT_CONFIG_PATHS);
  // Before our own look attaches anything; our own pid is left out all the same.
  const attachments = sysvAttachments(options.procRoot);
  const attachedTo = (unit: number): AttachedProcess[] =>
    (attachments.get(keyOfUnit(unit)) ?? []).filter((process) => process.pid !== globalThis.process.pid);

  const units =
    options.units !== undefined
      ? [...new Set(options.units)]
      : options.socks !== undefined
        ? []
        : unitsInUse(config, attachedTo);
  const socks = [
    ...new Set(options.socks ?? (options.units === undefined ? config.socks.map((entry) => entry.path) : [])),
  ];

  const configuredFor = (unit: number) => config.units.filter((entry) => entry.unit === unit);
  const wants = (daemon: 'chrony' | 'ntpd', processName: string): boolean =>
    (daemon === 'chrony' && socks.length > 0) ||
    units.some(
      (unit) =>
        configuredFor(unit).some((entry) => entry.daemon === daemon) ||
        attachedTo(unit).some((process) => process.name === processName),
    );
  const [chrony, ntpd]: [Answer<ChronyView> | undefined, Answer<NtpPeer[]> | undefined] = await Promise.all([
    wants('chrony', 'chronyd')
      ? queryChrony(
          options.chronySocket ?? config.chronySockets[0],
          chooseTool('chronyc', '--chronyc', CHRONYC_ENV, options.chronyc),
        )
      : undefined,
    wants('ntpd', 'ntpd') ? queryNtpd(chooseTool('ntpq', '--ntpq', NTPQ_ENV, options.ntpq)) : undefined,
  ]);

  const now = clock.realtime();
  const procComplete = globalThis.process.geteuid?.() === 0;
  const feeders = htntpFeeders(options.procRoot);
  const diagnoses = units.map((unit) => {
    const segment = segmentFacts(unit);
    const shmId = segment.state === 'present' ? segment.stat.shmId : undefined;
    const attached = attachedTo(unit);
    return diagnose({
      unit,
      segment,
      processes: attached.filter((process) => process.shmId === shmId),
      stale: attached.filter((process) => process.shmId !== shmId),
      procComplete,
      configured: configuredFor(unit),
      configFiles: config.files,
      chrony,
      ntpd,
      now,
      maxAge,
      ...mismatchOf(unit, config.units, feeders),
    });
  });
  const sockDiagnoses = socks.map((path) =>
    diagnoseSock(
      sockFacts(path, {
        procRoot: options.procRoot,
        configured: config.socks,
        configFiles: config.files,
        feeders,
        chrony,
      }),
    ),
  );
  const verdicts = [...diagnoses, ...sockDiagnoses].map((entry) => entry.verdict);
  const exitCode = verdicts.includes('problem') ? 1 : verdicts.includes('unknown') ? 2 : 0;
  return { units: diagnoses, socks: sockDiagnoses, configFiles: config.files, exitCode };
}
