// The feeder's service behaviour in-process: the segment removed under it
// with the real `ipcrm` is attached anew and publishing continues; a stop aborts a source
// that is mid-wait at once; bad samples are refused.
import { execFileSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { feed } from '../../../src/feeder.js';
import { ShmSink } from '../../../src/sinks/shm.js';
import { systemClock } from '../../../src/clock.js';
import { NtpdShm, keyOfUnit } from '../../../src/shm.js';
import type { Sample, SampleSource } from '../../../src/sample.js';
import { addSeconds } from '../../../src/time.js';
import { readSegment, removeSegment } from '../../helpers/segments.js';
import { waitFor } from '../../helpers/wait.js';
import { memoryLogger } from '../../helpers/log-capture.js';
import { units } from '../../helpers/units.js';

const UNITS = {
  reattach: units.feederReattach,
  stop: units.feederStop,
  stubborn: units.feederStubborn,
  rejected: units.feederRejected,
  failing: units.feederFailing,
  order: units.feederOrder,
};
afterEach(() => Object.values(UNITS).forEach(removeSegment));

function sampleNow(offset = 0.5): Sample {
  const receiveTime = systemClock.realtime();
  return { clockTime: addSeconds(receiveTime, offset), receiveTime, precision: -10 };
}

/** One sample every `everyMs`, waits honouring the signal. */
function ticker(everyMs: number): SampleSource {
  return {
    name: 'ticker',
    async *samples(signal) {
      while (!signal.aborted) {
        yield sampleNow();
        await delay(everyMs, undefined, { signal }).catch(() => undefined);
      }
    },
  };
}

function segmentId(unit: number): number {
  const shm = new NtpdShm({ unit, create: false, readOnly: true });
  shm.detach();
  return shm.shmId;
}

describe('segment removed under a running feeder', () => {
  it('notices the removal (ipcrm -M), attaches a new segment and keeps publishing into it', async () => {
    const unit = UNITS.reattach;
    const log = memoryLogger();
    const controller = new AbortController();
    const running = feed(ticker(50), { unit, signal: controller.signal, logger: log.logger });
    try {
      const before = await waitFor(
        () => {
          const snapshot = readSegment(unit);
          return snapshot !== undefined && snapshot.count >= 4 ? snapshot : undefined;
        },
        { what: 'samples in the first segment', timeoutMs: 20_000, intervalMs: 20 },
      );
      const oldId = segmentId(unit);
      execFileSync('ipcrm', ['-M', `0x${keyOfUnit(unit).toString(16)}`]);
      await waitFor(() => (log.events().includes('info segment reattached') ? true : undefined), {
        what: 'segment reattached',
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      const after = await waitFor(
        () => {
          const snapshot = readSegment(unit);
          return snapshot !== undefined && snapshot.valid === 1 && snapshot.count >= 4 ? snapshot : undefined;
        },
        { what: 'samples in the new segment', timeoutMs: 20_000, intervalMs: 20 },
      );
      const newId = segmentId(unit);
      expect(newId).not.toBe(oldId);
      expect(after.clockTimeStampSec - after.receiveTimeStampSec).toBeGreaterThanOrEqual(0);
      expect(before.count).toBeGreaterThanOrEqual(4);
      expect(log.events()).toContain('warn segment removed');
    } finally {
      controller.abort();
    }
    const result = await running;
    expect(result.reattached).toBe(1);
    expect(readSegment(unit)?.valid).toBe(0);
  });
});

// An idle machine stops within the source's grace (a few hundred ms); the bound leaves room
// for a loaded one and stays far below what waiting for the source would take.
const STOP_BOUND_MS = 10_000;

describe('stop', () => {
  it('aborts a source mid-wait: resolves without waiting for it, valid = 0, detached', async () => {
    const unit = UNITS.stop;
    const controller = new AbortController();
    const log = memoryLogger();
    const running = feed(ticker(60_000), { unit, signal: controller.signal, logger: log.logger });
    await waitFor(() => (readSegment(unit)?.valid === 1 ? true : undefined), {
      what: 'the first sample',
      timeoutMs: 20_000,
      intervalMs: 10,
    });
    const started = performance.now();
    controller.abort(new Error('received SIGTERM'));
    const result = await running;
    const elapsedMs = performance.now() - started;
    expect(result.published).toBe(1);
    expect(elapsedMs).toBeLessThan(STOP_BOUND_MS); // the source would wait 60 s
    expect(readSegment(unit)).toMatchObject({ valid: 0, count: 2 });
    expect(log.events().slice(-2)).toEqual(['info stopping', 'info segment detached']);
    expect(log.lines.find((line) => line.startsWith('info stopping'))).toContain('reason="received SIGTERM"');
  });

  it('does not wait for a source that ignores the signal beyond its grace', async () => {
    const unit = UNITS.stubborn;
    const controller = new AbortController();
    let yielded = false;
    const stubborn: SampleSource = {
      name: 'stubborn',
      async *samples() {
        yield sampleNow();
        yielded = true;
        await new Promise<never>(() => {});
      },
    };
    const running = feed(stubborn, { unit, signal: controller.signal });
    await waitFor(() => (yielded ? true : undefined), { what: 'the first sample', timeoutMs: 20_000, intervalMs: 10 });
    const started = performance.now();
    controller.abort();
    await running;
    expect(performance.now() - started).toBeLessThan(STOP_BOUND_MS); // the source never ends
    expect(readSegment(unit)?.valid).toBe(0);
  });
});

describe('order', () => {
  it('runs afterOpen (the privilege drop) after the attach and before the source is asked for samples', async () => {
    const unit = UNITS.order;
    const steps: string[] = [];
    const source: SampleSource = {
      name: 'ordered',
      samples() {
        steps.push('source started');
        return (async function* () {
          yield sampleNow();
        })();
      },
    };
    await feed(source, {
      unit,
      signal: new AbortController().signal,
      afterOpen: (sinks) => {
        const shm = sinks.find((sink): sink is ShmSink => sink instanceof ShmSink)?.segment;
        steps.push(`after attach: attached=${shm?.attached} valid=${shm?.valid} leap=${shm?.leap}`);
      },
      onSample: () => steps.push('published'),
    });
    expect(steps).toEqual(['after attach: attached=true valid=0 leap=3', 'source started', 'published']);
  });

  it('a failing afterOpen stops before the source starts, and the segment is released', async () => {
    const unit = UNITS.order;
    let started = false;
    const source: SampleSource = {
      name: 'never',
      samples: () => {
        started = true;
        return (async function* () {})();
      },
    };
    const failure = Object.assign(new Error('cannot switch to user htntp'), { code: 'ERR_PRIVILEGE_DROP' });
    await expect(
      feed(source, {
        unit,
        signal: new AbortController().signal,
        afterOpen: () => {
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
    expect(started).toBe(false);
    expect(readSegment(unit)?.valid).toBe(0);
  });
});

describe('faults', () => {
  it('refuses a sample the segment API rejects: warned, nothing written, the next one published', async () => {
    const unit = UNITS.rejected;
    const log = memoryLogger();
    const samples: Sample[] = [{ ...sampleNow(), precision: Number.NaN }, sampleNow(0.75)];
    const source: SampleSource = {
      name: 'list',
      async *samples() {
        yield* samples;
      },
    };
    const result = await feed(source, { unit, signal: new AbortController().signal, logger: log.logger });
    expect(result.published).toBe(1);
    expect(log.events()).toContain('warn sample rejected');
  });

  it('a source that throws makes feed reject after valid = 0 and detach, with an error line', async () => {
    const unit = UNITS.failing;
    const log = memoryLogger();
    const source: SampleSource = {
      name: 'failing',
      async *samples() {
        yield sampleNow();
        throw Object.assign(new Error('device lost'), { code: 'EIO' });
      },
    };
    await expect(feed(source, { unit, signal: new AbortController().signal, logger: log.logger })).rejects.toThrow(
      'device lost',
    );
    expect(readSegment(unit)?.valid).toBe(0);
    expect(log.events().slice(-2)).toEqual(['error source failed', 'info segment detached']);
  });
});
