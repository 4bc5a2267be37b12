// ntpsec's ntpd restarting under a running feeder: the feeder carries on
// untouched and the new ntpd reads the same offset. ntpd runs in its own network
// namespace (the harness), SysV IPC is shared.
import { afterEach, expect, it } from 'vitest';
import { refclockLines } from '../../../src/refclock-config.js';
import {
  describeE2e,
  readSegment,
  removeSegment,
  startNtpd,
  waitFor,
  waitForCount,
  type Ntpd,
} from '../../helpers/daemons.js';
import { repoRoot, startHtntp } from '../../helpers/process.js';
import { units } from '../../helpers/units.js';

const UNIT = units.ntpdRestart;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  removeSegment(UNIT);
});

async function ntpd(): Promise<Ntpd> {
  const daemon = await startNtpd({ lines: refclockLines({ daemon: 'ntpsec', unit: UNIT, refid: 'SVC', poll: 1 }) });
  cleanups.push(() => daemon.stop());
  return daemon;
}

/** The first peerstats offset of our unit (reference - local, seconds). */
async function firstOffset(daemon: Ntpd): Promise<number> {
  return waitFor(async () => (await daemon.peerstats()).find((line) => line.unit === UNIT)?.offset, {
    what: `an ntpd peerstats line for SHM(${UNIT})`,
    timeoutMs: 30_000,
    intervalMs: 250,
  });
}

describeE2e('service with real ntpd (ntpsec)', ['ntpd'], () => {
  it('ntpd restarting does not disturb the feeder', async () => {
    const feeder = startHtntp(
      ['fixed', '--no-leapfile', '--unit', String(UNIT), '--interval', '0.5', '--offset', '0.5'],
      { cwd: repoRoot },
    );
    cleanups.push(() => feeder.stop('SIGTERM', 3_000));
    await feeder.waitForLine(new RegExp(`^info segment attached unit=${UNIT} `), { timeoutMs: 15_000 });

    const first = await ntpd();
    expect(Math.abs((await firstOffset(first)) - 0.5)).toBeLessThan(0.002);
    await first.stop();

    const countWithoutReader = readSegment(UNIT)?.count ?? 0;
    await waitForCount(UNIT, countWithoutReader + 4, 'samples while no reader runs');

    const second = await ntpd();
    expect(Math.abs((await firstOffset(second)) - 0.5)).toBeLessThan(0.002);
    expect(feeder.exit()).toBeUndefined();
    expect(feeder.stderrLines.filter((line) => !line.startsWith('info segment attached'))).toEqual([]);
  });
});
