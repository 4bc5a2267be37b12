// The SHM segment as a sink, its whole life: attach, prepare ("not in sync" until the
// first sample), watch for removal (ipcrm) and attach anew, release (valid = 0, detach).
//
// Events it logs:
//   info  segment attached       unit key shmId created perm source
//   warn  segment world-writable unit key perm        (units 0-1: anyone could feed ntpd)
//   warn  segment removed        unit key             (ipcrm under us) -> info segment reattached
//   warn  segment reattach failed unit error          (retried at the next check, once a second)
//   debug segment watch unavailable unit error        (IPC_STAT refused after a privilege drop)
//   info  segment detached       unit published       (valid = 0 written first)
import { NtpdShm, isRootOnlyUnit, keyText, type Leap } from '../shm.js';
import type { Sample } from '../sample.js';
import type { Logger } from '../log.js';
import { monotonicRaw } from '../clock.js';
import { diffSeconds, type Timespec } from '../time.js';
import type { Sink } from './sink.js';

export interface ShmSinkOptions {
  unit: number;
  /** Permissions if the segment has to be created (default: ntpd's convention). */
  perm?: number;
  logger: Logger;
  /** Named in the attach line. */
  sourceName: string;
  /** Called each time the segment was removed under the sink and attached anew. */
  onReattach?: () => void;
}

/** How often the sink checks that its segment was not removed under it (ipcrm). */
const WATCH_INTERVAL_SECONDS = 1;

/** Units 0-1 are root-only by convention: a world-writable one lets anyone steer ntpd. */
export function isUnsafeSegment(unit: number, perm: number): boolean {
  return isRootOnlyUnit(unit) && (perm & 0o002) !== 0;
}

export class ShmSink implements Sink {
  readonly name: string;
  readonly unit: number;
  readonly #options: ShmSinkOptions;
  readonly #shmOptions: { unit: number; perm?: number };
  #shm: NtpdShm | undefined;
  #published = 0;
  #reattached = 0;
  #watchable = true;
  #lastWatch: Timespec | undefined;
  #reattachFailures = 0;

  constructor(options: ShmSinkOptions) {
    this.#options = options;
    this.unit = options.unit;
    this.name = `shm:${options.unit}`;
    this.#shmOptions = { unit: options.unit, ...(options.perm === undefined ? {} : { perm: options.perm }) };
  }

  /** The attached segment (undefined before open() and after close()). */
  get segment(): NtpdShm | undefined {
    return this.#shm?.attached ? this.#shm : undefined;
  }

  /** Times the segment was removed under the sink and attached anew. */
  get reattached(): number {
    return this.#reattached;
  }

  open(): void {
    const { unit, logger, sourceName } = this.#options;
    const shm = new NtpdShm(this.#shmOptions);
    this.#shm = shm;
    const perm = this.#prepare(shm);
    logger.info('segment attached', { unit, key: keyText(unit), shmId: shm.shmId, created: shm.created, perm, source: sourceName });
  }

  /** "Not in sync" until the first sample; warns about a world-writable root-only unit. Returns the perm text. */
  #prepare(segment: NtpdShm): string | undefined {
    const { unit, logger } = this.#options;
    segment.valid = 0;
    segment.leap = 3;
    let perm: number;
    try {
      ({ perm } = segment.stat());
    } catch {
      return undefined; // IPC_STAT refused (a root-only segment after the privilege drop): nothing to check
    }
    const permText = `0${perm.toString(8)}`;
    if (isUnsafeSegment(unit, perm)) {
      logger.warn('segment world-writable', { unit, key: keyText(unit), perm: permText, hint: 'any local user can feed the time daemon; recreate it 0600' });
    }
    return permText;
  }

  /** The segment we write to still is the unit's segment; otherwise attach the new one. */
  #ensureSegment(shm: NtpdShm): NtpdShm {
    if (!this.#watchable) return shm;
    const { unit, logger } = this.#options;
    // An IPC_STAT per sample is a syscall on the write path for nothing: a removal is
    // noticed within a second of the raw clock all the same.
    const now = monotonicRaw();
    if (this.#lastWatch !== undefined && diffSeconds(now, this.#lastWatch) < WATCH_INTERVAL_SECONDS) return shm;
    this.#lastWatch = now;
    let removed: boolean;
    try {
      removed = shm.stat().removed;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
      // A root-only segment stays writable after the privilege drop, but IPC_STAT needs read access.
      this.#watchable = false;
      logger.debug('segment watch unavailable', { unit, error });
      return shm;
    }
    if (!removed) return shm;
    if (this.#reattachFailures === 0) logger.warn('segment removed', { unit, key: keyText(unit), hint: 'readers attached to the old segment see nothing until they restart' });
    let fresh: NtpdShm;
    try {
      fresh = new NtpdShm(this.#shmOptions);
      this.#prepare(fresh);
      shm.detach();
    } catch (error) {
      this.#reattachFailures += 1;
      (this.#reattachFailures === 1 ? logger.warn : logger.debug)('segment reattach failed', { unit, error });
      return shm;
    }
    this.#shm = fresh;
    this.#reattachFailures = 0;
    this.#reattached += 1;
    this.#options.onReattach?.();
    logger.info('segment reattached', { unit, key: keyText(unit), shmId: fresh.shmId, created: fresh.created });
    return fresh;
  }

  publish(sample: Sample, leap: Leap): boolean {
    if (this.#shm === undefined) throw Object.assign(new Error(`${this.name} is not open`), { code: 'ERR_INVALID_STATE' });
    const shm = this.#ensureSegment(this.#shm);
    shm.update(sample.clockTime, { receiveTime: sample.receiveTime, precision: sample.precision, leap });
    this.#published += 1;
    return true;
  }

  close({ keepLastSample }: { keepLastSample: boolean }): void {
    const shm = this.#shm;
    if (shm === undefined) return;
    if (shm.attached) {
      if (!(keepLastSample && this.#published > 0)) shm.valid = 0;
      shm.detach();
    }
    this.#options.logger.info('segment detached', { unit: this.unit, published: this.#published });
  }
}
