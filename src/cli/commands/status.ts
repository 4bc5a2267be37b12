// `htntp status`: what is in the SHM segments, without disturbing anyone. The reading is
// the library's (src/status.ts); this file parses the options and prints each look.
import type { Command } from 'commander';
import { abortableSleep } from '../../clock.js';
import { defaultLeapFile } from '../../leap.js';
import { MAX_UNIT } from '../../shm.js';
import {
  failedChecks,
  formatStatus,
  missingMessage,
  readStatus,
  type StatusOptions,
  type StatusResult,
} from '../../status.js';
import { STALE_SAMPLE_SECONDS } from '../../sample.js';
import { collect, integerOption, numberOption } from '../options.js';
import { shutdownSignal, stdoutClosedSignal } from '../signals.js';

export interface StatusCliOptions {
  unit?: number[];
  json?: boolean;
  watch?: boolean;
  interval: number;
  leapfile?: string;
  /** Seconds after which a sample is shown stale. */
  staleAfter?: number;
  /** Exit 1 when a unit shown is stale, never written or unreadable. */
  check?: boolean;
}

export interface StatusRun {
  exitCode: number;
  /** The last look (the only one without --watch). */
  result: StatusResult;
}

/**
 * The command's logic: one look, or with --watch one every interval until `signal` (default
 * SIGINT/SIGTERM/SIGHUP) aborts. Each look is handed to `onResult` as it is taken.
 */
export async function runStatus(
  options: StatusCliOptions,
  onResult: (result: StatusResult) => void = () => {},
  signal?: AbortSignal,
): Promise<StatusRun> {
  const units = options.unit;
  const leapfile = options.leapfile ?? defaultLeapFile();
  const look: StatusOptions = {
    units,
    leapfile,
    staleAfter: options.staleAfter,
  };
  let result = readStatus(look);
  onResult(result);
  // A unit asked for that is missing or cannot be read is a failure; in a scan of all
  // units, one that cannot be read (a root-only unit for a user) is only reported.
  const failed =
    result.missing.length > 0 ||
    (units !== undefined && result.units.some((report) => 'error' in report)) ||
    (options.check === true && failedChecks(result).length > 0);
  if (!options.watch) return { exitCode: failed ? 1 : 0, result };
  const stop = signal ?? shutdownSignal();
  for (;;) {
    await abortableSleep(options.interval * 1000, stop);
    if (stop.aborted) return { exitCode: 0, result }; // a stopped watch ends normally
    result = readStatus({ ...look, previous: result });
    onResult(result);
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('Show the SHM segments (read-only: never creates one, never clears valid)')
    .option(
      '-u, --unit <n>',
      'a unit to show (repeatable); default every unit that exists',
      collect(integerOption('unit', 0, MAX_UNIT)),
    )
    .option('--json', 'print an array of plain objects')
    .option('-w, --watch', 'refresh every interval until interrupted')
    .option('--interval <seconds>', 'seconds between refreshes with --watch', numberOption('interval', 0.1, 3600), 1)
    .option(
      '--stale-after <seconds>',
      `a sample older than this is shown stale (default ${STALE_SAMPLE_SECONDS})`,
      numberOption('stale-after', 0.1, 86_400),
    )
    .option('--check', 'exit 1 when a unit shown is stale, never written or unreadable (for monitoring)')
    .option(
      '--leapfile <path>',
      'leap-seconds.list for the TAI line (default /usr/share/zoneinfo/leap-seconds.list when present)',
    )
    .action(async (options: StatusCliOptions) => {
      const closed = stdoutClosedSignal();
      const print = (result: StatusResult): void => {
        if (closed.aborted) return;
        if (options.json) process.stdout.write(`${JSON.stringify(result.units)}\n`);
        else process.stdout.write(`${options.watch ? '\x1b[H\x1b[2J' : ''}${formatStatus(result)}`);
        for (const unit of result.missing) process.stderr.write(`${missingMessage(unit)}\n`);
      };
      // A stop signal or a closed stdout (`| head -1`) ends a watch.
      const stop = options.watch ? AbortSignal.any([shutdownSignal(), closed]) : undefined;
      process.exitCode = (await runStatus(options, print, stop)).exitCode;
    });
}
