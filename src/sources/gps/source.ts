// GPS NMEA over a serial port as a SampleSource: the receiver's port (ReceiverPort) gives
// stamped lines, the sampler's rules turn them into samples, this loop hands them out.
import { clockSync, systemClock, type Clock, type ClockSync } from '../../clock.js';
import { silentLogger, type Logger } from '../../log.js';
import type { SourceMetrics } from '../../metrics.js';
import type { Sample, SampleSource } from '../../sample.js';
import type { Timespec } from '../../time.js';
import { printableLine } from './lines.js';
import { ReceiverPort } from './port.js';
import { NmeaSampler, type LineResult } from './sampler.js';
import { systemPorts, type PortFactory } from './serial.js';

export interface GpsSourceOptions {
  device: string;
  baud: number | 'auto';
  minFixes?: number;
  offset?: number;
  precision?: number;
  clock?: Clock;
  logger?: Logger;
  /** Rollover floor for dates (default RELEASE_FLOOR). */
  floor?: Timespec;
  ports?: PortFactory;
  maxLineLength?: number;
  /** Reopen delays after the device is lost, ms; the last one repeats. */
  reopenDelays?: readonly number[];
  /** How long `--baud auto` listens at one rate for a checksummed sentence, ms. */
  huntWindow?: number;
  /** Counters are logged this often (ms) when they changed, and at the end. */
  statsInterval?: number;
  /** Fix state of every sentence that carries one (--metrics). */
  metrics?: SourceMetrics;
  /** Every complete line with its receive stamp (benchmarks, diagnostics). */
  onLine?: (line: string, receiveTime: Timespec) => void;
  /** The kernel's word on the local clock (default: ntp_adjtime through the addon). */
  witness?: () => ClockSync | null;
}

/**
 * The defaults are ours, chosen for what they promise. Precision -1 (0.5 s) is a bound
 * NMEA time keeps: the sentence lags the second by 0.1-0.9 s. gpsd's ntpshm.c of the
 * 2.9x-3.x era wrote the same -1 ("initially 0.5 sec") and its NMEA driver offered time
 * only after more than 3 fixes; gpsd 3.22 writes from the first fix with precision -20,
 * a microsecond claim for a source with millisecond jitter. Three consecutive fixes,
 * one second apart, are the least that shows the receiver's clock running at the pace
 * of ours.
 */
export const GPS_DEFAULTS = { minFixes: 3, precision: -1 } as const;

/** What the port's events hand to samples(): samples to yield, a lost device, whether a fix is held. */
interface PortState {
  pending: Sample[];
  lost: boolean;
  fixHeld: boolean;
  /** Wakes samples() when it waits for one of the above. */
  notify: () => void;
}

export class GpsSource implements SampleSource {
  readonly name = 'gps';
  readonly #options: GpsSourceOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #sampler: NmeaSampler;

  constructor(options: GpsSourceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#sampler = new NmeaSampler({
      minFixes: options.minFixes ?? GPS_DEFAULTS.minFixes,
      offset: options.offset ?? 0,
      precision: options.precision ?? GPS_DEFAULTS.precision,
      witness: options.witness ?? clockSync,
      floor: options.floor,
    });
  }

  /** What happened to the lines so far, by name (lines, RMC, samples, jump, ...). */
  counts(): Record<string, number> {
    return this.#sampler.counts();
  }

  /**
   * Opens the device (a missing, forbidden or locked device rejects here, before any
   * sample) and yields samples until `signal` aborts. A device lost later is reopened.
   */
  async *samples(signal: AbortSignal): AsyncGenerator<Sample> {
    let wake: (() => void) | null = null;
    const state: PortState = {
      pending: [],
      lost: false,
      fixHeld: false,
      notify: () => {
        wake?.();
        wake = null;
      },
    };
    const port = this.#receiverPort(state);
    await port.open();

    const reportCounts = this.#countsReporter();
    const statsTimer = setInterval(reportCounts, this.#options.statsInterval ?? 60_000);
    signal.addEventListener('abort', state.notify);
    try {
      while (!signal.aborted) {
        const sample = state.pending.shift();
        if (sample !== undefined) {
          yield sample;
          continue;
        }
        if (state.lost) {
          state.lost = false;
          state.pending.length = 0;
          state.fixHeld = false;
          this.#sampler.reset();
          if (!(await port.reopen(signal))) break;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener('abort', state.notify);
      clearInterval(statsTimer);
      reportCounts();
      await port.close();
    }
  }

  /** The device's port, its lines fed to the sampler: samples and a lost device land in `state`. */
  #receiverPort(state: PortState): ReceiverPort {
    const { device, ports = systemPorts } = this.#options;
    const port = new ReceiverPort(
      {
        device,
        baud: this.#options.baud,
        ports,
        clock: this.#clock,
        logger: this.#logger,
        maxLineLength: this.#options.maxLineLength,
        reopenDelays: this.#options.reopenDelays,
        huntWindow: this.#options.huntWindow,
      },
      {
        line: (line, receiveTime, arrival) => {
          this.#options.onLine?.(line, receiveTime);
          const result = this.#sampler.line(line, receiveTime, arrival);
          if (result.parsed.kind !== 'rejected') port.heard();
          state.fixHeld = this.#report(result, line, state.fixHeld);
          if (result.sample === null) return false;
          // Published before the burst's other sentences are parsed.
          state.pending.push(result.sample);
          state.notify();
          return true;
        },
        overlong: () => {
          this.#sampler.count('overlong');
          this.#logger.debug('line skipped', { reason: 'overlong' });
        },
        lost: () => {
          state.lost = true;
          state.notify();
        },
      },
    );
    return port;
  }

  /** Logs the line counts when they changed since the last call. */
  #countsReporter(): () => void {
    let reported = '';
    return () => {
      const counts = this.counts();
      const text = JSON.stringify(counts);
      if (text === reported) return;
      reported = text;
      this.#logger.info('gps counts', { device: this.#options.device, ...counts });
    };
  }

  /** Logs and meters what one line did; returns whether a published fix is held now. */
  #report(result: LineResult, line: string, fixHeld: boolean): boolean {
    const device = this.#options.device;
    const logger = this.#logger;
    const { parsed } = result;
    if (parsed.kind === 'time' && parsed.fix !== null) {
      const satellites = parsed.satellites;
      this.#options.metrics?.fix({
        valid: parsed.fix,
        consecutive: this.#sampler.goodFixes,
        satellites,
      });
    }
    if (result.skip !== null) logger.debug('line skipped', { reason: result.skip, line: printableLine(line) });
    if (result.acquired) logger.info('fix acquired', { device, fixes: this.#sampler.goodFixes });
    for (const notice of result.notices) logger[notice.level](notice.event, { device, ...notice.fields });
    if (result.skip === 'invalid-fix' && fixHeld) {
      logger.warn('fix lost', { device, line: printableLine(line) });
      return false;
    }
    return fixHeld || result.sample !== null;
  }
}
