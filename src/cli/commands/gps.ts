// `htntp gps`: a GPS receiver's NMEA time on a serial port into the SHM segment.
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { MAX_PRECISION, MIN_PRECISION } from '../../sample.js';
import { GpsSource } from '../../sources/gps/source.js';
import { deviceError } from '../../sources/gps/serial.js';
import { integerOption, numberOption } from '../options.js';
import { addServiceOptions, runService, type ServiceContext, type ServiceOptions } from '../service.js';

export interface GpsOptions extends ServiceOptions {
  device: string;
  baud: number | 'auto';
  offset: number;
  minFixes: number;
  precision: number;
  json?: boolean;
}

export interface GpsResult {
  device: string;
  /** The SHM unit written (absent for a SOCK-only feeder). */
  unit?: number;
  published: number;
  counts: Record<string, number>;
}

function baudOption(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  return integerOption('baud', 50, 4_000_000)(value);
}

export async function runGps(options: GpsOptions, signal?: AbortSignal): Promise<GpsResult> {
  try {
    statSync(options.device);
  } catch (error) {
    // A missing device fails before the segment is touched; whether it may be opened is
    // decided at the open, after the privilege drop (the rights that count then).
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw deviceError(error, options.device);
  }
  let source: GpsSource | undefined;
  const makeSource = ({ logger, metrics }: ServiceContext): GpsSource => {
    source = new GpsSource({
      device: options.device,
      baud: options.baud,
      offset: options.offset,
      minFixes: options.minFixes,
      precision: options.precision,
      logger,
      ...(metrics === undefined ? {} : { metrics }),
    });
    return source;
  };
  const { published } = await runService(options, makeSource, signal);
  return { device: options.device, ...(options.unit === undefined ? {} : { unit: options.unit }), published, counts: Object.fromEntries(source?.sampler.counts ?? []) };
}

export function registerGps(program: Command): void {
  const command = program
    .command('gps')
    .description('Publish the time of a GPS receiver (NMEA 0183 on a serial port) to the SHM segment, like gpsd')
    .requiredOption('-d, --device <path>', 'serial device of the receiver, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...')
    .option('-b, --baud <rate|auto>', 'baud rate, or auto to hunt 4800..115200', baudOption, 9600)
    .option('--offset <seconds>', "receiver latency correction added to the sentence time (like ntpd's time1)", numberOption('offset', -10, 10), 0)
    .option('--min-fixes <n>', 'consecutive good fixes before the first sample', integerOption('min-fixes', 1, 3600), 3)
    .option('--precision <log2>', 'precision written with every sample (log2 seconds)', integerOption('precision', MIN_PRECISION, MAX_PRECISION), -1)
    .option('--json', 'print a summary object on exit');
  addServiceOptions(command, { unit: 0 }).action(async (options: GpsOptions) => {
    const result = await runGps(options);
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}
