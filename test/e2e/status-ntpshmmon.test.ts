// "Anything ntpshmmon shows, status shows too": gpsd's ntpshmmon and `htntp status --json`
// on the same segment report the same sample..
import { afterEach, beforeAll, expect, it } from 'vitest';
import type { UnitStatus } from '../../src/status.js';
import { realtime } from '../../src/clock.js';
import { NtpdShm } from '../../src/shm.js';
import { addSeconds } from '../../src/time.js';
import { describeE2e, removeSegment, runNtpshmmon } from '../helpers/daemons.js';
import { htntpBin, runCommand } from '../helpers/process.js';
import { units } from '../helpers/units.js';

const UNIT = units.statusNtpshmmon;

beforeAll(() => removeSegment(UNIT));
afterEach(() => removeSegment(UNIT));

describeE2e('status next to ntpshmmon', ['ntpshmmon'], () => {
  it('shows the unit, clock, receive, offset, leap and precision ntpshmmon shows', async () => {
    const shm = new NtpdShm(UNIT);
    try {
      const receive = realtime();
      shm.update(addSeconds(receive, -1.000123457), { receiveTime: receive, precision: -11, leap: 2 });
      const [sample] = await runNtpshmmon({ units: [UNIT], count: 1, seconds: 5 });
      expect(sample, 'ntpshmmon printed no sample for the unit').toBeDefined();
      if (sample === undefined) return;
      const [status] = JSON.parse(
        await runCommand(process.execPath, [htntpBin, 'status', '--unit', String(UNIT), '--json']),
      ) as UnitStatus[];
      expect(status).toBeDefined();
      expect(status).toMatchObject({
        unit: sample.unit,
        clock: sample.clock,
        receive: sample.receive,
        leap: sample.leap,
        precision: sample.precision,
        offset: sample.offset,
      });
      expect(status?.offset).toBe(-1.000123457);
      // Neither of them consumed the sample.
      expect(shm.valid).toBe(1);
      expect(status?.reader).toBe('waiting');
    } finally {
      shm.detach();
    }
  });
});
