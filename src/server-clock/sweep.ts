// Date probes at spread phases over several keep-alive connections to one server: a first
// sweep across one second brackets the server's tick between two sends (the Date second
// and its phase to the sends' spacing at once), then each later tick is met by probes
// spread over the window where it can still fall, narrowing it several-fold per second.
// Hard bounds only: every answer is one probeInterval(), intersected.
import type { Clock } from '../clock.js';
import { silentLogger, type Logger } from '../log.js';
import { parseHttpDate, utcYear } from '../sources/http/date.js';
import { median } from '../sources/http/posterior.js';
import { intersect, probeInterval, type Interval } from '../sources/http/interval.js';
import { failureReason, waitUntil } from '../sources/http/measure.js';
import { createConnection, probe, type ProbeConnection, type ProbeResponse } from '../sources/http/probe.js';
import { localClockVerdict, ServerTls, TlsGate } from '../sources/http/gate.js';
import type { CertificateWindow } from '../sources/http/tls.js';
import { diffSeconds, toSeconds } from '../time.js';

export interface SweepOptions {
  /** Probe times come from its realtime(): the steady timescale the intervals are on. */
  clock: Clock;
  /** Parallel keep-alive connections (default 4). */
  connections?: number;
  /** Sends across the first second (default 20: the tick bracketed to 50 ms + a round trip). */
  sweepSends?: number;
  /** Sends spread over the window at each later tick (default 8). */
  tickSends?: number;
  proxy?: string;
  ca?: string | Buffer;
  /** Per-request limit, ms (default 3000). */
  timeoutMs?: number;
  logger?: Logger;
  /** Judges its https connections (default: one for `ca`). */
  gate?: TlsGate;
}

/** A server this sweep can no longer use (no Date, a cache, not one clock, network errors). */
export class SweepFailure extends Error {
  readonly code = 'ERR_SERVER_CLOCK_SWEEP';
}

export class DateSweep {
  readonly url: URL;
  #interval: Interval | undefined;
  readonly #rtts: number[] = [];
  readonly #dates = new Set<number>();
  readonly #clock: Clock;
  readonly #connections: ProbeConnection[];
  readonly #busy: boolean[];
  readonly #sweepSends: number;
  readonly #tickSends: number;
  readonly #logger: Logger;
  #failure: SweepFailure | undefined;
  /** Probes answered with a usable Date. */
  answered = 0;
  /** Its https connections, each judged at the first Date on it (gate.ts). */
  readonly #tls: ServerTls;

  constructor(url: URL, options: SweepOptions) {
    this.url = url;
    this.#clock = options.clock;
    this.#sweepSends = options.sweepSends ?? 20;
    this.#tickSends = options.tickSends ?? 8;
    this.#logger = options.logger ?? silentLogger;
    const connectionOptions = {
      timeoutMs: options.timeoutMs ?? 3000,
      ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    };
    this.#tls = new ServerTls(options.gate ?? new TlsGate(options.ca, localClockVerdict(toSeconds(options.clock.realtime()))));
    const count = options.connections ?? 4;
    this.#connections = Array.from({ length: count }, () => createConnection(url, { ...connectionOptions, onTls: this.#tls.connected }));
    this.#busy = this.#connections.map(() => false);
  }

  /** The validity windows of the certificate chains its https connections were trusted on. */
  get windows(): CertificateWindow[] {
    return this.#tls.windows;
  }

  /** Some connection's certificates could be judged only against the server's time (tls.ts). */
  get timeUnverified(): boolean {
    return this.#tls.trust === 'time-unverified';
  }

  /** theta on the sweep clock's timescale, or undefined before the first answer. */
  get interval(): Interval | undefined {
    return this.#interval;
  }

  /** Shortest round trip seen, seconds. */
  get rtt(): number {
    return Math.min(...this.#rtts);
  }

  /**
   * Every connection at once (connect, TLS, first interval), then sends spread over a
   * second until two Date seconds have been seen: the tick lies between them.
   */
  async first(signal: AbortSignal): Promise<Interval> {
    await Promise.all(this.#connections.map((_, index) => this.#send(index)));
    this.#throwIfFailed();
    const spacing = 1 / this.#sweepSends;
    const start = toSeconds(this.#clock.realtime());
    const inFlight: Promise<void>[] = [];
    for (let step = 1; step <= this.#sweepSends + 1 && this.#dates.size < 2; step += 1) {
      await waitUntil(this.#clock, start + step * spacing, signal);
      this.#throwIfFailed();
      const free = this.#busy.indexOf(false);
      if (free >= 0) inFlight.push(this.#send(free));
    }
    await Promise.all(inFlight);
    return this.#result();
  }

  /** One later tick: sends spread over the window where the tick can still fall. */
  async refine(signal: AbortSignal): Promise<Interval> {
    const current = this.#result();
    const upDelay = median(this.#rtts) / 2;
    const width = current.high - current.low;
    // The first tick whose window opens after the sends can be scheduled.
    const earliest = toSeconds(this.#clock.realtime()) + upDelay + 0.02;
    const tick = Math.ceil(earliest + current.high);
    const spacing = width / (this.#tickSends + 1);
    const inFlight: Promise<void>[] = [];
    for (let step = 1; step <= this.#tickSends; step += 1) {
      await waitUntil(this.#clock, tick - current.high + step * spacing - upDelay, signal);
      this.#throwIfFailed();
      // Round robin from the step, so sends closer together than a round trip still go out.
      const free = this.#connections.findIndex((_, offset) => !this.#busy[(step + offset) % this.#busy.length]);
      if (free >= 0) inFlight.push(this.#send((step + free) % this.#busy.length));
    }
    await Promise.all(inFlight);
    return this.#result();
  }

  async close(): Promise<void> {
    await Promise.all(this.#connections.map((connection) => connection.destroy().catch(() => {})));
  }

  /** Destroys the connections at once: pending probes fail (the caller is aborting). */
  abort(reason: Error): void {
    for (const connection of this.#connections) connection.destroy(reason).catch(() => {});
  }

  #result(): Interval {
    this.#throwIfFailed();
    if (this.#interval === undefined) throw new SweepFailure('no probe answered');
    return this.#interval;
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  async #send(index: number): Promise<void> {
    const connection = this.#connections[index];
    if (connection === undefined || this.#failure) return;
    this.#busy[index] = true;
    let response: ProbeResponse;
    try {
      response = await probe(connection, this.url, this.#clock);
    } catch (error) {
      // One lost probe on one connection is not the server's fault unless none answer.
      this.#failure ??= this.answered === 0 ? new SweepFailure(failureReason(error)) : undefined;
      return;
    } finally {
      this.#busy[index] = false;
    }
    this.#answer(response);
  }

  #answer(response: ProbeResponse): void {
    if (response.age !== undefined) return this.#fail(`cached: response carries Age: ${response.age}`);
    if (response.date === undefined) return this.#fail(`no Date header (status ${response.statusCode})`);
    const date = parseHttpDate(response.date, utcYear(response.sendTime.sec));
    if (date === undefined) return this.#fail(`unparseable Date: ${JSON.stringify(response.date.slice(0, 64))}`);
    try {
      this.#tls.dated(date.seconds);
    } catch (error) {
      return this.#fail(failureReason(error));
    }
    const bounds = probeInterval(date.seconds, response.sendTime, response.receiveTime);
    const narrowed = this.#interval === undefined ? bounds : intersect(this.#interval, bounds);
    if (narrowed === undefined) {
      return this.#fail(`Date intervals do not intersect after ${this.answered + 1} probes: not one clock (load balancer backends), a frozen Date or a clock step`);
    }
    this.#logger.debug('server clock probe', { url: this.url.href, date: response.date, low: bounds.low, high: bounds.high });
    this.#interval = narrowed;
    this.#rtts.push(diffSeconds(response.receiveTime, response.sendTime));
    this.#dates.add(date.seconds);
    this.answered += 1;
  }

  #fail(reason: string): void {
    this.#failure ??= new SweepFailure(reason);
  }
}
