// What every long-running feeder command shares: the segment options, privileges,
// logging, leap seconds, metrics, and the run itself (signal -> feed -> clean stop).
// Commands only build their source.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { feed, type FeedResult } from '../feeder.js';
import { clockFilePath } from '../floor.js';
import { systemClock, type Clock } from '../clock.js';
import { createLogger, type Logger } from '../log.js';
import { LeapSchedule, defaultLeapFile, loadLeapSeconds, leapAt } from '../leap.js';
import {
  ServiceMetrics,
  noSourceMetrics,
  parseMetricsAddress,
  serveMetrics,
  type MetricsAddress,
  type MetricsServer,
  type SourceMetrics,
} from '../metrics.js';
import { checkPrivilegeOptions, dropPrivileges } from '../privileges.js';
import { SOCK_LAYOUTS, checkSockPath, type SockLayoutChoice } from '../sock.js';
import { lockUnit, type UnitLock } from '../unit-lock.js';
import type { SampleSource } from '../sample.js';
import { MAX_UNIT, isRootOnlyUnit } from '../shm.js';
import { integerOption, permOption } from './options.js';
import { exitAfterStop, shutdownSignal } from './signals.js';
import { codedError } from '../errors.js';

export interface ServiceOptions {
  /** The SHM unit; none: no segment is created or touched (a feeder of SOCK sockets only). */
  unit?: number;
  perm?: number;
  /** chrony SOCK refclock sockets (`--sock`, repeatable). */
  sock?: string[];
  /** Their datagram layout (`--sock-layout`). */
  sockLayout?: SockLayoutChoice;
  logFormat: 'text' | 'json';
  quiet?: boolean;
  verbose?: boolean;
  /** Become this user (and its primary group) once the segment is attached and the sockets connected. */
  user?: string;
  group?: string;
  /** leap-seconds.list path; false = no leap second handling; undefined = the system file if present. */
  leapfile?: string | false;
  /** Serve Prometheus metrics here. */
  metrics?: MetricsAddress;
  /** A one-shot source leaves its last sample valid when it ends by itself (see FeedOptions). */
  keepLastSample?: boolean;
}

function metricsOption(value: string): MetricsAddress {
  try {
    return parseMetricsAddress(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** --sock paths as given: a bad one is a usage error before anything runs. */
function sockOption(value: string, previous: string[] | undefined): string[] {
  try {
    return [...(previous ?? []), checkSockPath(value)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

export function addServiceOptions(command: Command, defaults: { unit: number }): Command {
  // The default unit applies only without --sock: a socket-only feeder touches no segment.
  command.hook('preAction', (action) => {
    const options = action.opts<Pick<ServiceOptions, 'unit' | 'sock'>>();
    if (options.unit === undefined && (options.sock ?? []).length === 0) action.setOptionValue('unit', defaults.unit);
  });
  return (
    command
      .option(
        '-u, --unit <n>',
        `SHM unit (segment key 0x4E545030 + unit; default ${defaults.unit} unless --sock is given)`,
        integerOption('unit', 0, MAX_UNIT),
      )
      .option(
        '--sock <path>',
        "send samples to chrony's refclock SOCK socket at this path (repeatable; with --unit too, both are written)",
        sockOption,
      )
      .addOption(
        new Option(
          '--sock-layout <layout>',
          "SOCK datagram layout: native (default: this platform's struct timeval), or 40 (64-bit time_t " +
            'everywhere: ntpd-rs)',
        ).choices(SOCK_LAYOUTS),
      )
      .option(
        '--perm <octal>',
        'permissions if the segment is created (default 0600 for units 0-1, 0666 above)',
        permOption,
      )
      .option('--user <name>', 'run as this user once the segment is attached and the sockets connected (needs root)')
      .option('--group <name>', "run as this group (default: the --user's primary group)")
      .option(
        '--leapfile <path>',
        'leap-seconds.list announcing leap seconds (default /usr/share/zoneinfo/leap-seconds.list when present)',
      )
      .option('--no-leapfile', 'never announce leap seconds')
      // A required value: an optional one would swallow the first server of `htntp http`.
      .option(
        '--metrics <[host:]port>',
        'serve Prometheus metrics at http://host:port/metrics (host default 127.0.0.1, e.g. 9815)',
        metricsOption,
      )
      .addOption(new Option('--log-format <format>', 'log lines on stderr').choices(['text', 'json']).default('text'))
      .option('-q, --quiet', 'log warnings and errors only')
      .option('-v, --verbose', 'log every probe and sample')
  );
}

export function serviceLogger(options: Pick<ServiceOptions, 'logFormat' | 'quiet' | 'verbose'>): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  return createLogger({ format: options.logFormat, level });
}

export interface ServiceContext {
  signal: AbortSignal;
  logger: Logger;
  /**
   * Where a source reports what only it knows: per-server status/rtt (HTTP), fix state
   * (GPS). Always given by runService (a no-op unless --metrics); optional for callers
   * that build a context by hand.
   */
  metrics?: SourceMetrics;
}

/**
 * The leap second schedule for the run, or undefined. A file asked for by name must
 * load; the system default is skipped with a warning if it is unusable.
 */
export function loadLeapSchedule(
  leapfile: string | false | undefined,
  logger: Logger,
  clock: Clock = systemClock,
): LeapSchedule | undefined {
  if (leapfile === false) return undefined;
  const file = leapfile ?? defaultLeapFile();
  if (file === undefined) {
    logger.info('leap file absent', { hint: 'install tzdata or pass --leapfile to announce leap seconds' });
    return undefined;
  }
  try {
    const table = loadLeapSeconds(file);
    if (table.hashValid === false) {
      throw codedError(`${file}: the #h hash does not match the data (damaged or edited file)`, 'ERR_LEAPFILE_INVALID');
    }
    const schedule = new LeapSchedule(table, logger);
    const now = clock.realtime();
    const status = leapAt(table, now);
    logger.info('leap file loaded', {
      file,
      taiOffset: status.taiOffset,
      expires: status.expires === undefined ? undefined : new Date(status.expires * 1000).toISOString(),
      next: status.next === undefined ? undefined : new Date(status.next.time * 1000).toISOString(),
    });
    schedule.leapAt(now); // logs "leap file expired" / "leap second pending" right away
    return schedule;
  } catch (error) {
    if (leapfile !== undefined) throw error;
    logger.warn('leap file unusable', { file, error });
    return undefined;
  }
}

/**
 * Units 0-1 are root-only by convention (ntpd and gpsd create them 0600). A non-root
 * feeder there would create a segment ntpd cannot trust, or fail to attach to ntpd's.
 */
export function checkUnitAllowed(unit: number, euid: number | undefined = process.geteuid?.()): void {
  if (isRootOnlyUnit(unit) && euid !== undefined && euid !== 0) {
    throw codedError(
      `unit ${unit} is root-only by convention (ntpd and gpsd keep units 0-1 at mode 0600): run as root, or use ` +
        `--unit 2 or higher (and the same unit in ntp.conf / chrony.conf)`,
      'EACCES',
    );
  }
}

/** The clock file the feeder saves its last-good time in (floor.ts), when there is one to save in. */
function lastGoodFile(): { clockFile?: string } {
  const path = clockFilePath();
  return path === null ? {} : { clockFile: path };
}

/**
 * Runs a source into the segment until SIGINT/SIGTERM (or `signal`), then stops cleanly:
 * valid = 0, detach, resolve. `makeSource` gets the signal, logger and metrics the run
 * uses; it should only build the source (network/serial work starts when the feeder
 * iterates it, after the segment is attached and privileges are dropped).
 */
export async function runService(
  options: ServiceOptions,
  makeSource: (context: ServiceContext) => SampleSource,
  signal?: AbortSignal,
): Promise<FeedResult> {
  if (options.unit !== undefined) checkUnitAllowed(options.unit);
  const privileges = {
    user: options.user,
    group: options.group,
  };
  checkPrivilegeOptions(privileges);
  // One writer per unit, taken before the segment is touched.
  const lock: UnitLock | undefined = options.unit === undefined ? undefined : await lockUnit(options.unit);
  const stopSignal = signal ?? shutdownSignal();
  const logger = serviceLogger(options);
  let metricsServer: MetricsServer | undefined;
  try {
    const leapSchedule = loadLeapSchedule(options.leapfile, logger);
    const metrics = options.metrics === undefined ? undefined : new ServiceMetrics({ unit: options.unit });
    if (metrics !== undefined && options.metrics !== undefined)
      metricsServer = await serveMetrics(metrics.registry, options.metrics, logger);
    const source = makeSource({ signal: stopSignal, logger, metrics: metrics ?? noSourceMetrics });
    metrics?.setSource(source.name);
    return await feed(source, {
      unit: options.unit,
      sockets: options.sock,
      sockLayout: options.sockLayout,
      perm: options.perm,
      signal: stopSignal,
      logger,
      leapSchedule,
      metrics,
      ...(options.keepLastSample ? { keepLastSample: true } : {}),
      ...lastGoodFile(),
      afterOpen: () => {
        dropPrivileges(privileges, logger);
      },
    });
  } finally {
    await metricsServer?.close();
    await lock?.release();
    // Our own shutdown signal means we are the process: a source that keeps a handle
    // open must not hold the exit past the 2 s a service manager is promised.
    if (signal === undefined && stopSignal.aborted) exitAfterStop(logger);
  }
}
