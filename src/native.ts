// Loads the addon (built here, or the package's prebuilt one for this platform) and
// gives it types. Nothing else in the package touches the addon directly but
// shm.ts, sock.ts, clock.ts and the certificate check in sources/http/tls.ts.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { codedError } from './errors.js';
import type { ShmFields } from './shm.js';
import type { Timespec } from './time.js';

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
  /** One sample, every argument range-checked before anything is written. */
  write(
    clockSec: number,
    clockNsec: number,
    receiveSec: number,
    receiveNsec: number,
    leap: number,
    precision: number,
  ): void;
  /** As write(), with receive = CLOCK_REALTIME read inside the call. */
  writeNow(clockSec: number, clockNsec: number, leap: number, precision: number): void;
  /** A consistent copy of the fields (never clears valid). */
  snapshot(): ShmFields & { consistent: boolean };
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

export interface NativeSockClient {
  readonly connected: boolean;
  /** A non-blocking AF_UNIX datagram socket connected to `path`: errno, 0 when connected. */
  connect(path: string): number;
  /** One struct sock_sample (range-checked first): errno, 0 when sent. */
  send(clockSec: number, clockNsec: number, receiveSec: number, receiveNsec: number, leap: number): number;
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

/**
 * One certificate of a path OpenSSL verified: subject (RFC 2253) and validity, seconds since the epoch, both ends
 * included.
 */
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
  /**
   * The presented chain (DER, server's certificate first) for `host` (name or IP literal), purpose ssl_server, auth
   * level 1, at `atSeconds`.
   */
  verify(ders: readonly Buffer[], host: string, atSeconds: number): NativeChainVerdict;
}

export interface NativeAddon {
  Segment: new (unit: number, create: boolean, perm: number, readOnly: boolean) => NativeSegment;
  readRealtime(): Timespec;
  /** CLOCK_MONOTONIC_RAW (CLOCK_MONOTONIC where there is none). */
  readMonotonicRaw(): Timespec;
  /** CLOCK_MONOTONIC_RAW in ms, as one number. */
  readMonotonicRawMs(): number;
  /** IPC_STAT of the unit's segment without attaching (any size); errno/syscall error if absent (ENOENT). */
  statUnit(unit: number): NativeStat & { shmId: number };
  /** The shmid the unit's key names now (shmget without access bits: no permission needed); ENOENT if none. */
  unitShmId(unit: number): number;
  /** ntp_adjtime() with modes 0: the kernel's view of the clock's discipline. */
  readClockState(): NativeClockState;
  layout: NativeLayout;
  /** wide: send the 40-byte layout of a 64-bit time_t whatever this platform's. */
  SockClient: new (wide: boolean) => NativeSockClient;
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
      `the htntp native addon is missing: none built in ${packageRoot} and no prebuilt one for ${process.platform}` +
        `-${process.arch} (prebuilt: linux-x64, linux-arm64, linux-armv7 with glibc)`,
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

let loaded: NativeAddon | undefined;

/**
 * The addon, loaded on first use: commands and modules that never touch a segment or a
 * clock (help, config) work without it.
 */
export function nativeAddon(): NativeAddon {
  loaded ??= load();
  return loaded;
}

/**
 * A view of one of the addon's layout objects whose fields are read from the addon when asked, so a module can
 * export it without loading the addon.
 */
export function addonLayout<Part extends 'layout' | 'sockLayout'>(
  part: Part,
  fields: readonly (keyof NativeAddon[Part])[],
): NativeAddon[Part] {
  const view = {} as NativeAddon[Part];
  for (const field of fields) {
    Object.defineProperty(view, field, { enumerable: true, get: () => nativeAddon()[part][field] });
  }
  return view;
}
