// `htntp config`: the ready-to-use lines that register a unit as a refclock in ntpd,
// ntpsec or chrony, from the same generator as ntp.conf.example and the e2e tests.
import { Option, type Command } from 'commander';
import { REFCLOCK_DAEMONS, SOURCE_KINDS, presetOptions, refclockLines, type RefclockConfigOptions, type RefclockDaemon, type SourceKind } from '../../refclock-config.js';
import { MAX_PRECISION, MIN_PRECISION } from '../../sample.js';
import { MAX_UNIT, keyText } from '../../shm.js';
import { integerOption, numberOption, permOption } from '../options.js';

export interface ConfigOptions extends Omit<RefclockConfigOptions, 'daemon' | 'refid'> {
  daemon: RefclockDaemon;
  /** What feeds the unit: its refid, and chrony's delay and precision for that kind. */
  source?: SourceKind;
  refid?: string;
  json?: boolean;
}

export interface ConfigResult {
  daemon: RefclockDaemon;
  unit: number;
  refid: string;
  /** The segment's SysV key, as `ipcs -m` shows it. */
  key: string;
  lines: string[];
}

export function refclockConfig(options: ConfigOptions): ConfigResult {
  const { json: _json, source, refid, ...rest } = options;
  let refclock: RefclockConfigOptions;
  if (source !== undefined) {
    refclock = presetOptions(source, { ...rest, ...(refid === undefined ? {} : { refid }) });
  } else if (refid !== undefined) {
    refclock = { ...rest, refid };
  } else {
    throw Object.assign(new TypeError('give --source (http, gps, fixed) or --refid'), { code: 'ERR_MISSING_OPTION' });
  }
  const lines = refclockLines(refclock);
  return { daemon: options.daemon, unit: options.unit, refid: refclock.refid, key: keyText(options.unit), lines };
}

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('Print the config lines that register an htntp unit as a refclock in ntpd (classic), ntpsec or chrony')
    .addOption(new Option('--daemon <name>', 'the time daemon reading the segment').choices(REFCLOCK_DAEMONS).makeOptionMandatory())
    .option('-u, --unit <n>', 'SHM unit the feeder writes (its --unit)', integerOption('unit', 0, MAX_UNIT), 2)
    .addOption(new Option('--source <kind>', "what feeds the unit: sets the refid and chrony's delay/precision for it").choices(SOURCE_KINDS))
    .option('--refid <id>', 'reference id shown by ntpq/chronyc (up to 4 characters; default from --source)')
    .option('--offset <seconds>', 'constant correction added to every sample (ntpd time1, chrony offset)', numberOption('offset', -86_400, 86_400))
    .option('--poll <log2>', 'log2 seconds between polls (ntpd minpoll/maxpoll, chrony poll)', integerOption('poll', -6, 17))
    .addOption(new Option('--noselect', 'show the source but never synchronise to it').conflicts('prefer'))
    .option('--prefer', 'prefer this source')
    .option('--stratum <n>', 'stratum the daemon gives the source', integerOption('stratum', 0, 15))
    .option('--precision <log2>', "chrony only: the sample precision (chrony ignores the segment's)", integerOption('precision', MIN_PRECISION, MAX_PRECISION))
    .option('--delay <seconds>', 'chrony only: assumed delay of the source', numberOption('delay', 0, 10))
    .option('--perm <octal>', 'segment permissions if the daemon creates it (default 0600 for units 0-1, 0666 above)', permOption)
    .option('--json', 'print a plain object instead of the lines')
    .addHelpText('after', '\nExample: htntp config --daemon chrony --unit 2 --source http')
    .action((options: ConfigOptions) => {
      const result = refclockConfig(options);
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${result.lines.join('\n')}\n`);
    });
}
