// clockSync() is the kernel's own answer: the same STA_* bits and maxerror that ntpsec's
// ntptime reads with ntp_adjtime(), and synchronised where the kernel says so.
import { expect, it } from 'vitest';
import { clockSync } from '../../src/clock.js';
import { describeE2e, findTool } from '../helpers/daemons.js';
import { runCommand } from '../helpers/process.js';

const STA_UNSYNC = 0x40;

describeE2e('clockSync() against ntptime', ['ntptime'], () => {
  it("reports ntptime's status bits and maxerror; synchronised is the kernel's own verdict", async () => {
    const before = clockSync();
    const reading = JSON.parse(await runCommand(findTool('ntptime') as string, ['-j'])) as Record<string, unknown>;
    const after = clockSync();
    // "0x2001 (PLL,NANO)": the bits and ntptime's own names for them.
    const [bits = '', names = ''] = String(reading.status).split(' ');
    const status = Number.parseInt(bits, 16);
    // The bits change only when a daemon changes them: the same before or after.
    expect([before.status, after.status]).toContain(status);
    expect(names.split(/[(),]/).includes('UNSYNC')).toBe((status & STA_UNSYNC) !== 0);
    // The kernel's own verdict as ntptime words it: TIME_ERROR ("ERROR") whenever the clock is
    // not synchronised, STA_UNSYNC included.
    expect(after.synchronised).toBe(reading['adjtime-status'] !== 'ERROR');
    // maxerror grows 500 µs/s between daemon updates; the calls are well under a second apart.
    const maxError = Number(reading['maximum-error']) / 1e6;
    expect(Math.abs(after.maxError - maxError)).toBeLessThan(0.1);
    expect(after.maxError).toBeGreaterThanOrEqual(0);
  });
});
