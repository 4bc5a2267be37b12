// measure.ts SendSchedule: aimed requests released at their instants from one spin, earliest first.
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { SendSchedule } from '../../../src/sources/http/measure.js';
import { toSeconds } from '../../../src/time.js';

const now = (): number => toSeconds(systemClock.realtime());

describe('SendSchedule', () => {
  it('releases each request at or after its instant, earliest first, whatever order they were queued in', async () => {
    const schedule = new SendSchedule(systemClock);
    const start = now();
    // Instants 1-50 ms ahead, queued out of order; some inside the spin's lead, some behind a timer.
    const offsets = [0.03, 0.001, 0.05, 0.002, 0.0015, 0.02, 0.0025, 0.04];
    const released: { target: number; at: number; reading: number }[] = [];
    const signal = new AbortController().signal;
    await Promise.all(
      offsets.map(async (offset) => {
        const target = start + offset;
        const reading = await schedule.at(target, signal);
        released.push({ target, at: now(), reading });
      }),
    );
    expect(released.map((entry) => entry.target)).toEqual(released.map((entry) => entry.target).sort((a, b) => a - b));
    for (const entry of released) {
      expect(entry.reading).toBeGreaterThanOrEqual(entry.target);
      expect(entry.at).toBeGreaterThanOrEqual(entry.reading);
    }
  });

  it('rejects a request whose measurement was aborted while it waited, and still serves the others', async () => {
    const schedule = new SendSchedule(systemClock);
    const aborted = new AbortController();
    const start = now();
    const cancelled = schedule.at(start + 0.001, AbortSignal.abort(new Error('deadline')));
    const waiting = schedule.at(start + 0.05, aborted.signal);
    const served = schedule.at(start + 0.002, new AbortController().signal);
    aborted.abort(new Error('stopped'));
    const [first, second, third] = await Promise.allSettled([cancelled, waiting, served]);
    // In the queue: the measurement's reason; still on the timer: Node's AbortError.
    expect(first).toMatchObject({ status: 'rejected', reason: { message: 'deadline' } });
    expect(second).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
    expect(third?.status === 'fulfilled' && third.value).toBeGreaterThanOrEqual(start + 0.002);
  });
});
