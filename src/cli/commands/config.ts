// `htntp config`: the ready-to-use lines that register a unit (or a chrony SOCK socket)
// as a refclock in ntpd, ntpsec or chrony, from the same generator as ntp.conf.example and the e2e tests.
import { Option, type Command } from 'commander';
import {
  NTPD_RS,
  REFCLOCK_DAEMONS,
  SOURCE_KINDS,
  ntpdRsSourceLines,
  presetError,
  presetOptions,
  refclockLines,
  type RefclockConfigOptions,
  type RefclockDaemon,
  type SourceKind,
} from '../../refclock-config.js';
import { invalidArgValue } from '../../errors.js';
import { MAX_PRECISION, MIN_PRECISION } from '../../sample.js';
import { MAX_UNIT, keyText } from '../../shm.js';
import { withCode } from '../../errors.js';
import { integerOption, numberOption, permOption } from '../options.js';

export type ConfigDaemon = RefclockDaemon | typeof NTPD_RS;

export interface ConfigOptions extends Omit<RefclockConfigOptions, 'daemon' | 'unit' | 'refid'> {
  daemon: ConfigDaemon;
  /** Default 2, unless `sock` is given (then only the SOCK line; with both, both lines). */
  unit?: number;
  /** What feeds the unit: its refid, and chrony's delay and precision for that kind. */
  source?: SourceKind;
  refid?: string;
  json?: boolean;
  /** ntpd-rs: the samples' 1-sigma error in seconds (default from --source and --precision). */
  error?: number;
  /** ntpd-rs: htntp is the only source (prints minimum-agreeing-sources = 1). */
  onlySource?: boolean;
}

export interface ConfigResult {
  daemon: ConfigDaemon;
  /** The SHM unit registered (absent for a SOCK-only line). */
  unit?: number;
  refid: string;
  /** The segment's SysV key, as `ipcs -m` shows it. */
  key?: string;
  /** The SOCK socket path registered. */
  sock?: string;
  lines: string[];
}

export const DEFAULT_CONFIG_UNIT = 2;

/** ntpd-rs's [[source]]: a socket only, its error from the source kind unless given. */
function ntpdRsConfig(options: ConfigOptions): ConfigResult {
  const { sock, source, unit, pps, offset, perm, delay } = options;
  if (sock === undefined)
    throw withCode(
      new TypeError("ntpd-rs reads SOCK only: give --sock PATH (the feeder's --sock)"),
      'ERR_MISSING_OPTION',
    );
  if (unit !== undefined || pps !== undefined || perm !== undefined || delay !== undefined) {
    throw invalidArgValue('ntpd-rs takes no --unit, --pps, --perm or --delay: it reads the socket only');
  }
  if (offset !== undefined && offset !== 0)
    throw invalidArgValue("ntpd-rs has no offset for a SOCK source: give the feeder's --offset instead");
  const error = options.error ?? (source === undefined ? undefined : presetError(source, options.precision));
  if (error === undefined)
    throw withCode(new TypeError('give --source (http, gps, fixed) or --error SECONDS'), 'ERR_MISSING_OPTION');
  const lines = ntpdRsSourceLines({
    sock,
    error,
    onlySource: options.onlySource,
  });
  return { daemon: NTPD_RS, refid: 'SOCK', sock, lines };
}

export function refclockConfig(options: ConfigOptions): ConfigResult {
  if (options.daemon === NTPD_RS) return ntpdRsConfig(options);
  const {
    json: _json,
    sock,
    unit: givenUnit,
    source,
    refid,
    error: _error,
    onlySource: _onlySource,
    ...rest
  } = options;
  const unit = givenUnit ?? (sock === undefined ? DEFAULT_CONFIG_UNIT : undefined);
  if (source === undefined && refid === undefined) {
    throw withCode(new TypeError('give --source (http, gps, fixed) or --refid'), 'ERR_MISSING_OPTION');
  }
  const lineOptions = (lineUnit: number, extra: Partial<RefclockConfigOptions> = {}): RefclockConfigOptions => {
    const given = { ...rest, unit: lineUnit, ...(refid === undefined ? {} : { refid }), ...extra };
    const daemon = options.daemon as RefclockDaemon;
    return source === undefined
      ? { ...given, daemon, refid: refid ?? '' }
      : presetOptions(source, { ...given, daemon });
  };
  const lines = [
    ...(unit === undefined ? [] : refclockLines(lineOptions(unit))),
    // The SOCK line takes no unit: the default one stands in for the checks.
    ...(sock === undefined ? [] : refclockLines(lineOptions(DEFAULT_CONFIG_UNIT, { sock }))),
  ];
  return {
    daemon: options.daemon,
    ...(unit === undefined ? {} : { unit, key: keyText(unit) }),
    refid: lineOptions(DEFAULT_CONFIG_UNIT).refid,
    ...(sock === undefined ? {} : { sock }),
    lines,
  };
}

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description(
      'Print the config lines that register an htntp unit as a refclock in ntpd (classic), ntpsec or chrony, or a ' +
        'SOCK source in chrony or ntpd-rs',
    )
    .addOption(
      new Option('--daemon <name>', 'the time daemon reading the segment or socket')
        .choices([...REFCLOCK_DAEMONS, NTPD_RS])
        .makeOptionMandatory(),
    )
    .option(
      '-u, --unit <n>',
      'SHM unit the feeder writes (its --unit; default 2 unless --sock is given)',
      integerOption('unit', 0, MAX_UNIT),
    )
    .option('--sock <path>', 'chrony and ntpd-rs: the SOCK socket the feeder sends to (its --sock)')
    .option(
      '--error <seconds>',
      "ntpd-rs: the samples' 1-sigma error (its precision; default from --source)",
      numberOption('error', 1e-9, 10),
    )
    .option('--only-source', 'ntpd-rs: htntp is the only source (prints minimum-agreeing-sources = 1)')
    .addOption(
      new Option('--source <kind>', "what feeds the unit: sets the refid and chrony's delay/precision for it").choices(
        SOURCE_KINDS,
      ),
    )
    .option('--refid <id>', 'reference id shown by ntpq/chronyc (up to 4 characters; default from --source)')
    .option(
      '--offset <seconds>',
      'constant correction added to every sample (ntpd time1, chrony offset)',
      numberOption('offset', -86_400, 86_400),
    )
    .option(
      '--poll <log2>',
      'log2 seconds between polls (ntpd minpoll/maxpoll, chrony poll)',
      integerOption('poll', -6, 17),
    )
    .addOption(new Option('--noselect', 'show the source but never synchronise to it').conflicts('prefer'))
    .option('--prefer', 'prefer this source')
    .option('--stratum <n>', 'stratum the daemon gives the source', integerOption('stratum', 0, 15))
    .option(
      '--precision <log2>',
      "chrony only: the sample precision (chrony ignores the segment's)",
      integerOption('precision', MIN_PRECISION, MAX_PRECISION),
    )
    .option('--delay <seconds>', 'chrony only: assumed delay of the source', numberOption('delay', 0, 10))
    .option(
      '--pps <device>',
      'pair with a PPS device the daemon reads itself (e.g. /dev/pps0): the unit numbers the seconds, the ' +
        'pulse is preferred',
    )
    .option(
      '--perm <octal>',
      'segment permissions if the daemon creates it (default 0600 for units 0-1, 0666 above)',
      permOption,
    )
    .option('--json', 'print a plain object instead of the lines')
    .addHelpText('after', '\nExample: htntp config --daemon chrony --unit 2 --source http')
    .action((options: ConfigOptions) => {
      const result = refclockConfig(options);
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${result.lines.join('\n')}\n`);
    });
}
