// serialport's binding with reads on the main loop. Its own read goes through the thread
// pool (fs.read) and reads again until EAGAIN before it polls: per NMEA burst a poll
// wake-up plus two thread-pool completions. The port is O_NONBLOCK, so readSync() never
// blocks: take what is there at once, and on EAGAIN wait for the port's poller.
import { readSync } from 'node:fs';
import {
  autoDetect,
  BindingsError,
  DarwinPortBinding,
  LinuxPortBinding,
  type BindingInterface,
  type BindingPortInterface,
  type DarwinOpenOptions,
  type LinuxOpenOptions,
  type LinuxSetOptions,
  type PortStatus,
  type UpdateOptions,
  type WindowsOpenOptions,
} from '@serialport/bindings-cpp';

type PolledPort = LinuxPortBinding | DarwinPortBinding;
/** What the detected binding's open() takes, whichever platform it is. */
type PortOptions = LinuxOpenOptions & DarwinOpenOptions & WindowsOpenOptions;
type ReadResult = { buffer: Buffer; bytesRead: number };

/** Nothing to read yet: wait for the poller. */
const RETRY_CODES = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);
/** The device went away (or the fd was closed under us): serialport's disconnect codes. */
const DISCONNECT_CODES = new Set(['EBADF', 'ENXIO', 'UNKNOWN']);

function isErrnoError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

function readable(port: PolledPort): Promise<void> {
  return new Promise((resolve, reject) => port.poller.once('readable', (error) => (error ? reject(error) : resolve())));
}

/** Delegates everything to serialport's port binding except read(). */
export class MainLoopReadPort implements BindingPortInterface {
  readonly #port: PolledPort;

  constructor(port: PolledPort) {
    this.#port = port;
  }

  get openOptions(): PolledPort['openOptions'] {
    return this.#port.openOptions;
  }

  get isOpen(): boolean {
    return this.#port.isOpen;
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<ReadResult> {
    // serialport's own argument checks and messages.
    if (!Buffer.isBuffer(buffer)) throw new TypeError('"buffer" is not a Buffer');
    if (typeof offset !== 'number' || Number.isNaN(offset))
      throw new TypeError(`"offset" is not an integer got "${Number.isNaN(offset) ? 'NaN' : typeof offset}"`);
    if (typeof length !== 'number' || Number.isNaN(length))
      throw new TypeError(`"length" is not an integer got "${Number.isNaN(length) ? 'NaN' : typeof length}"`);
    if (buffer.length < offset + length) throw new Error('buffer is too small');
    if (!this.isOpen) throw new Error('Port is not open');
    for (;;) {
      const fd = this.#port.fd;
      // Closed while we waited: canceled, so the stream waits for a reopen instead of disconnecting.
      if (fd === null) throw new BindingsError('Port is not open', { canceled: true });
      let bytesRead = 0;
      try {
        bytesRead = readSync(fd, buffer, offset, length, null);
      } catch (error) {
        if (!isErrnoError(error) || !RETRY_CODES.has(error.code ?? '')) {
          if (isErrnoError(error) && (DISCONNECT_CODES.has(error.code ?? '') || error.errno === -1))
            Object.assign(error, { disconnect: true });
          throw error;
        }
      }
      if (bytesRead > 0) return { buffer, bytesRead };
      // Nothing (or a 0-byte read): the poller says when there is more, or fails if the port closes.
      await readable(this.#port);
    }
  }

  close(): Promise<void> {
    return this.#port.close();
  }

  write(buffer: Buffer): Promise<void> {
    return this.#port.write(buffer);
  }

  update(options: UpdateOptions): Promise<void> {
    return this.#port.update(options);
  }

  set(options: LinuxSetOptions): Promise<void> {
    return this.#port.set(options);
  }

  get(): Promise<PortStatus> {
    return this.#port.get();
  }

  getBaudRate(): Promise<{ baudRate: number }> {
    return this.#port.getBaudRate();
  }

  flush(): Promise<void> {
    return this.#port.flush();
  }

  drain(): Promise<void> {
    return this.#port.drain();
  }
}

const detected = autoDetect();

/** The platform's binding, its polled ports (Linux, macOS) reading on the main loop. */
export const mainLoopBinding: BindingInterface<BindingPortInterface, PortOptions> = {
  list: () => detected.list(),
  async open(options: PortOptions): Promise<BindingPortInterface> {
    const port = await detected.open(options);
    return port instanceof LinuxPortBinding || port instanceof DarwinPortBinding ? new MainLoopReadPort(port) : port;
  },
};
