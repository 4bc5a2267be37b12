// The SHM segment as a sink, its whole life: attach, prepare ("not in sync" until the
// first sample), watch for removal (ipcrm) and attach anew, release (valid = 0, detach).
//
// Events it logs:
//   info  segment attached       unit key shmId created perm source
//   warn  segment not root-only  unit key perm uid hint (units 0-1 not root's 0600: anyone could feed ntpd)
//   warn  segment removed        unit key             (ipcrm under us) -> info segment reattached
//   warn  segment reattach failed unit error          (retried at the next check, once a second)
//   debug segment watched by key unit reason          (IPC_STAT refused after a privilege drop)
//   info  segment detached       unit published       (valid = 0, leap = 3 written first)
// A root-only unit removed after the privilege drop fails the feed (ERR_SEGMENT_REMOVED).
import { codedError } from '../errors.js';
import { NtpdShm, currentShmId, isRootOnlyUnit, keyText, rootOnlyUnitConcern, type Leap } from '../shm.js';
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

export class ShmSink implements Sink {
  readonly name: string;
  readonly unit: number;
  readonly #options: ShmSinkOptions;
  readonly #shmOptions: { unit: number; perm?: number };
  #shm: NtpdShm | undefined;
  #published = 0;
  #reattached = 0;
  /**
   * How removal is noticed: IPC_STAT's removal mark, or (once IPC_STAT is refused after a
   * privilege drop on a 0600 segment) the shmid the unit's key names, which needs no permission.
   */
  #watch: 'stat' | 'key' = 'stat';
  #lastWatch: Timespec | undefined;
  #reattachFailures = 0;

  constructor(options: ShmSinkOptions) {
    this.#options = options;
    this.unit = options.unit;
    this.name = `shm:${options.unit}`;
    this.#shmOptions = { unit: options.unit, perm: options.perm };
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
    logger.info('segment attached', {
      unit,
      key: keyText(unit),
      shmId: shm.shmId,
      created: shm.created,
      perm,
      source: sourceName,
    });
  }

  /** "Not in sync" until the first sample; warns about a root-only unit anyone may write. Returns the perm text. */
  #prepare(segment: NtpdShm): string | undefined {
    const { unit, logger } = this.#options;
    segment.valid = 0;
    segment.leap = 3;
    let stat;
    try {
      stat = segment.stat();
    } catch {
      return undefined; // IPC_STAT refused (a root-only segment after the privilege drop): nothing to check
    }
    const permText = `0${stat.perm.toString(8)}`;
    const concern = rootOnlyUnitConcern(unit, stat);
    if (concern !== undefined)
      logger.warn('segment not root-only', { unit, key: keyText(unit), perm: permText, uid: stat.uid, hint: concern });
    return permText;
  }

  /** The segment was removed (ipcrm) or replaced, by IPC_STAT while allowed, by key lookup after. */
  #removed(shm: NtpdShm): boolean {
    const { unit, logger } = this.#options;
    if (this.#watch === 'stat') {
      try {
        return shm.stat().removed;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
        // A 0600 segment stays writable after the privilege drop, but IPC_STAT needs read access.
        this.#watch = 'key';
        logger.debug('segment watched by key', { unit, reason: 'IPC_STAT refused after the privilege drop' });
      }
    }
    return currentShmId(unit) !== shm.shmId;
  }

  /** The segment we write to still is the unit's segment; otherwise attach the new one. */
  #ensureSegment(shm: NtpdShm): NtpdShm {
    const { unit, logger } = this.#options;
    // An IPC_STAT per sample is a syscall on the write path for nothing: a removal is
    // noticed within a second of the raw clock all the same.
    const now = monotonicRaw();
    if (this.#lastWatch !== undefined && diffSeconds(now, this.#lastWatch) < WATCH_INTERVAL_SECONDS) return shm;
    this.#lastWatch = now;
    if (!this.#removed(shm)) return shm;
    if (this.#reattachFailures === 0)
      logger.warn('segment removed', {
        unit,
        key: keyText(unit),
        hint: 'readers attached to the old segment see nothing until they restart',
      });
    const euid = process.geteuid?.();
    if (isRootOnlyUnit(unit) && euid !== undefined && euid !== 0) {
      // Made anew by this unprivileged process, a root-only unit would be owned by a user:
      // exactly what must never feed the daemon. Stop loudly; a service manager restarts us as root.
      throw codedError(
        `the segment of unit ${unit} (key ${keyText(unit)}) was removed and a root-only unit cannot be recreated ` +
          `after the privilege drop: restart htntp (as root)`,
        'ERR_SEGMENT_REMOVED',
        { unit },
      );
    }
    let fresh: NtpdShm;
    try {
      fresh = new NtpdShm(this.#shmOptions);
      this.#prepare(fresh);
      shm.detach();
    } catch (error) {
      this.#reattachFailures += 1;
      logger[this.#reattachFailures === 1 ? 'warn' : 'debug']('segment reattach failed', { unit, error });
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
    if (this.#shm === undefined) throw codedError(`${this.name} is not open`, 'ERR_INVALID_STATE');
    const shm = this.#ensureSegment(this.#shm);
    shm.update(sample.clockTime, { receiveTime: sample.receiveTime, precision: sample.precision, leap });
    this.#published += 1;
    return true;
  }

  close({ keepLastSample }: { keepLastSample: boolean }): void {
    const shm = this.#shm;
    if (shm === undefined) return;
    if (shm.attached) {
      if (!(keepLastSample && this.#published > 0)) {
        // valid 0: no reader takes a sample from a feeder that is gone; leap 3 tells a look
        // (htntp status/doctor) that the writer stopped, not that a reader consumed it.
        shm.valid = 0;
        shm.leap = 3;
      }
      shm.detach();
    }
    this.#options.logger.info('segment detached', { unit: this.unit, published: this.#published });
  }
}
