// Loads the addon (built here, or the package's prebuilt one for this platform) and
// gives it types. Nothing else in the package touches the addon directly but
// shm.ts, sock.ts, clock.ts and the certificate check in sources/http/tls.ts.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { codedError } from './errors.js';
import type { Timespec } from './time.js';

/**
 * Slots of NativeSegment#io. write()/writeNow() take their arguments from it and
 * snapshot() leaves its results in it, so a call passes no N-API values at all.
 */
export const IO = {
  clockSec: 0,
  clockNsec: 1,
  receiveSec: 2,
  receiveNsec: 3,
  leap: 4,
  precision: 5,
  /** snapshot(): the 12 fields in declaration order (layout.fields), then these two */
  consistent: 12,
  retries: 13,
  /** how many slots the array has */
  slots: 14,
} as const;

/** Slots of the array the clock functions fill: [sec, nsec]. */
export const CLOCK = {
  sec: 0,
  nsec: 1,
  /** how many slots the array has */
  slots: 2,
} as const;

/**
 * A Float64Array over a SharedArrayBuffer: what the addon reads and writes between
 * calls. A SharedArrayBuffer can never be detached or transferred away under it.
 */
export function sharedSlots(count: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(count * Float64Array.BYTES_PER_ELEMENT));
}

export interface NativeStat {
  size: number;
  perm: number;
  uid: number;
  cuid: number;
  cpid: number;
  lpid: number;
  nattch: number;
  removed: boolean;
}

export interface NativeSegment {
  readonly attached: boolean;
  readonly created: boolean;
  readonly readOnly: boolean;
  readonly unit: number;
  readonly key: number;
  readonly shmId: number;
  get(field: number): number;
  set(field: number, value: number): void;
  /** One sample from io: clock, receive, leap, precision (range-checked before writing). */
  write(): void;
  /** As write(), with receive = CLOCK_REALTIME read inside the call. */
  writeNow(): void;
  /** Consistent copy of the fields into io (never clears valid). */
  snapshot(): void;
  stat(): NativeStat;
  remove(): void;
  detach(): void;
}

export interface NativeClockState {
  /** ntp_adjtime's return: TIME_OK (0) .. TIME_ERROR (5). */
  state: number;
  /** STA_* bits. */
  status: number;
  /** The daemon's bound on the clock's error, µs (the kernel grows it 500 µs/s). */
  maxErrorUs: number;
  estErrorUs: number;
  /** STA_UNSYNC set, or TIME_ERROR: no daemon vouches for the clock. */
  unsynchronised: boolean;
}

export interface NativeLayout {
  size: number;
  timeTSize: number;
  fields: { name: string; offset: number; min: number; max: number }[];
  dummyOffset: number;
  keyBase: number;
}

/** Slots of NativeSockClient's io array: send() reads the sample and leaves its errno in `result`. */
export const SOCK_IO = {
  clockSec: 0,
  clockNsec: 1,
  receiveSec: 2,
  receiveNsec: 3,
  leap: 4,
  result: 5,
  slots: 6,
} as const;

export interface NativeSockClient {
  readonly connected: boolean;
  /** A non-blocking AF_UNIX datagram socket connected to `path`: errno, 0 when connected. */
  connect(path: string): number;
  /** One struct sock_sample from io (range-checked first); io[SOCK_IO.result] = errno, 0 when sent. */
  send(): void;
  close(): void;
}

export interface NativeSockLayout {
  size: number;
  timevalSize: number;
  offsets: Record<'tv_sec' | 'tv_usec' | 'offset' | 'pulse' | 'leap' | '_pad' | 'magic', number>;
  magic: number;
  /** Longest socket path (sun_path less its NUL). */
  maxPathBytes: number;
}

/** One certificate of a path OpenSSL verified: subject (RFC 2253) and validity, seconds since the epoch, both ends included. */
export interface NativeCertificateWindow {
  subject: string;
  notBefore: number;
  notAfter: number;
}

/** X509_verify_cert's verdict: `code` as Node names verify errors (CERT_HAS_EXPIRED...), `path` only when ok. */
export interface NativeChainVerdict {
  ok: boolean;
  code: string;
  message: string;
  /** Depth of the certificate the error is about (-1: none). */
  depth: number;
  path: NativeCertificateWindow[];
}

export interface NativeTrustStore {
  /** Anchors taken from the PEM bundle (blocks that do not parse are skipped). */
  readonly size: number;
  /** The presented chain (DER, server's certificate first) for `host` (name or IP literal), purpose ssl_server, auth level 1, at `atSeconds`. */
  verify(ders: readonly Buffer[], host: string, atSeconds: number): NativeChainVerdict;
}

export interface NativeAddon {
  /** io: the Float64Array (IO.slots long, over a SharedArrayBuffer) write()/writeNow()/snapshot() work through. */
  Segment: new (unit: number, create: boolean, perm: number, readOnly: boolean, io: Float64Array) => NativeSegment;
  /** Hands over the array (2 elements, over a SharedArrayBuffer) the read* clock functions fill. */
  useClockSlots(slots: Float64Array): void;
  /** slots = [sec, nsec] of CLOCK_REALTIME */
  readRealtime(): void;
  /** slots = [sec, nsec] of CLOCK_MONOTONIC_RAW (CLOCK_MONOTONIC where there is none) */
  readMonotonicRaw(): void;
  /** IPC_STAT of the unit's segment without attaching (any size); errno/syscall error if absent (ENOENT). */
  statUnit(unit: number): NativeStat & { shmId: number };
  /** The shmid the unit's key names now (shmget without access bits: no permission needed); ENOENT if none. */
  unitShmId(unit: number): number;
  /** ntp_adjtime() with modes 0: the kernel's view of the clock's discipline. */
  readClockState(): NativeClockState;
  layout: NativeLayout;
  /** The slot numbers as the addon was compiled with them (checked against IO and CLOCK at load). */
  slotNumbers: {
    io: Record<keyof typeof IO, number>;
    clock: Record<keyof typeof CLOCK, number>;
    sock: Record<keyof typeof SOCK_IO, number>;
  };
  /** io: the Float64Array (SOCK_IO.slots long, over a SharedArrayBuffer) send() works through. */
  /** wide: send the 40-byte layout of a 64-bit time_t whatever this platform's. */
  SockClient: new (io: Float64Array, wide?: boolean) => NativeSockClient;
  sockLayout: NativeSockLayout;
  /** OpenSSL's X509_STORE of the certificates of a PEM bundle (native/cert_verify.h). */
  TrustStore: new (pem: string) => NativeTrustStore;
}

/** Where the package keeps build/ and prebuilds/: one folder up from src/ or dist/. */
const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));

/** One line saying what is missing and how to get it: the CLI prints it as it is. */
function addonError(message: string, cause: unknown): Error {
  return codedError(
    `${message}: build it with \`npm rebuild htntp\` (needs python3, make and a C++ compiler)`,
    'ERR_HTNTP_ADDON',
    {},
    cause,
  );
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  // build/Release (or build/Debug) when built here, else prebuilds/<platform>-<arch>/.
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  let file: string;
  try {
    file = nodeGypBuild.resolve(packageRoot);
  } catch (error) {
    throw addonError(
      `the htntp native addon is missing: none built in ${packageRoot} and no prebuilt one for ${process.platform}-${process.arch} (prebuilt: linux-x64, linux-arm64, linux-armv7 with glibc)`,
      error,
    );
  }
  try {
    return require(file) as NativeAddon;
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    throw addonError(`the htntp native addon ${file} does not load (${reason})`, error);
  }
}

/** The addon and this file must number the slots alike: a stale build would read the wrong ones. */
function checkSlots(addon: NativeAddon): NativeAddon {
  const expected = { io: IO, clock: CLOCK, sock: SOCK_IO } as const;
  for (const table of ['io', 'clock', 'sock'] as const) {
    const built: Record<string, number> = addon.slotNumbers?.[table] ?? {};
    const wanted: Record<string, number> = expected[table];
    const names = new Set([...Object.keys(built), ...Object.keys(wanted)]);
    for (const name of names) {
      if (built[name] !== wanted[name]) {
        throw new Error(
          `htntp: the addon numbers ${table} slot ${name} ${String(built[name])}, this code ${String(wanted[name])}: rebuild it (npm rebuild htntp)`,
        );
      }
    }
  }
  return addon;
}

let loaded: NativeAddon | undefined;

/**
 * The addon, loaded and checked on first use: commands and modules that never touch a
 * segment or a clock (help, config) work without it.
 */
export function nativeAddon(): NativeAddon {
  loaded ??= checkSlots(load());
  return loaded;
}

/**
 * A struct layout the addon reports (`layout`, `sockLayout`), read from the addon on first
 * access, so that importing the module exporting it needs no addon.
 */
export function lazyLayout<K extends 'layout' | 'sockLayout'>(key: K): NativeAddon[K] {
  const real = (): NativeAddon[K] => nativeAddon()[key];
  return new Proxy({} as NativeAddon[K], {
    get: (_target, property) => Reflect.get(real(), property),
    has: (_target, property) => Reflect.has(real(), property),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_target, property) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(real(), property);
      return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
    },
  });
}
