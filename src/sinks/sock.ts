// chrony's SOCK refclock socket as a sink. chronyd makes the socket and removes it when
// it exits, so the reader comes and goes under a running feeder: every fault is a lost
// sample, logged once per change of state and retried, never an end of the feed.
//
// Events it logs:
//   info  socket connected       sink path [after]    (first connect, or back after a fault)
//   info  socket reconnected     sink path after      (the reader restarted between two samples)
//   warn  socket unavailable     sink path error hint (once per new error code)
//   warn  socket still unavailable sink path error lost since hint (the same fault, every 5 minutes)
//   debug socket retry failed    sink error           (the same fault again)
//   debug sample dropped         sink error hint      (the reader's queue is full: EAGAIN)
//   debug sample not sent        sink leap            (leap 3 "not in sync": chrony has no such sample)
//   info  socket closed          sink sent errors
import { ChronySock, sockErrorHint, type SockLayoutChoice } from '../sock.js';
import type { Leap } from '../shm.js';
import type { Sample } from '../sample.js';
import type { Logger } from '../log.js';
import { monotonicRaw } from '../clock.js';
import { outOfRange } from '../errors.js';
import { addSeconds, compare, diffSeconds, type Timespec } from '../time.js';
import type { Sink } from './sink.js';

export interface SockSinkOptions {
  path: string;
  logger: Logger;
  /** How often a lasting fault is warned of again (default STILL_UNAVAILABLE_WARN_SECONDS). */
  warnAgainSeconds?: number;
  /** The datagram layout (default native; '40' for ntpd-rs on a 32-bit time_t platform). */
  layout?: SockLayoutChoice;
}

/**
 * Connect attempts after a fault wait this long, doubling up to the cap. The cap keeps a
 * 1 Hz source reconnecting at its very next sample once chronyd is back; the floor keeps
 * a fast source from spending a syscall per sample on a reader that is down.
 */
export const RECONNECT_BACKOFF_SECONDS = { first: 0.125, max: 1 } as const;

/**
 * A fault that lasts is warned of again this often, with the samples lost so far: a
 * journal read hours into an outage still shows it, without a line per lost sample.
 */
export const STILL_UNAVAILABLE_WARN_SECONDS = 300;

/** A full receive queue: this sample is lost, the connection is fine. */
function readerBusy(error: NodeJS.ErrnoException): boolean {
  return error.code === 'EAGAIN' || error.code === 'EWOULDBLOCK' || error.code === 'ENOBUFS';
}

export class SockSink implements Sink {
  readonly name: string;
  readonly path: string;
  readonly #logger: Logger;
  readonly #socket: ChronySock;
  readonly #warnAgainSeconds: number;
  #sent = 0;
  #errors = 0;
  /** The error code of the current fault; undefined while connected or before open(). */
  #fault: string | undefined;
  #connectedOnce = false;
  #backoff: number = RECONNECT_BACKOFF_SECONDS.first;
  #nextAttempt: Timespec | undefined;
  /** When the current fault began and was last warned of (raw clock). */
  #faultSince: Timespec | undefined;
  #lastWarned: Timespec | undefined;
  /** Samples lost since the current fault began. */
  #lostInFault = 0;

  constructor(options: SockSinkOptions) {
    this.#socket = new ChronySock(options.path, options.layout); // checks the path and layout: TypeError/RangeError
    this.path = this.#socket.path;
    this.name = `sock:${this.path}`;
    this.#logger = options.logger;
    this.#warnAgainSeconds = options.warnAgainSeconds ?? STILL_UNAVAILABLE_WARN_SECONDS;
  }

  get sent(): number {
    return this.#sent;
  }

  /** Samples that did not reach the reader. */
  get errors(): number {
    return this.#errors;
  }

  /** Connects if it can; a reader not there yet is logged, not thrown: the feed waits for it. */
  open(): void {
    this.#connect();
  }

  #connect(): boolean {
    const error = this.#socket.connect();
    if (error === undefined) {
      this.#connected();
      return true;
    }
    this.#failed(error);
    return false;
  }

  #connected(): void {
    if (this.#fault !== undefined || !this.#connectedOnce) {
      this.#logger.info('socket connected', {
        sink: this.name,
        path: this.path,
        ...(this.#fault === undefined ? {} : { after: this.#fault }),
      });
    }
    this.#connectedOnce = true;
    this.#fault = undefined;
    this.#faultSince = undefined;
    this.#lostInFault = 0;
    this.#backoff = RECONNECT_BACKOFF_SECONDS.first;
    this.#nextAttempt = undefined;
  }

  #failed(error: NodeJS.ErrnoException): void {
    const code = error.code ?? 'UNKNOWN';
    const now = monotonicRaw();
    if (code !== this.#fault) {
      const hint = sockErrorHint(code, this.path);
      this.#logger.warn('socket unavailable', { sink: this.name, path: this.path, error: code, hint });
      this.#faultSince ??= now;
      this.#lastWarned = now;
    } else if (this.#lastWarned !== undefined && diffSeconds(now, this.#lastWarned) >= this.#warnAgainSeconds) {
      const since = this.#faultSince === undefined ? undefined : Math.round(diffSeconds(now, this.#faultSince));
      const hint = sockErrorHint(code, this.path);
      this.#logger.warn('socket still unavailable', {
        sink: this.name,
        path: this.path,
        error: code,
        lost: this.#lostInFault,
        since,
        hint,
      });
      this.#lastWarned = now;
    } else {
      this.#logger.debug('socket retry failed', { sink: this.name, error: code });
    }
    this.#fault = code;
    this.#nextAttempt = addSeconds(now, this.#backoff);
    this.#backoff = Math.min(this.#backoff * 2, RECONNECT_BACKOFF_SECONDS.max);
  }

  publish(sample: Sample, leap: Leap): boolean {
    // The SOCK datagram has no precision field, but a sample the segment would refuse is refused here too.
    if (!Number.isInteger(sample.precision)) throw outOfRange('precision', 'an integer', sample.precision);
    if (leap === 3) {
      this.#logger.debug('sample not sent', { sink: this.name, leap });
      return false;
    }
    if (!this.#socket.connected) {
      if (this.#nextAttempt !== undefined && compare(monotonicRaw(), this.#nextAttempt) < 0) return this.#lost();
      if (!this.#connect()) return this.#lost();
    }
    const send = (): NodeJS.ErrnoException | undefined => this.#socket.send(sample.clockTime, sample.receiveTime, leap);
    let error = send();
    if (error !== undefined && !readerBusy(error)) {
      // The reader went away (chronyd stopped or restarted): a socket that is back
      // already takes this very sample.
      const first = error.code;
      this.#socket.close();
      if (!this.#connect()) return this.#lost();
      error = send();
      if (error === undefined)
        this.#logger.info('socket reconnected', { sink: this.name, path: this.path, after: first });
    }
    if (error !== undefined) {
      if (readerBusy(error)) {
        this.#logger.debug('sample dropped', {
          sink: this.name,
          error: error.code,
          hint: sockErrorHint(error.code, this.path),
        });
      } else {
        this.#socket.close();
        this.#failed(error);
      }
      return this.#lost();
    }
    this.#sent += 1;
    return true;
  }

  #lost(): false {
    this.#errors += 1;
    if (this.#fault !== undefined) this.#lostInFault += 1;
    return false;
  }

  close(): void {
    this.#socket.close();
    this.#logger.info('socket closed', { sink: this.name, sent: this.#sent, errors: this.#errors });
  }
}
