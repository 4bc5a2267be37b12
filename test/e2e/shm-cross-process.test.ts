// Cross-process: what the addon writes, an independent C reader (test/e2e/c/shm_read.c, the
// struct as ntpd declares it) reads field by field; what a C writer doing gpsd's
// ntp_write puts in, NtpdShm reads back; a segment of another size made in C; and the
// addon's layout against the platform's struct as a C compiler lays it out.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NtpdShm, keyOfUnit, layout, statUnit } from '../../src/shm.js';
import { cBuild, type CBuild } from '../helpers/cc.js';
import { caught } from '../helpers/caught.js';
import { removeSegment } from '../helpers/segments.js';
import { units } from '../helpers/units.js';

const UNIT_ADDON_WRITES = units.crossAddonWrites;
const UNIT_C_WRITES = units.crossCWrites;
const UNIT_EINVAL = units.shmWrongSize;

let c: CBuild;
let reader: string;
let writer: string;
beforeAll(() => {
  c = cBuild();
  reader = c.compile('shm_read.c');
  writer = c.compile('shm_write.c');
});
afterAll(() => c.cleanup());
afterEach(() => {
  removeSegment(UNIT_ADDON_WRITES);
  removeSegment(UNIT_C_WRITES);
  // NtpdShm cannot attach a segment of the wrong size: remove it by key.
  spawnSync('ipcrm', ['-M', String(keyOfUnit(UNIT_EINVAL))], { stdio: 'ignore' });
});

function readInC(unit: number): Record<string, number> {
  return JSON.parse(execFileSync(reader, [String(unit)], { encoding: 'utf8' })) as Record<string, number>;
}

describe('cross-process', () => {
  it('a C reader sees every field the addon wrote', () => {
    const shm = new NtpdShm(UNIT_ADDON_WRITES);
    try {
      shm.nsamples = 5;
      shm.update(
        { sec: 1_700_000_123, nsec: 987_654_321 },
        { receiveTime: { sec: 1_700_000_122, nsec: 1_234_567 }, precision: -13, leap: 2 },
      );
      const { unit: _unit, consistent, ...fields } = shm.snapshot();
      expect(consistent).toBe(true);
      const inC = readInC(UNIT_ADDON_WRITES);
      expect(inC).toEqual(fields);
      expect(inC).toEqual({
        mode: 1,
        count: 2,
        clockTimeStampSec: 1_700_000_123,
        clockTimeStampUSec: 987_654,
        clockTimeStampNSec: 987_654_321,
        receiveTimeStampSec: 1_700_000_122,
        receiveTimeStampUSec: 1_234,
        receiveTimeStampNSec: 1_234_567,
        leap: 2,
        precision: -13,
        nsamples: 5,
        valid: 1,
      });
      // Single fields land where the C struct has them too.
      shm.valid = 0;
      shm.clockTimeStampSec = 2 ** 33; // needs a 64-bit time_t: the platform's own
      shm.receiveTimeStampNSec = 4_294_967_295;
      expect(readInC(UNIT_ADDON_WRITES)).toMatchObject({
        valid: 0,
        clockTimeStampSec: 2 ** 33,
        receiveTimeStampNSec: 4_294_967_295,
      });
    } finally {
      shm.detach();
    }
  });

  it('NtpdShm reads what a C writer (gpsd ntp_write) put in, through snapshot() and the accessors', () => {
    const shm = new NtpdShm(UNIT_C_WRITES);
    try {
      execFileSync(writer, [String(UNIT_C_WRITES), '1700000456', '500000999', '1700000455', '999999', '1', '-7']);
      const expected = {
        mode: 1,
        count: 2,
        clockTimeStampSec: 1_700_000_456,
        clockTimeStampUSec: 500_000,
        clockTimeStampNSec: 500_000_999,
        receiveTimeStampSec: 1_700_000_455,
        receiveTimeStampUSec: 999,
        receiveTimeStampNSec: 999_999,
        leap: 1,
        precision: -7,
        nsamples: 3,
        valid: 1,
      };
      expect(shm.snapshot()).toEqual({ unit: UNIT_C_WRITES, consistent: true, ...expected });
      for (const [name, value] of Object.entries(expected))
        expect(shm[name as keyof typeof expected], name).toBe(value);
      expect(shm.clockTime).toEqual({ sec: 1_700_000_456, nsec: 500_000_999 });
      expect(shm.receiveTime).toEqual({ sec: 1_700_000_455, nsec: 999_999 });
      expect(shm.clockTimeStamp).toBeCloseTo(1_700_000_456.500001, 6);
      // A second C sample: count moves on from where it was.
      execFileSync(writer, [String(UNIT_C_WRITES), '1700000457', '0', '1700000456', '0', '0', '-20']);
      expect(shm.snapshot()).toMatchObject({
        count: 4,
        clockTimeStampSec: 1_700_000_457,
        clockTimeStampNSec: 0,
        leap: 0,
        precision: -20,
      });
    } finally {
      shm.detach();
    }
  });
});

describe('a segment of another size', () => {
  it.each([80, 97, 4096])(
    'an existing segment of %i bytes (not sizeof(struct shmTime)) is EINVAL with the ipcrm hint, nothing written',
    (size) => {
      spawnSync('ipcrm', ['-M', String(keyOfUnit(UNIT_EINVAL))], { stdio: 'ignore' });
      execFileSync(c.compile('shm_create.c'), [String(UNIT_EINVAL), String(size), '666']);
      const key = `0x${keyOfUnit(UNIT_EINVAL).toString(16)}`;
      for (const options of [{ create: true }, { create: false }, { create: false, readOnly: true }]) {
        const error = caught(() => new NtpdShm({ unit: UNIT_EINVAL, ...options }));
        expect(error).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'shmget' });
        expect(error.message).toContain(`ipcrm -M ${key}`);
        expect(error.message).toMatch(new RegExp(`not ${layout.size} bytes.*32/64-bit`));
      }
      // Seen without attaching: the size is there for a diagnosis, and nobody attached.
      expect(statUnit(UNIT_EINVAL)).toMatchObject({ size, nattch: 0, perm: 0o666 });
    },
  );

  it('is the platform struct shmTime: size and offsets agree with a C program using offsetof', () => {
    const reference = JSON.parse(execFileSync(c.compile('layout.c'), { encoding: 'utf8' })) as {
      size: number;
      timeTSize: number;
      offsets: Record<string, number>;
    };
    expect(layout.size).toBe(reference.size);
    expect(layout.timeTSize).toBe(reference.timeTSize);
    expect(layout.dummyOffset).toBe(reference.offsets.dummy);
    expect(Object.fromEntries(layout.fields.map((field) => [field.name, field.offset]))).toEqual(
      Object.fromEntries(Object.entries(reference.offsets).filter(([name]) => name !== 'dummy')),
    );
    if (reference.timeTSize === 8) {
      // x86_64 and other LP64 ABIs (ntpd's struct with a 64-bit time_t)
      expect(reference.size).toBe(96);
      expect(reference.offsets).toEqual({
        mode: 0,
        count: 4,
        clockTimeStampSec: 8,
        clockTimeStampUSec: 16,
        receiveTimeStampSec: 24,
        receiveTimeStampUSec: 32,
        leap: 36,
        precision: 40,
        nsamples: 44,
        valid: 48,
        clockTimeStampNSec: 52,
        receiveTimeStampNSec: 56,
        dummy: 60,
      });
    }
  });
});
