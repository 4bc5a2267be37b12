// Loads the compiled addon (build/Release, or build/Debug for `node-gyp build --debug`)
// and gives it types. Nothing else in the package touches the addon directly but
// shm.ts and clock.ts.
import { createRequire } from 'node:module';

/** A CLOCK_* reading: whole seconds and nanoseconds (0..999999999). */
export interface Timespec {
  sec: number;
  nsec: number;
}

export interface NativeSnapshot {
  mode: number;
  count: number;
  clockTimeStampSec: number;
  clockTimeStampUSec: number;
  receiveTimeStampSec: number;
  receiveTimeStampUSec: number;
  leap: number;
  precision: number;
  nsamples: number;
  valid: number;
  clockTimeStampNSec: number;
  receiveTimeStampNSec: number;
  /** count did not move across the copy */
  consistent: boolean;
  retries: number;
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
  write(clockSec: number, clockNsec: number, receiveSec: number, receiveNsec: number, leap: number, precision: number): void;
  writeNow(clockSec: number, clockNsec: number, leap: number, precision: number): void;
  snapshot(): NativeSnapshot;
  stat(): NativeStat;
  remove(): void;
  detach(): void;
}

export interface NativeLayout {
  size: number;
  timeTSize: number;
  fields: { name: string; offset: number; min: number; max: number }[];
  dummyOffset: number;
  keyBase: number;
}

export interface NativeAddon {
  Segment: new (unit: number, create: boolean, perm: number, readOnly: boolean) => NativeSegment;
  realtime(): Timespec;
  monotonicRaw(): Timespec;
  clockPair(): { monotonicRaw: Timespec; realtime: Timespec };
  layout: NativeLayout;
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const candidates = ['../build/Release/htntp.node', '../build/Debug/htntp.node'];
  let firstError: unknown;
  for (const candidate of candidates) {
    try {
      return require(candidate) as NativeAddon;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
      firstError ??= error;
    }
  }
  throw new Error('The htntp native addon is not built: run `npm install` (or `npx node-gyp rebuild`) in the package folder', {
    cause: firstError,
  });
}

export const native: NativeAddon = load();
