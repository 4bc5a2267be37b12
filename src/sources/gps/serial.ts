// Opening the receiver's serial port with errors that name the cause.
import { SerialPortStream } from '@serialport/stream';
import { codedError } from '../../errors.js';
import { mainLoopBinding } from './binding.js';

/** What `--baud auto` tries, in order: the rates NMEA receivers ship with. */
export const BAUD_RATES = [4800, 9600, 19200, 38400, 57600, 115200] as const;

/** A SerialPort, or SerialPortMock in tests: both are a SerialPortStream. */
export type Port = SerialPortStream;
export type PortFactory = (options: { path: string; baudRate: number }) => Port;

export const systemPorts: PortFactory = ({ path, baudRate }) =>
  // lock: a second reader (gpsd, ModemManager) would steal half the lines.
  new SerialPortStream({ binding: mainLoopBinding, path, baudRate, autoOpen: false, lock: true });

export interface DeviceError extends Error {
  code: string;
  device: string;
}

/** serialport reports strerror() text only; turn it into a code and a hint. */
export function deviceError(error: unknown, device: string): DeviceError {
  const message = error instanceof Error ? error.message : String(error);
  let code = 'EIO';
  let text = `cannot open ${device}: ${message}`;
  if (/No such file or directory/i.test(message)) {
    code = 'ENOENT';
    text = `device ${device} does not exist: is the receiver plugged in? (stable names live in /dev/serial/by-id/)`;
  } else if (/Permission denied/i.test(message)) {
    code = 'EACCES';
    text =
      `permission denied opening ${device}: run as a member of its group (ls -lL ${device}; usually ` +
      `dialout) or as root`;
  } else if (/Cannot lock port/i.test(message)) {
    code = 'EBUSY';
    text =
      `${device} is locked by another program (gpsd, ModemManager, another htntp?): stop it first; \`fuser ` +
      `-v ${device}\` names it`;
  } else if (/Inappropriate ioctl|Not a typewriter/i.test(message)) {
    code = 'ENOTTY';
    text = `${device} is not a serial port`;
  }
  return codedError(text, code, { device }, error);
}

function callback(run: (done: (error?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}

/** Opens the port and drops whatever the OS buffered before we came (it is stale). */
export async function openPort(factory: PortFactory, device: string, baudRate: number): Promise<Port> {
  const port = factory({ path: device, baudRate });
  try {
    await callback((done) => port.open(done));
  } catch (error) {
    throw deviceError(error, device);
  }
  await callback((done) => port.flush(done)).catch(() => undefined);
  return port;
}

/** ASYNC_LOW_LATENCY (FTDI adapters otherwise hold bytes up to 16 ms). Not every tty has it. */
export async function setLowLatency(port: Port): Promise<boolean> {
  try {
    await callback((done) => port.set({ lowLatency: true } as Parameters<Port['set']>[0], done));
    return true;
  } catch {
    return false;
  }
}

export async function closePort(port: Port): Promise<void> {
  if (!port.isOpen) return;
  await callback((done) => port.close(done)).catch(() => undefined);
}

export function setBaudRate(port: Port, baudRate: number): Promise<void> {
  return callback((done) => port.update({ baudRate }, done));
}
