// chrony's SOCK refclock datagram, checked against a reader compiled from the reference
// struct (test/c/): the layout, every field of a sent sample, errors as values, and the
// sink's reconnect across a reader that stops, comes back, or restarts between samples.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChronySock, sockLayout } from '../../src/sock.js';
import { SockSink } from '../../src/sinks/sock.js';
import { feed } from '../../src/feeder.js';
import { realtime } from '../../src/clock.js';
import { addSeconds, type Timespec } from '../../src/time.js';
import type { Sample, SampleSource } from '../../src/sample.js';
import { cBuild } from '../helpers/cc.js';
import { makeTempDir, type TempDir } from '../helpers/process.js';
import { cleanupSockReaders, startSockReader, type SockReader } from '../helpers/sock-reader.js';
import { readSegment, removeSegment } from '../helpers/segments.js';
import { e2eTool } from '../helpers/tools.js';
import { memoryLogger } from '../helpers/log-capture.js';
import { units } from '../helpers/units.js';

/** Units 241-246 are the SOCK tests'. */
const SOCK_TEST_UNIT = units.sockShm;

let dir: TempDir;
const readers: SockReader[] = [];
beforeEach(async () => {
  dir = await makeTempDir('sock');
});
afterEach(async () => {
  await Promise.all(readers.splice(0).map((reader) => reader.stop()));
  await dir.remove();
});
afterAll(cleanupSockReaders);

async function reader(path: string): Promise<SockReader> {
  const started = await startSockReader(path);
  readers.push(started);
  return started;
}

function sample(offsetSeconds: number, receiveTime: Timespec = realtime()): Sample {
  return { clockTime: addSeconds(receiveTime, offsetSeconds), receiveTime, precision: -10 };
}

describe('struct sock_sample', () => {
  it('has the size and offsets the reference struct has on this platform', (context) => {
    e2eTool(context, 'cc');
    const build = cBuild();
    try {
      const reference = JSON.parse(execFileSync(build.compile('sock_layout.c'), { encoding: 'utf8' })) as {
        size: number;
        timevalSize: number;
        magic: number;
        offsets: Record<string, number>;
      };
      expect(sockLayout.size).toBe(reference.size);
      expect(sockLayout.timevalSize).toBe(reference.timevalSize);
      expect(sockLayout.magic).toBe(reference.magic);
      expect(sockLayout.offsets).toEqual(reference.offsets);
      // 40 bytes where time_t is 64-bit, 32 where it is 32-bit.
      expect(sockLayout.size).toBe(sockLayout.timevalSize + 24);
    } finally {
      build.cleanup();
    }
  });

  it('carries tv = receive time (µs, truncated), offset = clock - tv, pulse 0, leap, magic', async (context) => {
    e2eTool(context, 'cc');
    const path = join(dir.path, 'refclock.sock');
    const listening = await reader(path);
    const socket = new ChronySock(path);
    expect(socket.connect()).toBeUndefined();
    const receiveTime = { sec: 1_700_000_000, nsec: 123_456_789 };
    expect(socket.send({ sec: 1_699_999_999, nsec: 123_456_789 }, receiveTime, 1)).toBeUndefined();
    expect(
      socket.send({ sec: 1_700_000_002, nsec: 500_000_000 }, { sec: 1_700_000_001, nsec: 999_999_999 }, 2),
    ).toBeUndefined();
    socket.close();
    const [first, second] = await listening.waitForDatagrams(2);
    expect(first).toMatchObject({
      bytes: sockLayout.size,
      sec: 1_700_000_000,
      usec: 123_456,
      offset: -0.999999211,
      pulse: 0,
      leap: 1,
      pad: 0,
      magic: 0x534f434b,
    });
    // 1.5 s ahead of a receive time whose last 999 ns the microseconds drop.
    expect(second).toMatchObject({ sec: 1_700_000_001, usec: 999_999, leap: 2 });
    expect(second?.offset).toBeCloseTo(0.500001, 12);
  });

  it('checks every argument before sending: TypeError/RangeError, nothing on the wire', async (context) => {
    e2eTool(context, 'cc');
    expect(() => new ChronySock(42 as unknown as string)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => new ChronySock('')).toThrow(RangeError);
    expect(() => new ChronySock(`/tmp/${'x'.repeat(sockLayout.maxPathBytes)}`)).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    const path = join(dir.path, 'checked.sock');
    const listening = await reader(path);
    const socket = new ChronySock(path);
    expect(socket.connect()).toBeUndefined();
    const now = realtime();
    expect(() => socket.send(now, now, 3 as 0)).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => socket.send(now, { sec: now.sec, nsec: 1e9 })).toThrow(RangeError);
    expect(() => socket.send(-1, now)).toThrow(RangeError);
    expect(() => socket.send('now' as unknown as number, now)).toThrow(TypeError);
    expect(socket.send(now, now, 0)).toBeUndefined();
    socket.close();
    const datagrams = await listening.waitForDatagrams(1);
    expect(datagrams).toHaveLength(1);
    expect(datagrams[0]).toMatchObject({ leap: 0 });
    expect(datagrams[0]?.offset).toBeCloseTo((now.nsec % 1000) / 1e9, 12); // clock - tv, tv truncated to µs
  });

  it('returns faults as Node-style errors with a hint: ENOENT, ECONNREFUSED, ENOTCONN', async (context) => {
    e2eTool(context, 'cc');
    const path = join(dir.path, 'gone.sock');
    const socket = new ChronySock(path);
    const now = realtime();
    expect(socket.send(now, now)).toMatchObject({ code: 'ENOTCONN', syscall: 'send', path });
    expect(socket.connect()).toMatchObject({
      code: 'ENOENT',
      errno: -2,
      syscall: 'connect',
      message: expect.stringContaining('is not running'),
    });
    const listening = await startSockReader(path);
    expect(socket.connect()).toBeUndefined();
    // Killed outright: the socket file stays, nobody reads it.
    await listening.process.stop('SIGKILL');
    expect(existsSync(path)).toBe(true);
    expect(socket.send(now, now)).toMatchObject({ code: 'ECONNREFUSED', syscall: 'send' });
    expect(socket.connect()).toMatchObject({ code: 'ECONNREFUSED', message: expect.stringContaining('restarting') });
    socket.close();
  });
});

describe('SockSink', () => {
  it('publishes across a reader that stops, comes back and restarts; logs each change once', async (context) => {
    e2eTool(context, 'cc');
    const path = join(dir.path, 'chrony.sock');
    const log = memoryLogger();
    const sink = new SockSink({ path, logger: log.logger });
    expect(sink.name).toBe(`sock:${path}`);
    sink.open(); // no reader yet: logged, not thrown
    expect(log.events()).toEqual(['warn socket unavailable']);
    expect(log.lines[0]).toContain('error=ENOENT');
    expect(log.lines[0]).toContain('hint=');
    for (let i = 0; i < 5; i += 1) expect(sink.publish(sample(-1), 0)).toBe(false);
    expect(log.events().filter((event) => event.startsWith('warn')).length).toBe(1);

    let listening = await reader(path);
    // The first publish after the backoff connects and sends.
    const delivered = await waitForPublish(sink);
    expect(delivered).toBeGreaterThanOrEqual(1);
    expect(log.events()).toContain('info socket connected');
    await listening.waitForDatagrams(1);

    // Restarted between two samples: the very next sample reaches the new reader.
    await listening.stop();
    readers.splice(readers.indexOf(listening), 1);
    listening = await reader(path);
    expect(sink.publish(sample(-1), 0)).toBe(true);
    expect(log.events()).toContain('info socket reconnected');
    await listening.waitForDatagrams(1);

    // Stopped: samples are lost and counted, one warning.
    await listening.stop();
    readers.splice(readers.indexOf(listening), 1);
    const before = sink.errors;
    const warnings = log.events().filter((event) => event === 'warn socket unavailable').length;
    for (let i = 0; i < 3; i += 1) expect(sink.publish(sample(-1), 0)).toBe(false);
    expect(sink.errors).toBe(before + 3);
    expect(log.events().filter((event) => event === 'warn socket unavailable').length).toBe(warnings + 1);
    sink.close();
    expect(log.events().at(-1)).toBe('info socket closed');
  });

  it('warns again of a fault that lasts, with the samples lost since it began', async (context) => {
    e2eTool(context, 'cc');
    const path = join(dir.path, 'never.sock');
    const log = memoryLogger();
    const sink = new SockSink({ path, logger: log.logger, warnAgainSeconds: 0.3 });
    sink.open();
    const started = performance.now();
    let published = 0;
    // Connect attempts back off to 1 s: a reminder needs an attempt past 0.3 s of quiet.
    while (!log.events().includes('warn socket still unavailable')) {
      expect(performance.now() - started, 'no reminder within 5 s').toBeLessThan(5_000);
      expect(sink.publish(sample(-1), 0)).toBe(false);
      published += 1;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const reminder = log.lines.find((line) => line.startsWith('warn socket still unavailable')) ?? '';
    expect(reminder).toContain('error=ENOENT');
    const lost = Number(/ lost=(\d+)/.exec(reminder)?.[1]);
    expect(lost).toBeGreaterThan(0);
    expect(lost).toBeLessThanOrEqual(published);
    expect(reminder).toMatch(/ since=\d+/);
    expect(log.events().filter((event) => event === 'warn socket unavailable')).toHaveLength(1);
    sink.close();
  });

  it('leap 3 (not in sync) is never sent: chrony has no such sample', async (context) => {
    e2eTool(context, 'cc');
    const path = join(dir.path, 'leap.sock');
    const listening = await reader(path);
    const sink = new SockSink({ path, logger: memoryLogger().logger });
    sink.open();
    expect(sink.publish(sample(0.5), 3)).toBe(false);
    expect(sink.publish(sample(0.25), 1)).toBe(true);
    sink.close();
    const datagrams = await listening.waitForDatagrams(1);
    expect(datagrams).toHaveLength(1);
    expect(datagrams[0]).toMatchObject({ leap: 1 });
    expect(datagrams[0]?.offset).toBeCloseTo(0.25, 5);
  });
});

/** Publishes until one sample gets through (the sink waits out its backoff); returns how many tries it took. */
async function waitForPublish(sink: SockSink): Promise<number> {
  for (let tries = 1; tries <= 100; tries += 1) {
    if (sink.publish(sample(-1), 0)) return tries;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('no sample got through in 100 tries');
}

describe('feed() with sockets', () => {
  const list = (samples: Sample[]): SampleSource => ({
    name: 'list',
    async *samples() {
      yield* samples;
    },
  });

  it('a socket alone: every sample sent, no segment touched', async (context) => {
    e2eTool(context, 'cc');
    const path = join(dir.path, 'only.sock');
    const listening = await reader(path);
    const result = await feed(list([sample(-1), sample(-1), sample(-1)]), {
      sockets: [path],
      signal: new AbortController().signal,
    });
    expect(result).toEqual({ published: 3, reattached: 0 });
    const datagrams = await listening.waitForDatagrams(3);
    // within the µs the tv truncation moves
    for (const datagram of datagrams) expect(datagram.offset).toBeCloseTo(-1, 5);
  });

  it('a unit and a socket: both written; the reader down costs the socket samples, never the feed', async (context) => {
    e2eTool(context, 'cc');
    const unit = SOCK_TEST_UNIT;
    const path = join(dir.path, 'both.sock');
    const log = memoryLogger();
    const result = await feed(list([sample(-1), sample(-2)]), {
      unit,
      sockets: [path],
      signal: new AbortController().signal,
      logger: log.logger,
      keepLastSample: true,
    });
    expect(result.published).toBe(2);
    expect(readSegment(unit)).toMatchObject({ valid: 1 });
    expect(log.events()).toContain('warn socket unavailable');
    removeSegment(unit);
  });

  it("the leap indicator: the sample's own, else the leap-file schedule, as for the segment", async (context) => {
    e2eTool(context, 'cc');
    const unit = units.sockShmSecond;
    const path = join(dir.path, 'leap-schedule.sock');
    const listening = await reader(path);
    const own = { ...sample(-1), leap: 2 as const };
    await feed(list([sample(-1), own]), {
      unit,
      sockets: [path],
      signal: new AbortController().signal,
      leapSchedule: { leapAt: () => 1 },
      keepLastSample: true,
    });
    const datagrams = await listening.waitForDatagrams(2);
    expect(datagrams.map((datagram) => datagram.leap)).toEqual([1, 2]);
    expect(readSegment(unit)?.leap).toBe(2);
    removeSegment(unit);
  });

  it('no sink at all is a TypeError', async () => {
    await expect(feed(list([]), { signal: new AbortController().signal })).rejects.toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });
});
