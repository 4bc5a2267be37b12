// The receiver's serial port kept alive: open, baud-rate hunt, a watch for silence and
// for the device path naming another device, reopen with backoff after a loss. Lines
// come out with the receive stamps taken in the data event that completed them.
import { statSync } from 'node:fs';
import { abortableSleep, type Clock } from '../../clock.js';
import type { Logger } from '../../log.js';
import { diffSeconds, type Timespec } from '../../time.js';
import { LineSplitter, MAX_LINE_LENGTH } from './lines.js';
import { BAUD_RATES, closePort, openPort, setBaudRate, setLowLatency, type Port, type PortFactory } from './serial.js';

export interface ReceiverPortOptions {
  device: string;
  baud: number | 'auto';
  ports: PortFactory;
  clock: Clock;
  logger: Logger;
  maxLineLength?: number;
  /** Reopen delays after the device is lost, ms; the last one repeats. */
  reopenDelays?: readonly number[];
  /** How long `--baud auto` listens at one rate for a recognised sentence, ms. */
  huntWindow?: number;
}

export interface ReceiverPortEvents {
  /**
   * A complete line: `receiveTime` (CLOCK_REALTIME) and `arrival` (CLOCK_MONOTONIC_RAW) of
   * its data event. True: the next lines wait for the next turn of the event loop.
   */
  line(line: string, receiveTime: Timespec, arrival: Timespec): boolean;
  /** A line longer than the cap was dropped. */
  overlong(): void;
  /** The port closed (unplugged, path replaced): call reopen(). */
  lost(): void;
}

// Short and capped: the device must be read again within 5 s of coming back.
const REOPEN_DELAYS = [100, 250, 500, 1000];
// Receivers talk at least every 2 s (Garmin's RMC); a little more than that per rate.
const HUNT_WINDOW = 2500;
const SILENCE_SECONDS = 10;
// The path is checked once a second: in the data path while data flows, by a timer once
// the port has been quiet QUIET_SECONDS. Data pushes the timer back, so while a receiver
// talks once a second it fires about every 4 s: the process wakes about once a second, as
// gpsd does, not twice.
const WATCH_SECONDS = 1;
const QUIET_SECONDS = 5;

/**
 * What a path names (device number + inode): another value means another device. Synchronous:
 * a stat of a device node takes microseconds, and a thread-pool round trip every second
 * would wake the process twice for it.
 */
function deviceIdentity(path: string): string | null {
  try {
    const info = statSync(path);
    return `${info.rdev}:${info.ino}`;
  } catch {
    return null;
  }
}

export class ReceiverPort {
  readonly #options: ReceiverPortOptions;
  readonly #events: ReceiverPortEvents;
  readonly #splitter: LineSplitter;
  #port: Port | null = null;
  #identity: string | null = null;
  #baudIndex = 0;
  #heard = false;
  #lastDataAt: Timespec;
  #lastPathCheck: Timespec;
  #silent = false;
  #closed = false;
  #huntTimer: NodeJS.Timeout | null = null;
  #watchTimer: NodeJS.Timeout | null = null;

  constructor(options: ReceiverPortOptions, events: ReceiverPortEvents) {
    this.#options = options;
    this.#events = events;
    this.#lastDataAt = options.clock.monotonicRaw();
    this.#lastPathCheck = this.#lastDataAt;
    this.#splitter = new LineSplitter(
      (line, receiveTime, arrival) => events.line(line, receiveTime, arrival),
      () => events.overlong(),
      options.maxLineLength ?? MAX_LINE_LENGTH,
    );
  }

  get #hunting(): boolean {
    return this.#options.baud === 'auto';
  }

  get baudRate(): number {
    const { baud } = this.#options;
    return baud === 'auto' ? (BAUD_RATES[this.#baudIndex] as number) : baud;
  }

  /** Opens the device; a missing, forbidden or locked device rejects with its cause. */
  async open(): Promise<void> {
    // The first open fails loudly: a wrong path or permissions are for the user to fix.
    await this.#attach(await openPort(this.#options.ports, this.#options.device, this.baudRate));
    if (this.#hunting) this.#huntTimer = setInterval(() => this.#nextRate(), this.#options.huntWindow ?? HUNT_WINDOW);
    this.#armWatch();
  }

  /** A line was a sentence: the baud rate is right (the hunt stops). */
  heard(): void {
    if (this.#heard) return;
    this.#heard = true;
    if (this.#hunting)
      this.#options.logger.info('baud rate found', { device: this.#options.device, baud: this.baudRate });
  }

  /** Retries until the device opens again (true) or `signal` aborts (false). */
  async reopen(signal: AbortSignal): Promise<boolean> {
    const { device, logger, ports } = this.#options;
    const delays = this.#options.reopenDelays ?? REOPEN_DELAYS;
    this.#detach();
    logger.warn('device lost', { device });
    let lastError = '';
    for (let attempt = 0; !signal.aborted; attempt += 1) {
      await abortableSleep(delays[Math.min(attempt, delays.length - 1)] ?? 1000, signal);
      if (signal.aborted) break;
      try {
        const port = await openPort(ports, device, this.baudRate);
        logger.info('device back', { device, attempts: attempt + 1 });
        await this.#attach(port);
        return true;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        // Say each distinct reason once; "still missing" every 100 ms is noise.
        if (message !== lastError) logger.warn('device reopen failed', { device, error: message });
        lastError = message;
      }
    }
    return false;
  }

  async close(): Promise<void> {
    if (this.#huntTimer !== null) clearInterval(this.#huntTimer);
    this.#closed = true;
    if (this.#watchTimer !== null) clearTimeout(this.#watchTimer);
    this.#huntTimer = null;
    this.#watchTimer = null;
    const port = this.#port;
    this.#detach();
    this.#splitter.clear();
    if (port !== null) await closePort(port);
  }

  readonly #onData = (chunk: Buffer): void => {
    // Stamp first: everything after this line is parsing work the stamp must not include.
    const receiveTime = this.#options.clock.realtime();
    const arrival = this.#options.clock.monotonicRaw();
    this.#lastDataAt = arrival;
    if (this.#silent) {
      this.#silent = false;
      this.#options.logger.info('data again', { device: this.#options.device });
    }
    this.#splitter.push(chunk, receiveTime, arrival);
    if (diffSeconds(arrival, this.#lastPathCheck) >= WATCH_SECONDS) this.#checkPath();
  };

  readonly #onClose = (): void => this.#events.lost();

  readonly #onError = (error: Error): void =>
    this.#options.logger.warn('device error', { device: this.#options.device, error: error.message });

  async #attach(port: Port): Promise<void> {
    const { device, clock, logger } = this.#options;
    this.#port = port;
    this.#identity = deviceIdentity(device);
    this.#lastDataAt = clock.monotonicRaw();
    this.#heard = false;
    this.#splitter.clear();
    port.on('data', this.#onData);
    port.on('close', this.#onClose);
    port.on('error', this.#onError);
    const lowLatency = await setLowLatency(port);
    logger.info('device open', { device, baud: this.#hunting ? `auto:${this.baudRate}` : this.baudRate, lowLatency });
  }

  /** Stops listening to the current port (it is closed, or about to be). */
  #detach(): void {
    const port = this.#port;
    if (port === null) return;
    port.off('data', this.#onData);
    port.off('close', this.#onClose);
    port.off('error', this.#onError);
    this.#port = null;
  }

  #nextRate(): void {
    const port = this.#port;
    if (this.#heard || port === null || !port.isOpen) return;
    const { device, logger } = this.#options;
    this.#baudIndex = (this.#baudIndex + 1) % BAUD_RATES.length;
    this.#splitter.clear();
    logger.info('baud rate hunt', { device, baud: this.baudRate });
    setBaudRate(port, this.baudRate).catch((error: unknown) =>
      logger.warn('baud rate change failed', { device, error: error instanceof Error ? error.message : String(error) }),
    );
  }

  /** The next look: QUIET_SECONDS after the last data, then every WATCH_SECONDS while it stays quiet. */
  #armWatch(): void {
    if (this.#closed) return;
    const quiet = diffSeconds(this.#options.clock.monotonicRaw(), this.#lastDataAt);
    const seconds = Math.min(Math.max(QUIET_SECONDS - quiet, WATCH_SECONDS), QUIET_SECONDS);
    this.#watchTimer = setTimeout(() => {
      try {
        this.#watch();
      } finally {
        this.#armWatch();
      }
    }, seconds * 1000);
  }

  /**
   * An open port that says nothing (receiver unpowered, wrong device or rate), or a path that names another device now.
   */
  #watch(): void {
    const watched = this.#port;
    if (watched === null || !watched.isOpen) return;
    const { device, clock, logger } = this.#options;
    const quiet = diffSeconds(clock.monotonicRaw(), this.#lastDataAt);
    if (!this.#silent && quiet > SILENCE_SECONDS) {
      this.#silent = true;
      logger.warn('no data', { device, seconds: Math.round(quiet) });
    }
    this.#checkPath();
  }

  /** Closes the port when its path no longer names the device it opened. */
  #checkPath(): void {
    const watched = this.#port;
    if (watched === null || !watched.isOpen) return;
    this.#lastPathCheck = this.#options.clock.monotonicRaw();
    const expected = this.#identity;
    if (expected === null) return;
    const { device, logger } = this.#options;
    const current = deviceIdentity(device);
    if (current === expected) return;
    logger.warn(current === null ? 'device path gone' : 'device path replaced', { device });
    // Closing emits 'close': the same path as a disconnect the port reports itself.
    void closePort(watched);
  }
}
