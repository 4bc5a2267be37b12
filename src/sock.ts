// The typed API of chrony's SOCK reference clock: a client end that sends one
// struct sock_sample datagram per sample to the socket chronyd made for
// `refclock SOCK <path>`. System faults come back as Node-style errors, never thrown:
// a reader that is down (or restarting) is the normal case for the caller to retry.
import { getSystemErrorName } from 'node:util';
import { addonLayout, nativeAddon, type NativeSockClient, type NativeSockLayout } from './native.js';
import { invalidArgType, outOfRange, systemError } from './errors.js';
import { toTimespec, type Time } from './time.js';

/**
 * The datagram's layout: `native`, struct sock_sample with this platform's struct timeval
 * (40 bytes, 32 where time_t is 32-bit: what chrony before 4.4 insists on there), or `40`,
 * the 64-bit time_t layout on every platform (what ntpd-rs reads, and chrony 4.4+ takes).
 */
export type SockLayoutChoice = 'native' | '40';
export const SOCK_LAYOUTS: readonly SockLayoutChoice[] = ['native', '40'];

/** Leap indicators chrony's SOCK driver accepts: 0 none, 1 insert, 2 delete. */
export type SockLeap = 0 | 1 | 2;

/**
 * The longest socket path: sizeof(sockaddr_un.sun_path) less its NUL, 108 bytes on Linux
 * and 104 on the BSDs and macOS. Known without the addon, so `htntp config --sock` and
 * option parsing need none; the addon's own figure is checked against it on first use.
 */
export const MAX_SOCK_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** struct sock_sample as compiled on this platform (size, offsets, magic), read on first use. */
export const sockLayout: NativeSockLayout = addonLayout('sockLayout', [
  'size',
  'timevalSize',
  'offsets',
  'magic',
  'maxPathBytes',
]);

/**
 * Where htntp's units put the SOCK sockets: a directory root owns and the htntp group may
 * enter (contrib/systemd/tmpfiles.d/htntp.conf), whose sockets chrony's drop-in gives to
 * the htntp group after every chronyd start (contrib/systemd/chrony.service.d/htntp-sock.conf).
 */
export const UNIT_SOCK_DIR = '/run/htntp-sock';

/** The fix for a socket the feeder may not write, as the units apply it. */
export function sockPermissionFix(path: string): string {
  return [
    `the time daemon creates ${path} writable by its owner only, at every start:`,
    "install htntp's contrib/systemd/chrony.service.d/htntp-sock.conf (after each chronyd start it gives the sockets",
    `in ${UNIT_SOCK_DIR} to the htntp group, group-writable) and tmpfiles.d/htntp.conf, keep the socket in`,
    `${UNIT_SOCK_DIR} and restart chronyd once; or after each start by hand: chgrp htntp ${path} && chmod g+w ${path}`,
  ].join(' ');
}

/** What a failed connect/send to a SOCK socket most likely means, and the fix. */
export function sockErrorHint(code: string | undefined, path: string): string {
  switch (code) {
    case 'ENOENT':
      return (
        `no socket at ${path}: the time daemon (chronyd, ntpd-rs) is not running, or its config names ` +
        `another path; retrying`
      );
    case 'ECONNREFUSED':
      return `nothing reads ${path}: the time daemon stopped or is restarting (the socket file is left over); retrying`;
    case 'EACCES':
    case 'EPERM':
      return `${sockPermissionFix(path)}; retrying`;
    case 'EAGAIN':
    case 'ENOBUFS':
      return `the reader of ${path} is not keeping up: the sample was dropped`;
    case 'ENOTSOCK':
    case 'EPROTOTYPE':
      return `${path} is not a datagram socket: is it the refclock SOCK path of chronyd or ntpd-rs?`;
    default:
      return `socket ${path}`;
  }
}

/** errno from the addon (positive) as Node's error, with the path and a hint. */
function sockError(errno: number, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(systemError(syscall, -errno, sockErrorHint(getSystemErrorName(-errno), path)), { path });
}

/** The socket path as given; TypeError/RangeError before anything is opened. */
export function checkSockPath(path: unknown): string {
  if (typeof path !== 'string') throw invalidArgType('path', 'string', path);
  const bytes = Buffer.byteLength(path);
  if (bytes === 0 || bytes > MAX_SOCK_PATH_BYTES || path.includes('\0')) {
    throw outOfRange('path', `1 to ${MAX_SOCK_PATH_BYTES} bytes without NUL`, JSON.stringify(path));
  }
  return path;
}

export class ChronySock {
  readonly path: string;
  readonly #client: NativeSockClient;

  readonly layout: SockLayoutChoice;

  constructor(path: string, layout: SockLayoutChoice = 'native') {
    this.path = checkSockPath(path);
    if (!SOCK_LAYOUTS.includes(layout))
      throw outOfRange('layout', `one of ${SOCK_LAYOUTS.join(', ')}`, JSON.stringify(layout));
    this.layout = layout;
    const addon = nativeAddon();
    if (addon.sockLayout.maxPathBytes !== MAX_SOCK_PATH_BYTES) {
      throw new Error(
        `htntp: the addon's socket paths hold ${addon.sockLayout.maxPathBytes} bytes, this ` +
          `code's ${MAX_SOCK_PATH_BYTES}: rebuild it (npm rebuild htntp)`,
      );
    }
    this.#client = new addon.SockClient(layout === '40');
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** (Re)connects: undefined when connected, else the error (ENOENT, ECONNREFUSED, EACCES...). */
  connect(): NodeJS.ErrnoException | undefined {
    const errno = this.#client.connect(this.path);
    return errno === 0 ? undefined : sockError(errno, 'connect', this.path);
  }

  /**
   * One sample: tv = receiveTime (truncated to microseconds), offset = clockTime - tv.
   * Arguments are checked before anything is sent (TypeError/RangeError). Undefined when
   * sent, else the error (ENOTCONN before connect(), ECONNREFUSED once the reader is gone).
   */
  send(clockTime: Time, receiveTime: Time, leap: SockLeap = 0): NodeJS.ErrnoException | undefined {
    const clock = toTimespec(clockTime, 'clockTime');
    const receive = toTimespec(receiveTime, 'receiveTime');
    if (typeof leap !== 'number') throw invalidArgType('leap', 'number', leap);
    const errno = this.#client.send(clock.sec, clock.nsec, receive.sec, receive.nsec, leap);
    return errno === 0 ? undefined : sockError(errno, 'send', this.path);
  }

  /** Idempotent; a later connect() opens a new socket. */
  close(): void {
    this.#client.close();
  }
}
