// GpsSource wiring with serialport's mock binding and a fake clock: the receive stamp is
// the clock reading of the data event that completed the line.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';
import type { FixState } from '../../../src/metrics.js';
import type { Sample } from '../../../src/sample.js';
import { GpsSource } from '../../../src/sources/gps/source.js';
import type { Port } from '../../../src/sources/gps/serial.js';
import type { Timespec } from '../../../src/time.js';
import { burst } from '../../helpers/gps/sentences.js';

const MockBinding = SerialPortMock.binding;
type MockPortBinding = NonNullable<SerialPortMock['port']>;
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0) / 1000;

class FakeClock implements Clock {
  now: Timespec = { sec: T0, nsec: 0 };
  realtime(): Timespec {
    return { ...this.now };
  }
  monotonicRaw(): Timespec {
    return { sec: this.now.sec - T0 + 1000, nsec: this.now.nsec };
  }
}

afterEach(() => MockBinding.reset());

describe('GpsSource', () => {
  it('stamps lines with the clock at their data event and publishes after --min-fixes', async () => {
    MockBinding.createPort('/dev/fakegps', { echo: false, record: false });
    let port: Port | undefined;
    const clock = new FakeClock();
    const fixStates: FixState[] = [];
    const lines: string[] = [];
    const source = new GpsSource({
      device: '/dev/fakegps',
      baud: 9600,
      minFixes: 2,
      offset: 0.1,
      clock,
      logger: createLogger({ write: (line) => lines.push(line) }),
      metrics: { server() {}, fix: (state) => fixStates.push(state) },
      ports: ({ path, baudRate }) => {
        port = new SerialPortMock({ path, baudRate, autoOpen: false });
        return port;
      },
    });
    const controller = new AbortController();
    const samples: Sample[] = [];
    const running = (async () => {
      for await (const sample of source.samples(controller.signal)) {
        samples.push(sample);
        if (samples.length === 2) controller.abort();
      }
    })();
    const binding = async (): Promise<MockPortBinding> => {
      while (port?.port === undefined) await new Promise((resolve) => setImmediate(resolve));
      return port.port as unknown as MockPortBinding;
    };
    const mock = await binding();
    // The source listens for data only once it has opened the port and says so.
    await vi.waitFor(() => expect(lines.some((line) => line.startsWith('info device open '))).toBe(true), {
      timeout: 20_000,
    });
    for (let offset = 0; offset < 4 && !controller.signal.aborted; offset += 1) {
      clock.now = { sec: T0 + offset, nsec: 350_000_000 };
      // A burst split across two reads: the second chunk completes the first line.
      const bytes = burst(T0 + offset)
        .map((line) => `${line}\r\n`)
        .join('');
      mock.emitData(bytes.slice(0, 20));
      await new Promise((resolve) => setImmediate(resolve));
      clock.now = { sec: T0 + offset, nsec: 360_000_000 };
      mock.emitData(bytes.slice(20));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await running;
    expect(samples).toEqual([
      { clockTime: { sec: T0 + 1, nsec: 100_000_000 }, receiveTime: { sec: T0 + 1, nsec: 360_000_000 }, precision: -1 },
      { clockTime: { sec: T0 + 2, nsec: 100_000_000 }, receiveTime: { sec: T0 + 2, nsec: 360_000_000 }, precision: -1 },
    ]);
    expect(port?.isOpen).toBe(false);
    // --metrics: every fix-carrying sentence reports; GGA says how many satellites.
    expect(fixStates).toContainEqual({ valid: true, consecutive: 2, satellites: 7 });
    expect(fixStates.every((state) => state.valid)).toBe(true);
  });

  it('warns once when an open device says nothing for 10 s, and when data comes again', async () => {
    MockBinding.createPort('/dev/quietgps', { echo: false, record: false });
    const clock = new FakeClock();
    const lines: string[] = [];
    let port: Port | undefined;
    const source = new GpsSource({
      device: '/dev/quietgps',
      baud: 9600,
      clock,
      logger: createLogger({ write: (line) => lines.push(line) }),
      ports: ({ path, baudRate }) =>
        (port = new SerialPortMock({ path, baudRate, autoOpen: false }) as unknown as Port),
    });
    const controller = new AbortController();
    const running = (async () => {
      for await (const _sample of source.samples(controller.signal)) {
        // none expected
      }
    })();
    const logged = (pattern: RegExp): number => lines.filter((line) => pattern.test(line)).length;
    await vi.waitFor(() => expect(logged(/^info device open /)).toBe(1), { timeout: 20_000 });
    clock.now = { sec: T0 + 11, nsec: 0 };
    await vi.waitFor(() => expect(logged(/^warn no data device=\/dev\/quietgps seconds=11$/)).toBe(1), {
      timeout: 20_000,
    });
    (port!.port as unknown as MockPortBinding).emitData('$GPGSV,1*00\r\n');
    await vi.waitFor(() => expect(logged(/^info data again /)).toBe(1), { timeout: 20_000 });
    controller.abort();
    await running;
    expect(logged(/^warn no data /)).toBe(1);
  });

  it('reopens when the device path vanishes or names another device, though the port said nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'htntp-gps-path-'));
    const device = join(dir, 'ttyGPS');
    writeFileSync(device, '');
    MockBinding.createPort(device, { echo: false, record: false });
    const lines: string[] = [];
    const source = new GpsSource({
      device,
      baud: 9600,
      logger: createLogger({ write: (line) => lines.push(line) }),
      reopenDelays: [50],
      ports: ({ path, baudRate }) => new SerialPortMock({ path, baudRate, autoOpen: false }),
    });
    const controller = new AbortController();
    const running = (async () => {
      for await (const _sample of source.samples(controller.signal)) {
        // none expected
      }
    })();
    const logged = (pattern: RegExp): number => lines.filter((line) => pattern.test(line)).length;
    try {
      await vi.waitFor(() => expect(logged(/^info device open /)).toBe(1), { timeout: 20_000 });
      // Another device under the same name (a new inode), as when socat or udev recreates it.
      // (created before the old one goes, so the inode number cannot be reused)
      writeFileSync(`${device}.new`, 'x');
      renameSync(`${device}.new`, device);
      await vi.waitFor(() => expect(logged(/^warn device path replaced /)).toBe(1), { timeout: 20_000 });
      await vi.waitFor(() => expect(logged(/^info device back /)).toBe(1), { timeout: 20_000 });
      expect(logged(/^warn device lost /)).toBe(1);
      rmSync(device);
      await vi.waitFor(() => expect(logged(/^warn device path gone /)).toBe(1), { timeout: 20_000 });
      await vi.waitFor(() => expect(logged(/^warn device lost /)).toBe(2), { timeout: 20_000 });
    } finally {
      controller.abort();
      await running;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects before any sample when the device cannot be opened', async () => {
    const source = new GpsSource({
      device: '/dev/nothing-here',
      baud: 9600,
      ports: ({ path, baudRate }) => new SerialPortMock({ path, baudRate, autoOpen: false }),
    });
    const iterator = source.samples(new AbortController().signal)[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toMatchObject({ device: '/dev/nothing-here' });
  });
});
