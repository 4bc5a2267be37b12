// What every long-running feeder command shares: the segment options, logging, and
// the run itself (signal -> feed -> clean stop). Commands only build their source.
import { Option, type Command } from 'commander';
import { feed, type FeedResult } from '../feeder.js';
import { createLogger, type Logger } from '../log.js';
import type { SampleSource } from '../sample.js';
import { integerOption, permOption } from './options.js';
import { shutdownSignal } from './signals.js';

export interface ServiceOptions {
  unit: number;
  perm?: number;
  logFormat: 'text' | 'json';
  quiet?: boolean;
  verbose?: boolean;
}

export function addServiceOptions(command: Command, defaults: { unit: number }): Command {
  return command
    .option('-u, --unit <n>', 'SHM unit (segment key 0x4E545030 + unit)', integerOption('unit', 0, 255), defaults.unit)
    .option('--perm <octal>', 'permissions if the segment is created (default 0600 for units 0-1, 0666 above)', permOption)
    .addOption(new Option('--log-format <format>', 'log lines on stderr').choices(['text', 'json']).default('text'))
    .option('-q, --quiet', 'log warnings and errors only')
    .option('-v, --verbose', 'log every probe and sample');
}

export function serviceLogger(options: Pick<ServiceOptions, 'logFormat' | 'quiet' | 'verbose'>): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  return createLogger({ format: options.logFormat, level });
}

export interface ServiceContext {
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Runs a source into the segment until SIGINT/SIGTERM (or `signal`), then stops cleanly:
 * valid = 0, detach, resolve. `makeSource` gets the signal and logger the run uses.
 */
export async function runService(
  options: ServiceOptions,
  makeSource: (context: ServiceContext) => SampleSource,
  signal: AbortSignal = shutdownSignal(),
): Promise<FeedResult> {
  const logger = serviceLogger(options);
  const source = makeSource({ signal, logger });
  return feed(source, {
    unit: options.unit,
    ...(options.perm === undefined ? {} : { perm: options.perm }),
    signal,
    logger,
    onSample: (sample) => logger.debug('sample published', { unit: options.unit, precision: sample.precision }),
  });
}
