// The NtpdShm contract: constructor, fields, timestamps, update(), snapshot(),
// detach(), read-only attach, properties, and the real syscall failures with their hints.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { inspect } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { realtime } from '../../src/clock.js';
import {
  NtpdShm,
  defaultPerm,
  type NtpdShmOptions,
  errorHint,
  layout,
  currentShmId,
  rootOnlyUnitConcern,
  statUnit,
  type ShmSnapshot,
} from '../../src/shm.js';
import { compare, type Timespec } from '../../src/time.js';
import { removeSegment } from '../helpers/segments.js';
import { caught } from '../helpers/caught.js';
import { e2eRequired } from '../helpers/tools.js';
import { units } from '../helpers/units.js';

const UNITS = [units.shm, units.shmPerm, units.shmEacces, units.shmEnoent, units.shmReadOnly];

function cleanUp(): void {
  UNITS.forEach(removeSegment);
}

// Every segment a test attaches is detached after it, whatever happened.
const opened: NtpdShm[] = [];
function open(options: number | NtpdShmOptions): NtpdShm {
  const shm = new NtpdShm(options);
  opened.push(shm);
  return shm;
}

beforeAll(cleanUp);
afterEach(() => {
  for (const shm of opened.splice(0)) shm.detach();
  cleanUp();
});

const FIELDS = [
  'mode',
  'count',
  'clockTimeStampSec',
  'clockTimeStampUSec',
  'clockTimeStampNSec',
  'receiveTimeStampSec',
  'receiveTimeStampUSec',
  'receiveTimeStampNSec',
  'leap',
  'precision',
  'nsamples',
  'valid',
] as const;
type FieldName = (typeof FIELDS)[number];

/** Runs `action`, which must throw `type` (and `code`), and checks the segment did not change. */
function expectRejected(
  shm: NtpdShm,
  action: () => void,
  type: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor,
  code?: string,
): void {
  const before: ShmSnapshot = shm.snapshot();
  const error = caught(action);
  expect(error).toBeInstanceOf(type);
  if (code !== undefined) expect(error.code).toBe(code);
  expect(shm.snapshot()).toEqual(before);
}

describe('constructor', () => {
  it('creates a missing segment the way gpsd does, with the convention permissions', () => {
    const shm = open(units.shm);
    expect(shm.created).toBe(true);
    expect(shm.stat().perm).toBe(0o666);
    expect(shm.snapshot()).toMatchObject({ mode: 1, count: 0, valid: 0, leap: 3, precision: -20, nsamples: 3 });
    const again = open({ unit: units.shm });
    expect(again.created).toBe(false);
    expect(again.shmId).toBe(shm.shmId);
  });

  it('uses perm for a segment it creates, and 0600 by default for units 0-1 only', () => {
    expect(open({ unit: units.shmPerm, perm: 0o640 }).stat().perm).toBe(0o640);
    expect([defaultPerm(0), defaultPerm(1), defaultPerm(2), defaultPerm(255)]).toEqual([0o600, 0o600, 0o666, 0o666]);
  });

  it('rejects units outside 0..255 with RangeError and non-numbers with TypeError', () => {
    for (const unit of [-1, 256, 1.5, Number.NaN, Infinity]) {
      expect(() => new NtpdShm(unit), String(unit)).toThrow(RangeError);
      expect(caught(() => new NtpdShm({ unit })).code).toBe('ERR_OUT_OF_RANGE');
    }
    for (const unit of ['2', null, undefined, {}, 2n]) {
      const error = caught(() => new NtpdShm({ unit: unit as number }));
      expect(error, inspect(unit)).toBeInstanceOf(TypeError);
      expect(error.code).toBe('ERR_INVALID_ARG_TYPE');
    }
    expect(() => new NtpdShm({ unit: units.shm, create: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => new NtpdShm({ unit: units.shm, perm: 0o1000 })).toThrow(RangeError);
  });

  it('create:false on a missing segment throws ENOENT from shmget and creates nothing', () => {
    const error = caught(() => new NtpdShm({ unit: units.shmEnoent, create: false }));
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'shmget' });
    expect(error.message).toContain(`no segment exists for unit ${units.shmEnoent}`);
    expect(caught(() => new NtpdShm({ unit: units.shmEnoent, create: false, readOnly: true })).code).toBe('ENOENT');
    // readOnly alone never creates either
    expect(caught(() => new NtpdShm({ unit: units.shmEnoent, readOnly: true })).code).toBe('ENOENT');
  });

  it('units 0-1 are a concern when not owned by root or world-writable; units >= 2 never', () => {
    expect(rootOnlyUnitConcern(0, { uid: 0, perm: 0o600 })).toBeUndefined();
    expect(rootOnlyUnitConcern(1, { uid: 1000, perm: 0o600 })).toMatch(
      /owned by uid 1000, not root.*ipcrm -M 0x4e545031/,
    );
    expect(rootOnlyUnitConcern(0, { uid: 0, perm: 0o666 })).toMatch(/world-writable \(0666\)/);
    expect(rootOnlyUnitConcern(2, { uid: 1000, perm: 0o666 })).toBeUndefined();
  });

  it('currentShmId follows the key: ours while attached, undefined once removed', () => {
    const shm = open(units.shm);
    expect(currentShmId(units.shm)).toBe(shm.shmId);
    shm.remove();
    expect(currentShmId(units.shm)).toBeUndefined();
    expect(currentShmId(units.shmEnoent)).toBeUndefined();
  });

  it('statUnit of a missing unit is ENOENT with the hint; of ours, what stat() says', () => {
    expect(caught(() => statUnit(units.shmEnoent))).toMatchObject({ code: 'ENOENT', syscall: 'shmget' });
    const shm = open(units.shm);
    expect(statUnit(units.shm)).toEqual({ ...shm.stat(), shmId: shm.shmId });
  });

  it('a non-root process on a 0600 root segment gets EACCES with the permission hint', (context) => {
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
    const reason =
      process.getuid?.() !== 0
        ? 'needs root to run a child as nobody'
        : setpriv === undefined
          ? 'setpriv not found (util-linux)'
          : undefined;
    if (reason !== undefined || setpriv === undefined) {
      if (e2eRequired) throw new Error(`HTNTP_E2E=required: ${reason}`);
      return context.skip(reason);
    }
    const shm = new NtpdShm({ unit: units.shmEacces, perm: 0o600 });
    shm.detach();
    const script = `
      import { NtpdShm } from ${JSON.stringify(new URL('../../src/shm.js', import.meta.url).pathname)};
      try { new NtpdShm({ unit: ${units.shmEacces}, create: false }); console.log('{"attached":true}'); }
      catch ({ code, errno, syscall, message }) { console.log(JSON.stringify({ code, errno, syscall, message })); }`;
    const output = execFileSync(
      setpriv,
      [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        '--',
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        script,
      ],
      { encoding: 'utf8', cwd: new URL('../..', import.meta.url).pathname, env: { ...process.env, HOME: '/tmp' } },
    );
    const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    expect(result).toMatchObject({ code: 'EACCES', errno: -13 });
    expect(['shmget', 'shmat']).toContain(result.syscall);
    expect(result.message).toMatch(/run as root.*permissions/);
    // The hint for units 0-1 names the root-only convention and the way out.
    expect(errorHint('EACCES', 0)).toMatch(/root-only by convention.*run as root.*unit >= 2/);
    expect(errorHint('EINVAL', 2)).toContain('ipcrm -M 0x4e545032');
  });

  it('exposes unit, key, shmId and size as IPC_STAT and ipcs see them', () => {
    const shm = open(units.shm);
    expect(shm.unit).toBe(units.shm);
    expect(shm.key).toBe(0x4e545030 + units.shm);
    expect(shm.size).toBe(layout.size);
    expect(shm.stat()).toMatchObject({ size: layout.size, uid: process.getuid?.(), cpid: process.pid, removed: false });
    expect(shm.stat().nattch).toBeGreaterThanOrEqual(1);
    const ipcs = execFileSync('ipcs', ['-m'], { encoding: 'utf8' });
    const row = ipcs.split('\n').find((line) => line.startsWith(`0x${shm.key.toString(16)} `));
    expect(row?.split(/\s+/)[1]).toBe(String(shm.shmId));
    for (const name of ['unit', 'key', 'shmId', 'size'] as const) {
      expect(() => Object.assign(shm, { [name]: 1 })).toThrow(TypeError); // readonly at runtime too
    }
  });
});

describe('fields under their C names', () => {
  const valid: Record<FieldName, number[]> = {
    mode: [0, 1, -2147483648, 2147483647],
    count: [0, 7, -2147483648, 2147483647],
    clockTimeStampSec: [0, 1_700_000_000, 2 ** 40, -5],
    clockTimeStampUSec: [0, 999_999, -1],
    clockTimeStampNSec: [0, 999_999_999, 4294967295],
    receiveTimeStampSec: [0, 1_700_000_001],
    receiveTimeStampUSec: [123_456],
    receiveTimeStampNSec: [123_456_789, 4294967295],
    leap: [0, 1, 2, 3],
    precision: [-20, -1, 0, 2147483647, -2147483648],
    nsamples: [3, 0],
    valid: [0, 1],
  };
  const outOfRange: Record<FieldName, number[]> = {
    mode: [2 ** 31, -(2 ** 31) - 1],
    count: [2 ** 31],
    clockTimeStampSec: [2 ** 53, -(2 ** 53)],
    clockTimeStampUSec: [2 ** 31],
    clockTimeStampNSec: [-1, 2 ** 32],
    receiveTimeStampSec: [2 ** 53],
    receiveTimeStampUSec: [-(2 ** 31) - 1],
    receiveTimeStampNSec: [-1, 2 ** 32],
    leap: [-1, 4],
    precision: [2 ** 31, -(2 ** 31) - 1],
    nsamples: [2 ** 31],
    valid: [2 ** 31],
  };

  it('reads back every value written, each field on its own', () => {
    const shm = open(units.shm);
    for (const name of FIELDS) {
      for (const value of valid[name]) {
        shm[name] = value;
        expect(shm[name], `${name} = ${value}`).toBe(value);
        expect(shm.snapshot()[name]).toBe(value);
      }
    }
  });

  it('rejects non-integers, out-of-range values and non-numbers without writing', () => {
    const shm = open(units.shm);
    for (const name of FIELDS) {
      shm[name] = valid[name][0] ?? 0;
      for (const value of [...outOfRange[name], 1.5, Number.NaN, Infinity]) {
        expectRejected(shm, () => (shm[name] = value), RangeError, 'ERR_OUT_OF_RANGE');
      }
      for (const value of ['1', null, undefined, true, {}]) {
        expectRejected(shm, () => (shm[name] = value as number), TypeError, 'ERR_INVALID_ARG_TYPE');
      }
    }
    expect(caught(() => (shm.leap = 4)).message).toContain('"leap"');
  });

  it('clockTimeStamp/receiveTimeStamp: float seconds over Sec, USec (truncated) and NSec', () => {
    const shm = open(units.shm);
    shm.clockTimeStamp = 1_700_000_000.25;
    shm.receiveTimeStamp = 1_700_000_000.0000019;
    expect(shm.snapshot()).toMatchObject({
      clockTimeStampSec: 1_700_000_000,
      clockTimeStampUSec: 250_000,
      clockTimeStampNSec: 250_000_000,
      receiveTimeStampSec: 1_700_000_000,
      receiveTimeStampUSec: 1,
    });
    // 1.7e9 as a double has ~240 ns steps: the float API is not exact (use { sec, nsec }).
    expect(Math.abs(shm.receiveTimeStampNSec - 1_900)).toBeLessThanOrEqual(240);
    expect(shm.clockTimeStamp).toBe(1_700_000_000.25);
    expect(shm.receiveTimeStamp).toBeCloseTo(1_700_000_000.0000019, 6);
    for (const value of [-1, Number.NaN, Infinity]) {
      expectRejected(shm, () => (shm.clockTimeStamp = value), RangeError);
      expectRejected(shm, () => (shm.receiveTimeStamp = value), RangeError);
    }
    expectRejected(shm, () => (shm.clockTimeStamp = '1' as unknown as number), TypeError);
    // A USec that disagrees with NSec: the reader's rule (ntpd, chrony) says use USec.
    shm.clockTimeStampUSec = 7;
    expect(shm.clockTime).toEqual({ sec: 1_700_000_000, nsec: 7_000 });
  });
});

describe('update()', () => {
  it('writes one sample with float times: count += 2, mode 1, valid 1, USec truncated', () => {
    const shm = open(units.shm);
    shm.count = 40;
    shm.mode = 0;
    shm.update(1_700_000_000.25, { receiveTime: 1_700_000_000.125, precision: -10, leap: 1 });
    expect(shm.snapshot()).toMatchObject({
      mode: 1,
      count: 42,
      valid: 1,
      clockTimeStampSec: 1_700_000_000,
      clockTimeStampUSec: 250_000,
      clockTimeStampNSec: 250_000_000,
      receiveTimeStampSec: 1_700_000_000,
      receiveTimeStampUSec: 125_000,
      receiveTimeStampNSec: 125_000_000,
      leap: 1,
      precision: -10,
      nsamples: 3,
    });
  });

  it('writes {sec, nsec} exactly, USec truncated (never rounded), defaults precision -20 and leap 0', () => {
    const shm = open(units.shm);
    shm.update({ sec: 1_700_000_001, nsec: 999_999_999 }, { receiveTime: { sec: 1_700_000_000, nsec: 1_999 } });
    expect(shm.snapshot()).toMatchObject({
      clockTimeStampSec: 1_700_000_001,
      clockTimeStampUSec: 999_999,
      clockTimeStampNSec: 999_999_999,
      receiveTimeStampUSec: 1,
      receiveTimeStampNSec: 1_999,
      leap: 0,
      precision: -20,
    });
    expect(shm.clockTime).toEqual({ sec: 1_700_000_001, nsec: 999_999_999 });
  });

  it('receiveTime defaults to CLOCK_REALTIME read inside the call', () => {
    const shm = open(units.shm);
    const before = realtime();
    shm.update({ sec: 1, nsec: 0 });
    const after = realtime();
    const receive: Timespec = shm.receiveTime;
    expect(compare(receive, before)).toBeGreaterThanOrEqual(0);
    expect(compare(receive, after)).toBeLessThanOrEqual(0);
  });

  it('count wraps at INT_MAX as in C', () => {
    const shm = open(units.shm);
    shm.count = 2147483647;
    shm.update(1);
    expect(shm.count).toBe(-2147483647);
  });

  it('any invalid argument throws before anything is written', () => {
    const shm = open(units.shm);
    shm.update(1_700_000_000, { receiveTime: 1_699_999_999 });
    const good = { sec: 1_700_000_000, nsec: 0 };
    const rangeErrors: [unknown, unknown][] = [
      [Number.NaN, undefined],
      [Infinity, undefined],
      [-1, undefined],
      [{ sec: 1, nsec: 1e9 }, undefined],
      [{ sec: 1, nsec: -1 }, undefined],
      [{ sec: -1, nsec: 0 }, undefined],
      [{ sec: 1.5, nsec: 0 }, undefined],
      [{ sec: 1, nsec: 0.5 }, undefined],
      [good, { receiveTime: Number.NaN }],
      [good, { receiveTime: -0.5 }],
      [good, { receiveTime: { sec: 1, nsec: 1e9 } }],
      [good, { precision: 1.5 }],
      [good, { precision: 2 ** 31 }],
      [good, { precision: Number.NaN }],
      [good, { leap: 4 }],
      [good, { leap: -1 }],
      [good, { leap: 0.5 }],
      [good, { receiveTime: 1, leap: 4 }],
    ];
    for (const [clock, options] of rangeErrors) {
      expectRejected(shm, () => shm.update(clock as Timespec, options as never), RangeError, 'ERR_OUT_OF_RANGE');
    }
    const typeErrors: [unknown, unknown][] = [
      ['1700000000', undefined],
      [null, undefined],
      [undefined, undefined],
      [{ sec: 1 }, undefined],
      [{ sec: '1', nsec: 0 }, undefined],
      [1n, undefined],
      [good, 'options'],
      [good, null],
      [good, { receiveTime: '1' }],
      [good, { receiveTime: null }],
      [good, { precision: '-20' }],
      [good, { leap: '1' }],
      [good, { leap: true }],
    ];
    for (const [clock, options] of typeErrors) {
      expectRejected(shm, () => shm.update(clock as Timespec, options as never), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
  });
});

describe('snapshot(), detach(), read-only', () => {
  it('snapshot() is consistent and never clears valid', () => {
    const shm = open(units.shm);
    shm.update(1_700_000_000.5);
    const first = shm.snapshot();
    expect(first).toMatchObject({ unit: units.shm, valid: 1, consistent: true, count: 2 });
    expect(shm.snapshot()).toEqual(first);
    expect(shm.valid).toBe(1);
  });

  it('detach() is idempotent and every access afterwards throws ERR_SHM_DETACHED', () => {
    const shm = new NtpdShm(units.shm);
    shm.detach();
    expect(shm.attached).toBe(false);
    expect(() => shm.detach()).not.toThrow();
    const accesses: [string, () => unknown][] = [
      ['update', () => shm.update(1)],
      ['update receive', () => shm.update(1, { receiveTime: 1 })],
      ['snapshot', () => shm.snapshot()],
      ['stat', () => shm.stat()],
      ['remove', () => shm.remove()],
      ['clockTimeStamp', () => shm.clockTimeStamp],
      ['set clockTimeStamp', () => (shm.clockTimeStamp = 1)],
      ['receiveTime', () => shm.receiveTime],
      ...FIELDS.flatMap((name): [string, () => unknown][] => [
        [name, () => shm[name]],
        [`set ${name}`, () => (shm[name] = 0)],
      ]),
    ];
    for (const [name, access] of accesses) {
      const error = caught(access);
      expect(error.code, name).toBe('ERR_SHM_DETACHED');
      expect(error.message).toContain(`unit ${units.shm}`);
    }
    // Properties captured at attach time stay readable.
    expect([shm.unit, shm.size]).toEqual([units.shm, layout.size]);
  });

  it('a read-only attach reads everything and refuses every write', () => {
    const writer = open(units.shmReadOnly);
    const reader = open({ unit: units.shmReadOnly, create: false, readOnly: true });
    writer.update(1_700_000_000.5, { receiveTime: 1_700_000_000 });
    expect(reader.readOnly).toBe(true);
    expect(reader.snapshot()).toEqual(writer.snapshot());
    expect(reader.clockTimeStamp).toBe(1_700_000_000.5);
    for (const action of [
      () => (reader.valid = 0),
      () => reader.update(1),
      () => (reader.clockTimeStamp = 2),
      () => reader.update(1, { receiveTime: 1 }),
    ]) {
      expectRejected(reader, action, Error, 'ERR_SHM_READ_ONLY');
    }
    expect(writer.valid).toBe(1);
  });

  it('a read-only handle cannot remove the segment', () => {
    const writer = open(units.shmReadOnly);
    const reader = open({ unit: units.shmReadOnly, create: false, readOnly: true });
    expectRejected(reader, () => reader.remove(), Error, 'ERR_SHM_READ_ONLY');
    expect(writer.stat().removed).toBe(false);
  });
});
