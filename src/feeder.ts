// The one loop that writes samples to the segment. Sources produce; only this writes.
import { NtpdShm, type Leap } from './shm.js';
import type { Sample, SampleSource } from './sample.js';
import { silentLogger, type Logger } from './log.js';

export interface FeedOptions {
  unit: number;
  /** Permissions if the segment has to be created (default: ntpd's convention). */
  perm?: number;
  signal: AbortSignal;
  logger?: Logger;
  /** Called after each sample is published. */
  onSample?: (sample: Sample) => void;
}

export interface FeedResult {
  published: number;
}

/**
 * Attaches to the unit's segment and publishes every sample the source yields until
 * `signal` aborts or the source ends. Last act: valid = 0 (so no reader takes a sample
 * from a feeder that is gone), then detach.
 */
export async function feed(source: SampleSource, options: FeedOptions): Promise<FeedResult> {
  const { signal, logger = silentLogger, onSample } = options;
  const shm = new NtpdShm({ unit: options.unit, ...(options.perm === undefined ? {} : { perm: options.perm }) });
  logger.info('segment attached', { unit: shm.unit, key: `0x${shm.key.toString(16)}`, created: shm.created, source: source.name });
  let published = 0;
  try {
    for await (const sample of source.samples(signal)) {
      if (signal.aborted) break;
      const leap: Leap = sample.leap ?? 0;
      shm.update(sample.clockTime, { receiveTime: sample.receiveTime, precision: sample.precision, leap });
      published += 1;
      onSample?.(sample);
    }
  } finally {
    if (shm.attached) {
      shm.valid = 0;
      shm.detach();
    }
    logger.info('segment detached', { unit: options.unit, published });
  }
  return { published };
}
