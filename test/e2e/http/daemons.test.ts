// End to end: the real `htntp http` (bin/htntp.js) measuring local servers whose clocks are
// 0.75 s behind, publishing to SHM, read by chronyd -x and by ntpsec ntpd (each on its own
// unit: both consume samples). The daemons must see the known offset within the error
// htntp reports (plus 2 ms for their own filtering)..
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { refclockLines } from '../../../src/refclock-config.js';
import type { NtpdShm } from '../../../src/shm.js';
import {
  describeE2e,
  startChronyd,
  startNtpd,
  waitFor,
  waitForChronySelection,
  type PeerstatsLine,
} from '../../helpers/daemons.js';
import { exclusiveSegment } from '../../helpers/exclusive.js';
import { startHtntp, type RunningProcess } from '../../helpers/process.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';
import { units } from '../../helpers/units.js';

const UNITS = { chronyd: units.httpChronyd, ntpd: units.httpNtpd };
/** Server clock - local clock. */
const TRUTH = -0.75;
const DAEMON_SLACK = 0.002;

let servers: TimeServer[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
/** Units this process holds, so a concurrent run of this file waits instead of removing them under a reader. */
const held: NtpdShm[] = [];

beforeAll(async () => {
  servers = await startTimeServers([
    { offset: TRUTH },
    { offset: TRUTH, format: 'rfc850' },
    { offset: TRUTH },
    { offset: 12 },
  ]);
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  for (const segment of held.splice(0)) {
    segment.remove();
    segment.detach();
  }
});
afterAll(async () => {
  await closeAll(servers);
});

/** Starts `htntp http` on `unit` and returns it with the offset and error of its first estimate. */
async function startHttp(unit: number): Promise<{ feeder: RunningProcess; offset: number; error: number }> {
  held.push(await exclusiveSegment(unit));
  const feeder = startHtntp([
    'http',
    '--unit',
    String(unit),
    '--interval',
    '60',
    '--probes',
    '6',
    ...servers.map((server) => server.url),
  ]);
  cleanups.push(() => feeder.stop('SIGTERM', 3_000));
  const line = await feeder.waitForLine(/^info http estimate /, { stream: 'stderr', timeoutMs: 20_000 });
  const offset = Number(/ offset=(\S+)/.exec(line)?.[1]);
  const error = Number(/ error=(\S+)/.exec(line)?.[1]);
  expect(Math.abs(offset - TRUTH)).toBeLessThanOrEqual(error + 1e-6);
  return { feeder, offset, error };
}

describeE2e('htntp http read by chronyd -x', ['chronyd'], () => {
  it('chronyd sees the local clock 0.75 s fast, within the reported error', { timeout: 90_000 }, async () => {
    const unit = UNITS.chronyd;
    const { error } = await startHttp(unit);
    const chronyd = await startChronyd({
      lines: refclockLines({ daemon: 'chrony', unit, refid: 'HTTP', poll: 0, precision: -7 }),
    });
    cleanups.push(() => chronyd.stop());
    const tracking = await waitForChronySelection(chronyd, 'HTTP');
    console.info(
      `chronyd: System time ${tracking.systemTimeFast.toFixed(6)} s fast (truth ${-TRUTH}, htntp ` +
        `error ${error.toFixed(6)})`,
    );
    expect(Math.abs(tracking.systemTimeFast + TRUTH)).toBeLessThanOrEqual(error + DAEMON_SLACK);
  });
});

describeE2e('htntp http read by ntpsec ntpd', ['ntpd'], () => {
  it('ntpd peerstats show SHM offset -0.75 s within the reported error', { timeout: 90_000 }, async () => {
    const unit = UNITS.ntpd;
    const { error } = await startHttp(unit);
    const ntpd = await startNtpd({ lines: refclockLines({ daemon: 'ntpsec', unit, refid: 'HTTP', poll: 1 }) });
    cleanups.push(() => ntpd.stop());
    const lines: PeerstatsLine[] = await waitFor(
      async () => {
        const ours = (await ntpd.peerstats()).filter((line) => line.unit === unit);
        return ours.length >= 3 ? ours : undefined;
      },
      { what: `3 peerstats lines for SHM(${unit})`, timeoutMs: 60_000, intervalMs: 500 },
    );
    console.info(
      `ntpd peerstats SHM(${unit}) offsets: ${lines.map((line) => line.offset.toFixed(6)).join(' ')} (htntp ` +
        `error ${error.toFixed(6)})`,
    );
    for (const line of lines) expect(Math.abs(line.offset - TRUTH)).toBeLessThanOrEqual(error + DAEMON_SLACK);
  });
});
