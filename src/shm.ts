// The typed API of the ntpd SHM reference clock segment (driver 28).
import {
  addonLayout,
  nativeAddon,
  type NativeAddon,
  type NativeLayout,
  type NativeSegment,
  type NativeStat,
} from './native.js';
import { explainSystemError, invalidArgType } from './errors.js';
import { toTimespec, type Time, type Timespec } from './time.js';

export type { Time, Timespec };

/** 0 no warning, 1 insert a second at the end of the UTC day, 2 delete one, 3 not in sync. */
export type Leap = 0 | 1 | 2 | 3;

export interface NtpdShmOptions {
  unit: number;
  /** Create the segment when it does not exist (default true, false with readOnly). false: attach only. */
  create?: boolean;
  /** Permissions for a segment we create: default 0600 for units 0-1, 0666 above (ntpd/gpsd). */
  perm?: number;
  /** Attach with SHM_RDONLY: reading never disturbs a writer; every write throws. */
  readOnly?: boolean;
}

export interface UpdateOptions {
  /** When the event was seen on the local clock; default CLOCK_REALTIME now, read in the native call. */
  receiveTime?: Time;
  /** log2 of the sample's error in seconds (default -20, about 1 us). */
  precision?: number;
  leap?: Leap;
}

/**
 * The fields of struct shmTime in declaration order, the way the addon numbers them (checked
 * against its layout at load). The accessors and the snapshot type come from this list.
 */
export const FIELD_NAMES = [
  'mode',
  'count',
  'clockTimeStampSec',
  'clockTimeStampUSec',
  'receiveTimeStampSec',
  'receiveTimeStampUSec',
  'leap',
  'precision',
  'nsamples',
  'valid',
  'clockTimeStampNSec',
  'receiveTimeStampNSec',
] as const;
export type FieldName = (typeof FIELD_NAMES)[number];
export type ShmFields = Record<FieldName, number>;

/** Every field of the segment, read while `count` stood still. */
export interface ShmSnapshot extends ShmFields {
  unit: number;
  /** false if a writer kept moving `count` through every retry */
  consistent: boolean;
}

export type ShmStat = NativeStat;

export const DEFAULT_PRECISION = -20;
/** ntpd's key of unit 0, "NTP0"; the addon's own is checked against it on first use. */
export const KEY_BASE = 0x4e545030;
export const MAX_UNIT = 255;

export function keyOfUnit(unit: number): number {
  return KEY_BASE + unit;
}

/** The key as ipcs prints it and ipcrm -M takes it: 0x4e545032 for unit 2. */
export function keyText(unit: number): string {
  return `0x${keyOfUnit(unit).toString(16)}`;
}

/** Units 0-1 are root-only by the ntpd/gpsd convention (created 0600): what feeds them can steer ntpd. */
export function isRootOnlyUnit(unit: number): boolean {
  return unit < 2;
}

export function defaultPerm(unit: number): number {
  return isRootOnlyUnit(unit) ? 0o600 : 0o666;
}

const FIELD = Object.fromEntries(FIELD_NAMES.map((name, index) => [name, index])) as Readonly<
  Record<FieldName, number>
>;
let checkedAddon: NativeAddon | undefined;
/** The addon, checked once against the key base and field list above. */
function segmentAddon(): NativeAddon {
  if (checkedAddon !== undefined) return checkedAddon;
  const addon = nativeAddon();
  if (addon.layout.keyBase !== KEY_BASE)
    throw new Error(
      `htntp: the addon's key base is ${addon.layout.keyBase}, not ${KEY_BASE}: rebuild it (npm rebuild htntp)`,
    );
  if (addon.layout.fields.map((field) => field.name).join() !== FIELD_NAMES.join()) {
    throw new Error(
      `htntp: the addon's fields (${addon.layout.fields.map((field) => field.name).join(', ')}) are not this ` +
        `code's: rebuild it (npm rebuild htntp)`,
    );
  }
  checkedAddon = addon;
  return addon;
}

/** What a failed shmget/shmat on `unit` most likely means, and the fix. */
export function errorHint(code: string | undefined, unit: number): string {
  const key = keyText(unit);
  switch (code) {
    case 'EACCES':
      return isRootOnlyUnit(unit)
        ? `unit ${unit} is root-only by convention (units 0-1 are created 0600): run as root, or use a unit >= 2, ` +
            `or have the segment (key ${key}) created with other permissions`
        : `the segment (key ${key}) belongs to another user and its permissions exclude you: run as root, or have ` +
            `it created with permissions that let you in (0666 is the convention for units >= 2); see \`ipcs -m\``;
    case 'EINVAL':
      return (
        `an existing segment with key ${key} is not ${layout.size} bytes (sizeof(struct shmTime) here): a ` +
        `32/64-bit mismatch or another program's segment; remove it with \`ipcrm -M ${key}\``
      );
    case 'ENOENT':
      return `no segment exists for unit ${unit} (key ${key})`;
    case 'ENOSPC':
    case 'ENOMEM':
      return 'the system limit on shared memory segments is reached (see /proc/sys/kernel/shmmni)';
    default:
      return `unit ${unit}, key ${key}`;
  }
}

/** Seconds and nanoseconds of a timestamp, the way ntpd reads them: NSec only if it agrees with USec. */
function timestampOf(sec: number, usec: number, nsec: number): Timespec {
  return { sec, nsec: Math.floor(nsec / 1000) === usec ? nsec : usec * 1000 };
}

/** A sample was ever written: a segment only initialised (gpsd's way, or by a reader) has count 0 and no times. */
export function everWritten(snapshot: ShmSnapshot): boolean {
  return snapshot.count !== 0 || snapshot.clockTimeStampSec !== 0 || snapshot.receiveTimeStampSec !== 0;
}

/** The clock and receive times of a snapshot, exact, by the readers' NSec/USec rule. */
export function snapshotTimes(snapshot: ShmSnapshot): { clockTime: Timespec; receiveTime: Timespec } {
  return {
    clockTime: timestampOf(snapshot.clockTimeStampSec, snapshot.clockTimeStampUSec, snapshot.clockTimeStampNSec),
    receiveTime: timestampOf(
      snapshot.receiveTimeStampSec,
      snapshot.receiveTimeStampUSec,
      snapshot.receiveTimeStampNSec,
    ),
  };
}

/**
 * Every field under its C name (mode, count, ..., receiveTimeStampNSec): get reads it, set range-checks and writes it.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- the static block defines these accessors
export interface NtpdShm extends ShmFields {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface above
export class NtpdShm {
  static {
    FIELD_NAMES.forEach((name, index) => {
      Object.defineProperty(NtpdShm.prototype, name, {
        get(this: NtpdShm): number {
          return this.#segment.get(index);
        },
        set(this: NtpdShm, value: number) {
          this.#segment.set(index, value);
        },
        configurable: true,
      });
    });
  }

  readonly #segment: NativeSegment;
  readonly unit: number;
  readonly key: number;
  readonly shmId: number;
  /** Bytes of the segment, as IPC_STAT reports it. */
  readonly size: number;
  /** This instance created the segment (and initialised it the way gpsd does). */
  readonly created: boolean;
  readonly readOnly: boolean;

  constructor(unitOrOptions: number | NtpdShmOptions) {
    const options: NtpdShmOptions =
      typeof unitOrOptions === 'object' && unitOrOptions !== null ? unitOrOptions : { unit: unitOrOptions };
    const { unit, readOnly = false } = options;
    // A read-only attacher could not initialise a segment it made: it only attaches.
    const { create = !readOnly } = options;
    if (typeof create !== 'boolean') throw invalidArgType('options.create', 'boolean', create);
    if (typeof readOnly !== 'boolean') throw invalidArgType('options.readOnly', 'boolean', readOnly);
    // The addon checks unit and perm as integers in range (TypeError/RangeError).
    const perm = options.perm ?? (typeof unit === 'number' && unit >= 0 ? defaultPerm(unit) : 0);
    try {
      this.#segment = new (segmentAddon().Segment)(unit, create, perm, readOnly);
    } catch (error) {
      throw explainSystemError(error, (code) => errorHint(code, unit));
    }
    this.unit = unit;
    this.key = this.#segment.key;
    this.shmId = this.#segment.shmId;
    this.created = this.#segment.created;
    this.readOnly = readOnly;
    try {
      this.size = this.#call(() => this.#segment.stat().size);
    } catch (error) {
      this.#segment.detach(); // no attachment left behind by a constructor that throws
      throw error;
    }
    // readonly at run time too, not only for the type checker
    for (const name of ['unit', 'key', 'shmId', 'size', 'created', 'readOnly'] as const) {
      Object.defineProperty(this, name, { writable: false });
    }
  }

  #call<T>(action: () => T): T {
    try {
      return action();
    } catch (error) {
      throw explainSystemError(error, (code) => errorHint(code, this.unit));
    }
  }

  get attached(): boolean {
    return this.#segment.attached;
  }

  /** The clock timestamp as float seconds (sub-microsecond digits are lost to float). */
  get clockTimeStamp(): number {
    const time = this.clockTime;
    return time.sec + time.nsec / 1e9;
  }
  set clockTimeStamp(value: number) {
    this.#setTimestamp('clockTimeStamp', toTimespec(value, 'clockTimeStamp'));
  }
  get receiveTimeStamp(): number {
    const time = this.receiveTime;
    return time.sec + time.nsec / 1e9;
  }
  set receiveTimeStamp(value: number) {
    this.#setTimestamp('receiveTimeStamp', toTimespec(value, 'receiveTimeStamp'));
  }

  /** The clock timestamp, exact. */
  get clockTime(): Timespec {
    return timestampOf(this.clockTimeStampSec, this.clockTimeStampUSec, this.clockTimeStampNSec);
  }
  get receiveTime(): Timespec {
    return timestampOf(this.receiveTimeStampSec, this.receiveTimeStampUSec, this.receiveTimeStampNSec);
  }

  #setTimestamp(prefix: 'clockTimeStamp' | 'receiveTimeStamp', time: Timespec): void {
    // Sec first: it is the one field that can be out of range (32-bit time_t).
    this.#segment.set(FIELD[`${prefix}Sec`], time.sec);
    this.#segment.set(FIELD[`${prefix}USec`], Math.floor(time.nsec / 1000));
    this.#segment.set(FIELD[`${prefix}NSec`], time.nsec);
  }

  /**
   * Publishes one sample with gpsd's protocol: valid=0, count++, fence, fields, fence,
   * count++, fence, valid=1. Every argument is checked before anything is written.
   */
  update(clockTime: Time, options?: UpdateOptions): void {
    let receiveTime: Time | undefined;
    let precision: unknown = DEFAULT_PRECISION;
    let leap: unknown = 0;
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'object', options);
      receiveTime = options.receiveTime;
      precision = options.precision ?? DEFAULT_PRECISION;
      leap = options.leap ?? 0;
    }
    // Types are checked here; integer ranges natively, before the first byte is written.
    const clock = toTimespec(clockTime, 'clockTime');
    if (typeof precision !== 'number') throw invalidArgType('precision', 'number', precision);
    if (typeof leap !== 'number') throw invalidArgType('leap', 'number', leap);
    if (receiveTime === undefined) {
      this.#segment.writeNow(clock.sec, clock.nsec, leap, precision);
    } else {
      const receive = toTimespec(receiveTime, 'receiveTime');
      this.#segment.write(clock.sec, clock.nsec, receive.sec, receive.nsec, leap, precision);
    }
  }

  /** A consistent copy of every field; never clears `valid`, so readers lose nothing. */
  snapshot(): ShmSnapshot {
    return { unit: this.unit, ...this.#segment.snapshot() };
  }

  /** IPC_STAT: size, permissions, owner, attached processes, removal mark. */
  stat(): ShmStat {
    return this.#call(() => this.#segment.stat());
  }

  /**
   * Marks the segment for removal (IPC_RMID); it goes when the last process detaches. Refused (ERR_SHM_READ_ONLY) on a
   * read-only handle.
   */
  remove(): void {
    this.#call(() => this.#segment.remove());
  }

  /** shmdt. Idempotent; afterwards every access throws ERR_SHM_DETACHED. */
  detach(): void {
    this.#call(() => this.#segment.detach());
  }
}

/**
 * IPC_STAT of the unit's segment without attaching to it, whatever its size: for a
 * diagnosis of a segment that cannot be attached. Throws ENOENT (with `code`) if absent.
 */
export function statUnit(unit: number): ShmStat & { shmId: number } {
  try {
    return nativeAddon().statUnit(unit);
  } catch (error) {
    throw explainSystemError(error, (code) => errorHint(code, unit));
  }
}

/**
 * The shmid the unit's key names now, or undefined if no segment has it: by key lookup
 * alone, which needs no permission on the segment. A writer that can no longer IPC_STAT
 * its segment (privileges dropped on a 0600 segment) compares this with its own shmId to
 * see a removal (ipcrm) or a segment made anew.
 */
export function currentShmId(unit: number): number | undefined {
  try {
    return nativeAddon().unitShmId(unit);
  } catch (error) {
    const explained = explainSystemError(error, (code) => errorHint(code, unit));
    if ((explained as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw explained;
  }
}

/**
 * Why a root-only unit (0-1) cannot be trusted, or undefined: ntpd and gpsd create them
 * 0600 owned by root, so another owner or a world-writable mode lets a local user steer
 * the time daemon.
 */
export function rootOnlyUnitConcern(unit: number, stat: Pick<ShmStat, 'uid' | 'perm'>): string | undefined {
  if (!isRootOnlyUnit(unit)) return undefined;
  const problems = [
    ...(stat.uid !== 0 ? [`owned by uid ${stat.uid}, not root`] : []),
    ...((stat.perm & 0o002) !== 0 ? [`world-writable (0${stat.perm.toString(8)})`] : []),
  ];
  if (problems.length === 0) return undefined;
  return (
    `unit ${unit} is root-only by convention but its segment is ${problems.join(' and ')}: anyone who can ` +
    `write it steers the time daemon; remove it (\`ipcrm -M ${keyText(unit)}\`) and let root recreate it 0600`
  );
}

/** The struct as compiled on this platform (size, field offsets and C ranges), read from the addon on first use. */
export const layout: NativeLayout = addonLayout('layout', ['size', 'timeTSize', 'fields', 'dummyOffset', 'keyBase']);
