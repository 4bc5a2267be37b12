// GPS NMEA over a serial port as a SampleSource: port handling (reopen with backoff,
// baud hunting), receive stamps taken as bytes arrive, the sampler's rules for the rest.
import { stat } from 'node:fs/promises';
import { abortableSleep, systemClock, type Clock } from '../../clock.js';
import { silentLogger, type Logger } from '../../log.js';
import type { SourceMetrics } from '../../metrics.js';
import type { Sample, SampleSource } from '../../sample.js';
import { diffSeconds, type Timespec } from '../../time.js';
import { LineSplitter, MAX_LINE_LENGTH } from './lines.js';
import { NmeaSampler } from './sampler.js';
import { BAUD_RATES, closePort, openPort, setBaudRate, setLowLatency, systemPorts, type Port, type PortFactory } from './serial.js';

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
}

// Short and capped: the device must be read again within 5 s of coming back.
const REOPEN_DELAYS = [100, 250, 500, 1000];
// Receivers talk at least every 2 s (Garmin's RMC); a little more than that per rate.
const HUNT_WINDOW = 2500;
const SILENCE_SECONDS = 10;

export class GpsSource implements SampleSource {
  readonly name = 'gps';
  readonly #options: GpsSourceOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly sampler: NmeaSampler;

  constructor(options: GpsSourceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.sampler = new NmeaSampler({
      minFixes: options.minFixes ?? 3,
      offset: options.offset ?? 0,
      precision: options.precision ?? -1,
      ...(options.floor === undefined ? {} : { floor: options.floor }),
    });
  }

  /**
   * Opens the device (a missing, forbidden or locked device rejects here, before any
   * sample) and yields samples until `signal` aborts. A device lost later is reopened.
   */
  async *samples(signal: AbortSignal): AsyncGenerator<Sample> {
    const { device, ports = systemPorts } = this.#options;
    const logger = this.#logger;
    const clock = this.#clock;
    const sampler = this.sampler;
    const hunting = this.#options.baud === 'auto';
    let baudIndex = 0;
    const baudRate = (): number => (hunting ? (BAUD_RATES[baudIndex] as number) : (this.#options.baud as number));

    const pending: Sample[] = [];
    let wake: (() => void) | null = null;
    const notify = (): void => {
      wake?.();
      wake = null;
    };

    let heardSentence = false;
    let lastSample: Sample | null = null;
    const splitter = new LineSplitter(
      (line, receiveTime, arrival) => {
        this.#options.onLine?.(line, receiveTime);
        const result = sampler.line(line, receiveTime, arrival);
        if (result.parsed.kind === 'time' && result.parsed.fix !== null) {
          const { fix, satellites } = result.parsed;
          this.#options.metrics?.fix({ valid: fix, consecutive: sampler.goodFixes, ...(satellites === undefined ? {} : { satellites }) });
        }
        if (result.parsed.kind !== 'rejected' && !heardSentence) {
          heardSentence = true;
          if (hunting) logger.info('baud rate found', { device, baud: baudRate() });
        }
        if (result.skip !== null) logger.debug('line skipped', { reason: result.skip, line });
        if (result.acquired) logger.info('fix acquired', { device, fixes: sampler.goodFixes });
        if (result.skip === 'invalid-fix' && lastSample !== null) {
          logger.warn('fix lost', { device, line });
          lastSample = null;
        }
        if (result.sample !== null) {
          lastSample = result.sample;
          pending.push(result.sample);
          notify();
        }
      },
      () => {
        sampler.count('overlong');
        logger.debug('line skipped', { reason: 'overlong' });
      },
      this.#options.maxLineLength ?? MAX_LINE_LENGTH,
    );

    // Asserted, not annotated: assigned in attach(), so TS must not narrow it to null here.
    let port = null as Port | null;
    let lost = false;
    let lastDataAt = clock.monotonicRaw();
    let silent = false;
    const onData = (chunk: Buffer): void => {
      // Stamp first: everything after this line is parsing work the stamp must not include.
      const receiveTime = clock.realtime();
      const arrival = clock.monotonicRaw();
      lastDataAt = arrival;
      if (silent) {
        silent = false;
        logger.info('data again', { device });
      }
      splitter.push(chunk, receiveTime, arrival);
    };
    const onClose = (): void => {
      lost = true;
      notify();
    };
    // What the path named when it was opened (device number + inode): a path that vanished
    // or names another device now means ours is gone, even if the port never said so.
    let openedIdentity: string | null = null;
    const attach = async (opened: Port): Promise<void> => {
      port = opened;
      openedIdentity = await deviceIdentity(device);
      lastDataAt = clock.monotonicRaw();
      heardSentence = false;
      splitter.clear();
      opened.on('data', onData);
      opened.on('close', onClose);
      opened.on('error', (error: Error) => logger.warn('device error', { device, error: error.message }));
      const lowLatency = await setLowLatency(opened);
      logger.info('device open', { device, baud: hunting ? `auto:${baudRate()}` : baudRate(), lowLatency });
    };

    // The first open fails loudly: a wrong path or permissions are for the user to fix.
    await attach(await openPort(ports, device, baudRate()));

    const huntTimer = hunting
      ? setInterval(() => {
          if (heardSentence || port === null || !port.isOpen) return;
          baudIndex = (baudIndex + 1) % BAUD_RATES.length;
          splitter.clear();
          logger.info('baud rate hunt', { device, baud: baudRate() });
          setBaudRate(port, baudRate()).catch((error: unknown) =>
            logger.warn('baud rate change failed', { device, error: error instanceof Error ? error.message : String(error) }),
          );
        }, this.#options.huntWindow ?? HUNT_WINDOW)
      : null;
    let reported = '';
    const reportCounts = (): void => {
      const counts = JSON.stringify(Object.fromEntries(sampler.counts));
      if (counts === reported) return;
      reported = counts;
      logger.info('gps counts', { device, ...Object.fromEntries(sampler.counts) });
    };
    const statsTimer = setInterval(reportCounts, this.#options.statsInterval ?? 60_000);
    // An open port that says nothing: receiver unpowered, wrong device, wrong baud rate.
    const watchTimer = setInterval(() => {
      const watched = port;
      if (watched === null || !watched.isOpen) return;
      const quiet = diffSeconds(clock.monotonicRaw(), lastDataAt);
      if (!silent && quiet > SILENCE_SECONDS) {
        silent = true;
        logger.warn('no data', { device, seconds: Math.round(quiet) });
      }
      if (openedIdentity === null) return;
      const expected = openedIdentity;
      void deviceIdentity(device).then((current) => {
        if (current === expected || watched !== port || !watched.isOpen) return;
        logger.warn(current === null ? 'device path gone' : 'device path replaced', { device });
        // Closing emits 'close': the same path as a disconnect the port reports itself.
        void closePort(watched);
      });
    }, 1000);
    const onAbort = (): void => notify();
    signal.addEventListener('abort', onAbort);

    try {
      while (!signal.aborted) {
        const sample = pending.shift();
        if (sample !== undefined) {
          yield sample;
          continue;
        }
        if (lost) {
          lost = false;
          pending.length = 0;
          lastSample = null;
          sampler.reset();
          logger.warn('device lost', { device });
          const reopened = await this.#reopen(ports, baudRate(), signal);
          if (reopened === null) break;
          await attach(reopened);
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (huntTimer !== null) clearInterval(huntTimer);
      clearInterval(statsTimer);
      clearInterval(watchTimer);
      reportCounts();
      if (port !== null) {
        port.off('close', onClose);
        await closePort(port);
      }
    }
  }

  /** Retries until the device opens again or `signal` aborts (null). */
  async #reopen(ports: PortFactory, baudRate: number, signal: AbortSignal): Promise<Port | null> {
    const delays = this.#options.reopenDelays ?? REOPEN_DELAYS;
    let lastError = '';
    for (let attempt = 0; !signal.aborted; attempt += 1) {
      const delay = delays[Math.min(attempt, delays.length - 1)] ?? 1000;
      await abortableSleep(delay, signal);
      if (signal.aborted) break;
      try {
        const port = await openPort(ports, this.#options.device, baudRate);
        this.#logger.info('device back', { device: this.#options.device, attempts: attempt + 1 });
        return port;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        // Say each distinct reason once; "still missing" every 100 ms is noise.
        if (message !== lastError) this.#logger.warn('device reopen failed', { device: this.#options.device, error: message });
        lastError = message;
      }
    }
    return null;
  }
}

async function deviceIdentity(path: string): Promise<string | null> {
  try {
    const info = await stat(path);
    return `${info.rdev}:${info.ino}`;
  } catch {
    return null;
  }
}

