// A measurement while the daemon htntp feeds slews CLOCK_REALTIME (chrony slews up to
// 83 ms/s): the estimate held on the raw clock must still cover the truth, and the
// reported offset must be against realtime as it reads at the end.
import { afterAll, describe, expect, it } from 'vitest';
import { readClockPair, monotonicRaw, realtime, type Clock } from '../../../src/clock.js';
import { measure } from '../../../src/sources/http/measure.js';
import { addSeconds, diffSeconds, type Timespec } from '../../../src/time.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';

const TRUTH = 0.3217; // server clock - true clock (the servers stamp from the real CLOCK_REALTIME)
const SLEW = 0.08; // seconds per second the fake realtime clock is slewed by

/** The real raw clock; realtime = the real one + SLEW x raw seconds since construction. */
class SlewingClock implements Clock {
  readonly rawStart = monotonicRaw();
  monotonicRaw(): Timespec {
    return monotonicRaw();
  }
  realtime(): Timespec {
    const raw = monotonicRaw();
    return addSeconds(realtime(), this.slewAt(raw));
  }
  /** What the slew has added to realtime by raw instant `raw`. */
  slewAt(raw: Timespec): number {
    return SLEW * diffSeconds(raw, this.rawStart);
  }
}

describe('a measurement while realtime is slewed', () => {
  let servers: TimeServer[] = [];
  afterAll(async () => {
    await closeAll(servers);
  });

  it('keeps the truth within the error and reports the offset against realtime at the end', async () => {
    servers = await startTimeServers([{ offset: TRUTH }, { offset: TRUTH }, { offset: TRUTH }]);
    const clock = new SlewingClock();
    const { result, estimate } = await measure(
      servers.map((server) => server.url),
      { probes: 8, clock },
    );
    expect(result.reason).toBeNull();
    if (!estimate || result.offset === null || result.error === null) throw new Error('no estimate');
    // The measurement spans seconds: the slew moved realtime by far more than the bound.
    expect(clock.slewAt(estimate.monotonicRaw)).toBeGreaterThan(0.3);
    expect(result.error).toBeLessThan(0.02);
    // The truth at the estimate's raw instant, from the real clocks read back to back.
    const now = readClockPair();
    const trueTime = addSeconds(now.realtime, TRUTH - diffSeconds(now.monotonicRaw, estimate.monotonicRaw));
    expect(Math.abs(diffSeconds(estimate.trueTime, trueTime))).toBeLessThanOrEqual(estimate.error + 1e-6);
    // Server - (slewed) realtime at the end: the slew so far is in it.
    const expectedOffset = TRUTH - clock.slewAt(estimate.monotonicRaw);
    expect(Math.abs(result.offset - expectedOffset)).toBeLessThanOrEqual(result.error + 1e-5);
  });
});
