// `htntp gps`: a GPS receiver's NMEA time on a serial port into the SHM segment, or
// (--report-offset) the receiver's latency measured against the local clock.
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { clockSync, type ClockSync } from '../../clock.js';
import { MAX_PRECISION, MIN_PRECISION } from '../../sample.js';
import { GpsSource, GPS_DEFAULTS } from '../../sources/gps/source.js';
import { deviceError } from '../../sources/gps/serial.js';
import { diffSeconds } from '../../time.js';
import { integerOption, numberOption } from '../options.js';
import { addServiceOptions, runService, serviceLogger, type ServiceContext, type ServiceOptions } from '../service.js';
import { shutdownSignal } from '../signals.js';

export interface GpsOptions extends ServiceOptions {
  device: string;
  baud: number | 'auto';
  offset: number;
  minFixes: number;
  precision: number;
  json?: boolean;
  /** Seconds to measure clock − receive instead of publishing. */
  reportOffset?: number;
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

/** The source the command's options describe. */
function gpsSource(
  options: GpsOptions,
  { logger, metrics }: Pick<ServiceContext, 'logger'> & Partial<Pick<ServiceContext, 'metrics'>>,
): GpsSource {
  return new GpsSource({
    device: options.device,
    baud: options.baud,
    offset: options.offset,
    minFixes: options.minFixes,
    precision: options.precision,
    logger,
    metrics,
  });
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
  const makeSource = (context: ServiceContext): GpsSource => {
    source = gpsSource(options, context);
    return source;
  };
  const { published } = await runService(options, makeSource, signal);
  return {
    device: options.device,
    ...(options.unit === undefined ? {} : { unit: options.unit }),
    published,
    counts: source?.counts() ?? {},
  };
}

export interface OffsetReport {
  device: string;
  seconds: number;
  samples: number;
  /** The --offset the samples were taken with. */
  offset: number;
  /** clock − receive over the samples, seconds. */
  median: number;
  q1: number;
  q3: number;
  iqr: number;
  /** What to set as htntp --offset, chrony `offset` or ntpd `time1` (one of them). */
  correction: number;
  /** The local clock as the kernel saw it: the figure holds only if a daemon synchronised it from other sources. */
  localClock: ClockSync | null;
}

/** The q-quantile of sorted values, linear between neighbours. */
function quantile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const low = sorted[below] ?? NaN;
  const high = sorted[Math.min(below + 1, sorted.length - 1)] ?? NaN;
  return low + (high - low) * (position - below);
}

/** Median and quartiles of clock − receive, and the correction that brings the median to 0. */
export function offsetFigures(
  differences: readonly number[],
  offset: number,
): Pick<OffsetReport, 'samples' | 'median' | 'q1' | 'q3' | 'iqr' | 'correction'> {
  const sorted = [...differences].sort((a, b) => a - b);
  const [q1, median, q3] = [0.25, 0.5, 0.75].map((q) => quantile(sorted, q)) as [number, number, number];
  return { samples: sorted.length, median, q1, q3, iqr: q3 - q1, correction: offset - median };
}

function localClock(): ClockSync | null {
  try {
    return clockSync();
  } catch {
    return null;
  }
}

/**
 * Reads the receiver for `reportOffset` seconds without publishing and returns the
 * spread of clock − receive. Meaningful once the local clock is synchronised by other
 * sources (network NTP): then the median is minus the receiver's NMEA latency.
 */
export async function reportOffset(options: GpsOptions, signal: AbortSignal = shutdownSignal()): Promise<OffsetReport> {
  const seconds = options.reportOffset ?? 0;
  const logger = serviceLogger(options);
  const source = gpsSource(options, { logger });
  // A timer of our own: Node 20 may collect an AbortSignal.timeout() held only by AbortSignal.any().
  const done = new AbortController();
  const timer = setTimeout(() => done.abort(), seconds * 1000);
  const stop = (): void => done.abort();
  signal.addEventListener('abort', stop);
  const differences: number[] = [];
  try {
    for await (const sample of source.samples(done.signal))
      differences.push(diffSeconds(sample.clockTime, sample.receiveTime));
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', stop);
  }
  const report: OffsetReport = {
    device: options.device,
    seconds,
    offset: options.offset,
    ...offsetFigures(differences, options.offset),
    localClock: localClock(),
  };
  if (report.localClock?.synchronised !== true) {
    logger.warn('local clock not synchronised', {
      reason: 'the figure includes the local clock error: synchronise it from other sources first',
    });
  }
  return report;
}

function formatReport(report: OffsetReport): string {
  const s = (value: number): string => `${value.toFixed(4)} s`;
  const clock = report.localClock;
  const clockText =
    clock === null
      ? 'state unknown'
      : clock.synchronised
        ? `synchronised, maxerror ${clock.maxError.toFixed(3)} s`
        : 'NOT synchronised';
  if (report.samples === 0) return `${report.device}: no samples in ${report.seconds} s (no fix yet?)\n`;
  const correction = report.correction.toFixed(4);
  return [
    `${report.device}: ${report.samples} samples in ${report.seconds} s, --offset ${report.offset}; local ` +
      `clock ${clockText}`,
    `clock - receive: median ${s(report.median)}, IQR ${s(report.iqr)} (${s(report.q1)} .. ${s(report.q3)})`,
    `correction: ${correction} s -> htntp gps --offset ${correction}, or chrony \`offset ${correction}\` / ntpd ` +
      `\`time1 ${correction}\` with --offset 0 (one of them, not both)`,
    '',
  ].join('\n');
}

export function registerGps(program: Command): void {
  const command = program
    .command('gps')
    .description('Publish the time of a GPS receiver (NMEA 0183 on a serial port) to the SHM segment, like gpsd')
    .requiredOption('-d, --device <path>', 'serial device of the receiver, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...')
    .option('-b, --baud <rate|auto>', 'baud rate, or auto to hunt 4800..115200', baudOption, 9600)
    .option(
      '--offset <seconds>',
      "receiver latency correction added to the sentence time (like ntpd's time1)",
      numberOption('offset', -10, 10),
      0,
    )
    .option(
      '--min-fixes <n>',
      'consecutive good fixes before the first sample, and before a changed receiver time is believed',
      integerOption('min-fixes', 1, 3600),
      GPS_DEFAULTS.minFixes,
    )
    .option(
      '--precision <log2>',
      'precision written with every sample (log2 seconds)',
      integerOption('precision', MIN_PRECISION, MAX_PRECISION),
      GPS_DEFAULTS.precision,
    )
    .option(
      '--report-offset <seconds>',
      'publish nothing: measure clock - receive for this long and print median, IQR and the --offset / chrony ' +
        'offset / ntpd time1 to use',
      integerOption('report-offset', 5, 86_400),
    )
    .option('--json', 'print a summary object on exit');
  addServiceOptions(command, { unit: 0 }).action(async (options: GpsOptions) => {
    if (options.reportOffset !== undefined) {
      const report = await reportOffset(options);
      process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
      return;
    }
    const result = await runGps(options);
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}
