// When the local clock counts as known to be right (gate.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { realtime, type ClockSync } from '../../../src/clock.js';
import { buildTime } from '../../../src/floor.js';
import { localClockVerdict } from '../../../src/sources/http/gate.js';

const now = realtime().sec;
const kernel = (state: ClockSync | Error) => ({
  clockFile: null,
  kernelClockForTests: (): ClockSync => {
    if (state instanceof Error) throw state;
    return state;
  },
});
const saved = process.env.HTNTP_ASSUME_SYNCHRONISED;
afterEach(() => {
  if (saved === undefined) delete process.env.HTNTP_ASSUME_SYNCHRONISED;
  else process.env.HTNTP_ASSUME_SYNCHRONISED = saved;
});

describe('localClockVerdict', () => {
  it('knows the clock when the kernel says synchronised and it reads after the floor', () => {
    expect(localClockVerdict(now, kernel({ synchronised: true, maxError: 0.02, status: 1 }))).toMatchObject({
      known: true,
      why: expect.stringMatching(/^the kernel says the local clock is synchronised/),
    });
  });

  it('does not while the kernel says unsynchronised, or its maxerror is past 16 s', () => {
    expect(localClockVerdict(now, kernel({ synchronised: false, maxError: 16, status: 0x41 }))).toMatchObject({
      known: false,
      why: "the kernel's clock state says unsynchronised",
    });
    expect(localClockVerdict(now, kernel({ synchronised: true, maxError: 20, status: 1 })).known).toBe(false);
  });

  it('does not before the floor, whatever the kernel says', () => {
    const before = (buildTime() ?? now) - 1;
    expect(localClockVerdict(before, kernel({ synchronised: true, maxError: 0.02, status: 1 }))).toMatchObject({
      known: false,
      why: expect.stringMatching(/^the local clock reads before the floor .*package build time/),
    });
  });

  it('keeps the strict rule when the kernel cannot be asked', () => {
    const refused = Object.assign(new Error('ntp_adjtime failed: Operation not permitted'), { code: 'EPERM' });
    expect(localClockVerdict(now, kernel(refused))).toMatchObject({
      known: true,
      why: expect.stringMatching(/cannot be read/),
    });
  });

  it('HTNTP_ASSUME_SYNCHRONISED=1 only makes it stricter', () => {
    process.env.HTNTP_ASSUME_SYNCHRONISED = '1';
    expect(localClockVerdict(now, kernel({ synchronised: false, maxError: 16, status: 0x41 })).known).toBe(true);
    // Before the floor the clock is wrong all the same.
    expect(
      localClockVerdict((buildTime() ?? now) - 1, kernel({ synchronised: false, maxError: 16, status: 0x41 })).known,
    ).toBe(false);
  });
});
