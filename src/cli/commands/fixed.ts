// `htntp fixed`: the "off by N seconds" reference clock (python-ntpdshm's example) for
// checking a refclock set-up end to end: ntpd shows the offset (-1000 ms for --offset -1).
import type { Command } from 'commander';
import { MAX_PRECISION, MIN_PRECISION } from '../../sample.js';
import { DEFAULT_FIXED_PRECISION, FixedSource, MAX_FIXED_OFFSET } from '../../sources/fixed/source.js';
import { integerOption, numberOption } from '../options.js';
import { addServiceOptions, runService, type ServiceOptions } from '../service.js';

export interface FixedOptions extends ServiceOptions {
  offset: number;
  interval: number;
  precision: number;
  once?: boolean;
  json?: boolean;
}

export interface FixedResult {
  /** The SHM unit written (absent for a SOCK-only feeder). */
  unit?: number;
  offset: number;
  published: number;
}

export async function runFixed(options: FixedOptions, signal?: AbortSignal): Promise<FixedResult> {
  const source = new FixedSource({
    offset: options.offset,
    interval: options.interval,
    precision: options.precision,
    once: options.once ?? false,
  });
  // --once leaves its sample valid for the reader; a stop signal still clears it.
  const { published } = await runService({ ...options, keepLastSample: options.once ?? false }, () => source, signal);
  return { ...(options.unit === undefined ? {} : { unit: options.unit }), offset: options.offset, published };
}

export function registerFixed(program: Command): void {
  const command = program
    .command('fixed')
    .description(
      'Publish the local clock shifted by a fixed offset (clock = now + offset): checks a refclock set-up end to end',
    )
    .requiredOption(
      '--offset <seconds>',
      'seconds added to the local clock; -1 makes ntpd show -1000 ms',
      numberOption('offset', -MAX_FIXED_OFFSET, MAX_FIXED_OFFSET),
    )
    .option('--interval <seconds>', 'seconds between samples', numberOption('interval', 0.001, 86_400), 1)
    .option(
      '--precision <log2>',
      'precision written with every sample (log2 seconds)',
      integerOption('precision', MIN_PRECISION, MAX_PRECISION),
      DEFAULT_FIXED_PRECISION,
    )
    .option('--once', 'write one sample and exit, leaving it valid for the reader')
    .option('--json', 'print a summary object on exit');
  addServiceOptions(command, { unit: 2 }).action(async (options: FixedOptions) => {
    const result = await runFixed(options);
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}
