// The GPS port's reads on a real socat pty: every byte of many bursts arrives once and in
// order however the writer splits them, and a read waiting for data ends (canceled) when
// the port closes, or as a disconnect when the device goes away, never hangs.
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { mainLoopBinding } from '../../../src/sources/gps/binding.js';
import { closePort, openPort, systemPorts } from '../../../src/sources/gps/serial.js';
import { describeE2e, waitFor } from '../../helpers/daemons.js';
import { makeTempDir, type TempDir } from '../../helpers/process.js';
import { startPtyPairIn, type PtyPair } from '../../helpers/gps/pty.js';
import { seededRandom } from '../../helpers/random.js';
import { burst } from '../../helpers/gps/sentences.js';

const BURSTS = 150;
const SEED = 0x5e71a1;

let temp: TempDir;
beforeAll(async () => {
  temp = await makeTempDir('gps-serial-read');
});
afterAll(() => temp?.remove());

async function ptyPair(name: string): Promise<PtyPair> {
  const pair = await startPtyPairIn(temp.path, name);
  onTestFinished(() => pair.stop());
  return pair;
}

function openWriter(path: string): number {
  const fd = openSync(path, constants.O_WRONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  onTestFinished(() => closeSync(fd));
  return fd;
}

/** Writes all of `bytes`, waiting while the pty is full (the reader is in this process). */
async function writeAll(fd: number, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(fd, bytes, done);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      await delay(5);
    }
  }
}

/** Whether `promise` has settled within `ms` (a read left hanging fails here, not at the test timeout). */
function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    delay(ms).then(() => false),
  ]);
}

describeE2e('GPS serial reads (socat pty)', ['socat'], () => {
  it('every byte of many bursts, split at random points, arrives once and in order', async () => {
    const pair = await ptyPair('order');
    const port = await openPort(systemPorts, pair.devicePath, 9600);
    onTestFinished(() => closePort(port));
    const chunks: Buffer[] = [];
    let received = 0;
    port.on('data', (chunk: Buffer) => {
      chunks.push(Buffer.from(chunk));
      received += chunk.length;
    });

    const random = seededRandom(SEED);
    const first = Math.floor(Date.UTC(2026, 0, 1) / 1000);
    const sent = Buffer.from(
      Array.from({ length: BURSTS }, (_, index) =>
        burst(first + index)
          .map((line) => `${line}\r\n`)
          .join(''),
      ).join(''),
      'latin1',
    );
    const writer = openWriter(pair.writerPath);
    // Pieces of 1..120 bytes: most written back to back, some after a pause so that reads
    // find the port both empty and mid-line.
    let writes = 0;
    for (let offset = 0; offset < sent.length; writes += 1) {
      const size = 1 + Math.floor(random() * 120);
      await writeAll(writer, sent.subarray(offset, offset + size));
      offset += size;
      if (random() < 0.2) await delay(Math.floor(random() * 4));
    }
    await waitFor(() => (received >= sent.length ? true : undefined), {
      what: `${sent.length} bytes (have ${received})`,
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    // Nothing more trails in (a byte read twice would show up here).
    await delay(200);
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(sent.length);
    expect(got.equals(sent)).toBe(true);
    process.stderr.write(`[gps serial] ${sent.length} bytes in ${writes} writes came as ${chunks.length} reads\n`);
  });

  it('a read with data returns at once; a read waiting for data is canceled by close, not left hanging', async () => {
    const pair = await ptyPair('close');
    const port = await mainLoopBinding.open({ path: pair.devicePath, baudRate: 9600 });
    onTestFinished(() => (port.isOpen ? port.close() : undefined));
    const writer = openWriter(pair.writerPath);

    await writeAll(writer, Buffer.from('$GPTXT,ready*00\r\n', 'latin1'));
    const buffer = Buffer.alloc(256);
    let text = '';
    while (!text.endsWith('\r\n')) {
      const { bytesRead } = await port.read(buffer, 0, buffer.length);
      expect(bytesRead).toBeGreaterThan(0);
      text += buffer.toString('latin1', 0, bytesRead);
    }
    expect(text).toBe('$GPTXT,ready*00\r\n');

    await expect(port.read('no buffer' as unknown as Buffer, 0, 1)).rejects.toThrow(TypeError);
    await expect(port.read(buffer, 0, buffer.length + 1)).rejects.toThrow(/buffer is too small/);

    // Nothing to read: the read waits on the poller ...
    const pending = port.read(buffer, 0, buffer.length);
    pending.catch(() => undefined);
    expect(await settledWithin(pending, 100)).toBe(false);
    // ... and closing the port ends it as canceled (serialport then waits for a reopen).
    await port.close();
    expect(await settledWithin(pending, 10_000)).toBe(true);
    await expect(pending).rejects.toMatchObject({ canceled: true });
    await expect(port.read(buffer, 0, buffer.length)).rejects.toThrow(/Port is not open/);
  });

  it('a read waiting for data when the device goes away fails as a disconnect', async () => {
    const pair = await ptyPair('unplug');
    const port = await mainLoopBinding.open({ path: pair.devicePath, baudRate: 9600 });
    onTestFinished(() => (port.isOpen ? port.close() : undefined));
    const pending = port.read(Buffer.alloc(64), 0, 64);
    pending.catch(() => undefined);
    expect(await settledWithin(pending, 100)).toBe(false);
    await pair.stop();
    expect(await settledWithin(pending, 10_000)).toBe(true);
    const error = await pending.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(Error);
    // Not canceled: serialport reports it as a disconnection and closes the port.
    expect((error as { canceled?: boolean }).canceled).not.toBe(true);
  });
});
