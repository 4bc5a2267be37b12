// The one loop that writes samples to the segment. Sources produce; only this writes.
//
// Events it logs (the feeder's vocabulary; sources log their own faults):
//   info  segment attached      unit key shmId created perm source
//   warn  segment world-writable unit key perm        (units 0-1: anyone could feed ntpd)
//   warn  segment removed        unit key             (ipcrm under us) -> info segment reattached
//   warn  segment reattach failed unit error          (retried at the next check, once a second)
//   debug segment watch unavailable unit error        (IPC_STAT refused after a privilege drop)
//   debug sample published       unit offset precision leap
//   warn  sample rejected        unit error           (a sample the segment API refuses: nothing written)
//   error source failed          source error         (the source threw: feed rejects)
//   info  stopping               reason               (the signal aborted)
//   info  segment detached       unit published       (valid = 0 written first)
import { NtpdShm, isRootOnlyUnit, keyText, type Leap } from './shm.js';
import type { Sample, SampleSource } from './sample.js';
import { silentLogger, type Logger } from './log.js';
import type { FeedMetrics } from './metrics.js';
import { monotonicRaw } from './clock.js';
import { diffSeconds, type Timespec } from './time.js';

export interface FeedOptions {
  unit: number;
  /** Permissions if the segment has to be created (default: ntpd's convention). */
  perm?: number;
  signal: AbortSignal;
  logger?: Logger;
  /** Called after each sample is published. */
  onSample?: (sample: Sample) => void;
  /** Leap indicator for samples whose source says 0 or nothing (e.g. a LeapSchedule from leap-seconds.list). */
  leapSchedule?: { leapAt(clockTime: Timespec): Leap };
  /** Runs once the segment is attached and before the source starts: the privilege drop goes here. */
  afterAttach?: (shm: NtpdShm) => void;
  metrics?: FeedMetrics;
  /** A one-shot source that ends by itself leaves its last sample valid for the reader (a stop signal still clears it). */
  keepLastSample?: boolean;
}

export interface FeedResult {
  published: number;
  /** Times the segment was removed under the feeder and attached anew. */
  reattached: number;
}

/** How often the feeder checks that its segment was not removed under it (ipcrm). */
const WATCH_INTERVAL_SECONDS = 1;

/** How long a stopping feeder waits for the source to wind down (the segment is already released). */
const SOURCE_STOP_GRACE_MS = 400;

/** Units 0-1 are root-only by convention: a world-writable one lets anyone steer ntpd. */
export function isUnsafeSegment(unit: number, perm: number): boolean {
  return isRootOnlyUnit(unit) && (perm & 0o002) !== 0;
}

/**
 * Attaches to the unit's segment and publishes every sample the source yields until
 * `signal` aborts or the source ends. Until the first sample the segment says "not in
 * sync" (valid = 0, leap = 3). A segment removed under it (ipcrm) is attached anew.
 * On abort it stops at once, even if the source is mid-wait. Last act: valid = 0 (so no
 * reader takes a sample from a feeder that is gone), then detach.
 */
export async function feed(source: SampleSource, options: FeedOptions): Promise<FeedResult> {
  const { signal, logger = silentLogger, onSample, leapSchedule, metrics } = options;
  const { unit } = options;
  const shmOptions = { unit, ...(options.perm === undefined ? {} : { perm: options.perm }) };

  /** "Not in sync" until the first sample; warns about a world-writable root-only unit. Returns the perm text. */
  const prepare = (segment: NtpdShm): string | undefined => {
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
  };

  let shm = new NtpdShm(shmOptions);
  const perm = prepare(shm);
  logger.info('segment attached', { unit, key: keyText(unit), shmId: shm.shmId, created: shm.created, perm, source: source.name });
  let published = 0;
  let reattached = 0;
  let watchable = true;
  let lastWatch: Timespec | undefined;
  let reattachFailures = 0;

  /** The segment we write to still is the unit's segment; otherwise attach the new one. */
  const ensureSegment = (): void => {
    if (!watchable) return;
    // An IPC_STAT per sample is a syscall on the write path for nothing: a removal is
    // noticed within a second of the raw clock all the same.
    const now = monotonicRaw();
    if (lastWatch !== undefined && diffSeconds(now, lastWatch) < WATCH_INTERVAL_SECONDS) return;
    lastWatch = now;
    let removed: boolean;
    try {
      removed = shm.stat().removed;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
      // A root-only segment stays writable after the privilege drop, but IPC_STAT needs read access.
      watchable = false;
      logger.debug('segment watch unavailable', { unit, error });
      return;
    }
    if (!removed) return;
    if (reattachFailures === 0) logger.warn('segment removed', { unit, key: keyText(unit), hint: 'readers attached to the old segment see nothing until they restart' });
    try {
      const fresh = new NtpdShm(shmOptions);
      prepare(fresh);
      shm.detach();
      shm = fresh;
    } catch (error) {
      reattachFailures += 1;
      (reattachFailures === 1 ? logger.warn : logger.debug)('segment reattach failed', { unit, error });
      return;
    }
    reattachFailures = 0;
    reattached += 1;
    metrics?.reattached();
    logger.info('segment reattached', { unit, key: keyText(unit), shmId: shm.shmId, created: shm.created });
  };

  const publish = (sample: Sample): void => {
    ensureSegment();
    const sourceLeap = sample.leap ?? 0;
    const leap = sourceLeap === 0 && leapSchedule !== undefined ? leapSchedule.leapAt(sample.clockTime) : sourceLeap;
    try {
      shm.update(sample.clockTime, { receiveTime: sample.receiveTime, precision: sample.precision, leap });
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
      logger.warn('sample rejected', { unit, source: source.name, error });
      return;
    }
    published += 1;
    metrics?.published(sample, leap);
    logger.debug('sample published', { unit, offset: diffSeconds(sample.clockTime, sample.receiveTime), precision: sample.precision, leap });
    onSample?.(sample);
  };

  let iterator: AsyncIterator<Sample> | undefined;
  let finished = false;
  let sourceEnded = false;
  try {
    options.afterAttach?.(shm);
    // Only now may the source open sockets or ports: after the attach and the privilege drop.
    iterator = source.samples(signal)[Symbol.asyncIterator]();
    for (;;) {
      let result: IteratorResult<Sample>;
      try {
        result = await nextOrStop(iterator, signal);
      } catch (error) {
        if (!signal.aborted) {
          finished = true;
          logger.error('source failed', { source: source.name, error });
          throw error;
        }
        result = { done: true, value: undefined };
      }
      if (signal.aborted) {
        const reason: unknown = signal.reason;
        logger.info('stopping', { reason: reason instanceof Error ? reason.message : String(reason) });
        break;
      }
      if (result.done) {
        finished = true;
        sourceEnded = true;
        break;
      }
      publish(result.value);
    }
  } finally {
    if (shm.attached) {
      if (!(options.keepLastSample && sourceEnded && published > 0)) shm.valid = 0;
      shm.detach();
    }
    logger.info('segment detached', { unit, published });
    if (!finished && iterator !== undefined) await stopSource(iterator, logger);
  }
  return { published, reattached };
}

/**
 * The source's next step, or `done` as soon as `signal` aborts: a stop never waits for a
 * source that is mid-wait. The abort listener lives for one step only (a promise shared
 * by every step would keep each step's result alive: a leak of every sample).
 */
function nextOrStop(iterator: AsyncIterator<Sample>, signal: AbortSignal): Promise<IteratorResult<Sample>> {
  const stopped: IteratorResult<Sample> = { done: true, value: undefined };
  if (signal.aborted) return Promise.resolve(stopped);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(stopped);
    signal.addEventListener('abort', onAbort, { once: true });
    // After a stop, whatever the pending step ends with is no longer ours (resolve/reject are then no-ops).
    iterator.next().then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Lets the source run its cleanup (close sockets, ports), bounded: a stuck source cannot hold the stop. */
async function stopSource(iterator: AsyncIterator<Sample>, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), SOURCE_STOP_GRACE_MS);
  });
  try {
    const outcome = await Promise.race([Promise.resolve(iterator.return?.()).then(() => 'done' as const), grace]);
    if (outcome === 'timeout') logger.debug('source stop timed out', { graceMs: SOURCE_STOP_GRACE_MS });
  } catch (error) {
    logger.debug('source stop failed', { error });
  } finally {
    clearTimeout(timer);
  }
}
