// A feeder runs for years: what it keeps per published sample must be nothing.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { realtime } from '../../../src/clock.js';
import { feed } from '../../../src/feeder.js';
import type { Sample, SampleSource } from '../../../src/sample.js';
import { exclusiveSegment } from '../../helpers/exclusive.js';
import { readSegment, removeSegment } from '../../helpers/segments.js';
import { units } from '../../helpers/units.js';

const UNIT = units.feederMemory;
const SAMPLES = 100_000;

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/**
 * Yields `count` samples as fast as the feeder takes them, each a fresh object, and
 * measures the heap while the feed is still running (a service's feed lasts for years:
 * what it frees only when it returns is a leak all the same).
 */
function burstSource(count: number, heap: number[]): SampleSource {
  return {
    name: 'burst',
    async *samples(signal: AbortSignal): AsyncIterable<Sample> {
      for (let index = 0; index < count && !signal.aborted; index += 1) {
        if (index === 1_000 || index === count - 1) heap.push(heapAfterGc());
        const now = realtime();
        yield { clockTime: now, receiveTime: now, precision: -20, payload: new Array(16).fill(index) } as Sample;
      }
    },
  };
}

describe('feeder memory', () => {
  afterAll(() => removeSegment(UNIT));

  it(`keeps nothing per published sample (${SAMPLES} samples)`, async () => {
    (await exclusiveSegment(UNIT)).detach();
    const heap: number[] = [];
    const { published } = await feed(burstSource(SAMPLES, heap), { unit: UNIT, signal: new AbortController().signal });
    const [early = NaN, late = NaN] = heap;
    const grown = late - early;
    expect(published).toBe(SAMPLES);
    expect(readSegment(UNIT)?.count).toBeGreaterThanOrEqual(2 * SAMPLES);
    // Holding each sample (~250 bytes with its payload) would be 25 MB.
    expect(grown).toBeLessThan(5 * 1024 * 1024);
  });
});
