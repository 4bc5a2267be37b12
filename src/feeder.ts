// The one loop that publishes samples to sinks. Sources produce; only this publishes.
// Each sink logs its own life (see src/sinks/); the loop logs:
//   debug sample published       sinks offset precision leap
//   warn  sample rejected        sink source error    (a sample a sink refuses: nothing written there)
//   error source failed          source error         (the source threw: feed rejects)
//   info  stopping               reason               (the signal aborted)
import type { Leap } from './shm.js';
import type { Sample, SampleSource } from './sample.js';
import { silentLogger, type Logger } from './log.js';
import { invalidArgValue } from './errors.js';
import type { FeedMetrics } from './metrics.js';
import { diffSeconds, type Timespec } from './time.js';
import type { Sink } from './sinks/sink.js';
import { ShmSink } from './sinks/shm.js';
import type { ClockSync } from './clock.js';
import { LastGoodClock } from './floor.js';
import { SockSink } from './sinks/sock.js';
import type { SockLayoutChoice } from './sock.js';

export interface FeedOptions {
  /** The SHM unit to write; none without it. */
  unit?: number;
  /** Permissions if the segment has to be created (default: ntpd's convention). */
  perm?: number;
  /** chrony SOCK refclock sockets to send every sample to (`refclock SOCK <path>`). */
  sockets?: readonly string[];
  /** The SOCK datagram layout (default native; '40' for ntpd-rs on a 32-bit time_t platform). */
  sockLayout?: SockLayoutChoice;
  signal: AbortSignal;
  logger?: Logger;
  /** Called after each sample is published. */
  onSample?: (sample: Sample) => void;
  /** Leap indicator for samples whose source says 0 or nothing (e.g. a LeapSchedule from leap-seconds.list). */
  leapSchedule?: { leapAt(clockTime: Timespec): Leap };
  /** Runs once every sink is open and before the source starts: the privilege drop goes here. */
  afterOpen?: (sinks: readonly Sink[]) => void;
  metrics?: FeedMetrics;
  /**
   * A one-shot source that ends by itself leaves its last sample valid for the reader (a stop signal still clears it).
   */
  keepLastSample?: boolean;
  /** Where the last-good time is saved (floor.ts: the floor no published time goes below); none without it. */
  clockFile?: string;
  /** Tests only: the kernel's clock state in place of ntp_adjtime()'s, for the last-good time. */
  kernelClockForTests?: () => ClockSync;
}

export interface FeedResult {
  /** Samples that reached at least one sink. */
  published: number;
  /** Times the segment was removed under the feeder and attached anew. */
  reattached: number;
}

/** How long a stopping feeder waits for the source to wind down (the sinks are already closed). */
const SOURCE_STOP_GRACE_MS = 400;

/** The sinks `options` asks for, built but not opened: paths and units are checked here. */
function createSinks(
  source: SampleSource,
  options: FeedOptions,
  logger: Logger,
): { sinks: Sink[]; shmSink: ShmSink | undefined } {
  const { metrics } = options;
  const shmSink =
    options.unit === undefined
      ? undefined
      : new ShmSink({
          unit: options.unit,
          perm: options.perm,
          logger,
          sourceName: source.name,
          onReattach: () => metrics?.reattached(),
        });
  const sockSinks = [...new Set(options.sockets ?? [])].map(
    (path) => new SockSink({ path, logger, layout: options.sockLayout }),
  );
  const sinks: Sink[] = [...(shmSink === undefined ? [] : [shmSink]), ...sockSinks];
  if (sinks.length === 0) {
    throw invalidArgValue('feed() needs a sink: an SHM unit, a SOCK socket path, or both');
  }
  return { sinks, shmSink };
}

/** Publishes one sample to every sink, with the leap schedule applied; counts those that reached a sink. */
class SamplePublisher {
  published = 0;

  constructor(
    private readonly sinks: readonly Sink[],
    private readonly sourceName: string,
    private readonly options: FeedOptions,
    private readonly logger: Logger,
    private readonly lastGood: LastGoodClock | undefined,
  ) {}

  publish(sample: Sample): void {
    const { sinks, logger, sourceName } = this;
    const { leapSchedule, metrics, onSample } = this.options;
    const sourceLeap = sample.leap ?? 0;
    const leap = sourceLeap === 0 && leapSchedule !== undefined ? leapSchedule.leapAt(sample.clockTime) : sourceLeap;
    let delivered = false;
    for (const sink of sinks) {
      let sent = false;
      try {
        sent = sink.publish(sample, leap);
      } catch (error) {
        if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
        logger.warn('sample rejected', { sink: sink.name, source: sourceName, error });
      }
      if (sent) delivered = true;
      metrics?.sinkResult(sink.name, sent);
    }
    if (!delivered) return;
    this.published += 1;
    metrics?.published(sample, leap);
    logger.debug('sample published', {
      sinks: sinks.map((sink) => sink.name).join(','),
      offset: diffSeconds(sample.clockTime, sample.receiveTime),
      precision: sample.precision,
      leap,
    });
    this.lastGood?.offer(sample);
    onSample?.(sample);
  }
}

/**
 * Opens the sinks and publishes every sample the source yields until `signal` aborts or
 * the source ends. On abort it stops at once, even if the source is mid-wait. Last act:
 * every sink closes (the segment gets valid = 0, so no reader takes a sample from a
 * feeder that is gone).
 */
export async function feed(source: SampleSource, options: FeedOptions): Promise<FeedResult> {
  const { signal, logger = silentLogger, metrics } = options;
  const { sinks, shmSink } = createSinks(source, options, logger);
  const opened: Sink[] = [];
  const lastGood =
    options.clockFile === undefined
      ? undefined
      : new LastGoodClock(options.clockFile, logger, options.kernelClockForTests);
  const publisher = new SamplePublisher(sinks, source.name, options, logger, lastGood);

  let iterator: AsyncIterator<Sample> | undefined;
  let finished = false;
  let sourceEnded = false;
  try {
    for (const sink of sinks) {
      sink.open();
      opened.push(sink);
      metrics?.sinkResult(sink.name, undefined);
    }
    // Before the privilege drop: the clock file is written through this descriptor.
    lastGood?.open();
    options.afterOpen?.(sinks);
    // Only now may the source open sockets or ports: after the sinks and the privilege drop.
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
      publisher.publish(result.value);
    }
  } finally {
    lastGood?.close();
    const keepLastSample = options.keepLastSample === true && sourceEnded;
    for (const sink of opened) sink.close({ keepLastSample });
    if (!finished && iterator !== undefined) await stopSource(iterator, logger);
  }
  return { published: publisher.published, reattached: shmSink?.reattached ?? 0 };
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
