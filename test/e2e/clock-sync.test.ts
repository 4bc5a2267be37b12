// clockSync() is the kernel's own answer: the same STA_* bits and maxerror that ntpsec's
// ntptime reads with ntp_adjtime(), and the synchronised flag derived from them.
import { expect, it } from 'vitest';
import { clockSync } from '../../src/clock.js';
import { describeE2e, findTool } from '../helpers/daemons.js';
import { runCommand } from '../helpers/process.js';

const STA_UNSYNC = 0x40;
const TIME_ERROR = 5;

describeE2e('clockSync() against ntptime', ['ntptime'], () => {
  it("reports ntptime's status bits and maxerror; synchronised = no STA_UNSYNC and no TIME_ERROR", async () => {
    const before = clockSync();
    const reading = JSON.parse(await runCommand(findTool('ntptime') as string, ['-j'])) as Record<string, unknown>;
    const after = clockSync();
    const status = Number.parseInt(String(reading.status).split(' ')[0] ?? '', 16);
    // The bits change only when a daemon changes them: the same before or after.
    expect([before.status, after.status]).toContain(status);
    const code = Number(reading['adjtime-code']);
    expect(after.synchronised).toBe((after.status & STA_UNSYNC) === 0 && code !== TIME_ERROR);
    // maxerror grows 500 µs/s between daemon updates; the calls are well under a second apart.
    const maxError = Number(reading['maximum-error']) / 1e6;
    expect(Math.abs(after.maxError - maxError)).toBeLessThan(0.1);
    expect(after.maxError).toBeGreaterThanOrEqual(0);
  });
});
