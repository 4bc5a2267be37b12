// The generated refclock lines are accepted by the real parsers: option sets like
// ntp.conf.example's plus the rarer options, in chronyd (which
// exits on a bad refclock line) and ntpsec's ntpd (which the harness fails on any
// CONFIG syntax error), the classic `server 127.127.28.N` + `fudge` form included.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { refclockLines, type RefclockConfigOptions } from '../../src/refclock-config.js';
import { NtpdShm } from '../../src/shm.js';
import { describeE2e, removeSegment, startChronyd, startNtpd, waitFor } from '../helpers/daemons.js';
import { units } from '../helpers/units.js';

const UNITS = [units.configFirst, units.configSecond, units.configThird];

const OPTION_SETS: Omit<RefclockConfigOptions, 'daemon' | 'unit'>[] = [
  { refid: 'FIX', noselect: true, stratum: 10 },
  { refid: 'HTTP', prefer: true, offset: -0.125, poll: 5 },
  { refid: 'GPS', perm: 0o600, offset: 1e-7 },
];

const stops: (() => Promise<unknown>)[] = [];
beforeEach(() => UNITS.forEach(removeSegment));
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
  UNITS.forEach(removeSegment);
});

/** The permissions of the segments the daemon created, once all three exist. */
async function createdPerms(): Promise<string[]> {
  return waitFor(
    () =>
      UNITS.map((unit) => {
        const shm = new NtpdShm({ unit, create: false, readOnly: true });
        try {
          return `0${shm.stat().perm.toString(8)}`;
        } finally {
          shm.detach();
        }
      }),
    { what: `the daemon to create segments ${UNITS.join(', ')}`, timeoutMs: 20_000 },
  );
}

function linesFor(daemon: RefclockConfigOptions['daemon'], extra: Partial<RefclockConfigOptions> = {}): string[] {
  return OPTION_SETS.flatMap((options, index) =>
    refclockLines({ daemon, unit: UNITS[index] ?? 0, ...options, ...extra }),
  );
}

describeE2e('generated lines in chronyd', ['chronyd'], () => {
  it(
    'chronyd starts with them, lists every refclock and creates the segments as asked',
    { timeout: 60_000 },
    async () => {
      const chronyd = await startChronyd({ lines: linesFor('chrony', { precision: -10, delay: 0.2 }) });
      stops.push(() => chronyd.stop());
      const names = (await chronyd.sources()).map((source) => source.name).sort();
      expect(names).toEqual(['FIX', 'GPS', 'HTTP']);
      // :perm=0666 where the ntpd convention wants it, chrony's own 0600 for the private one.
      expect(await createdPerms()).toEqual(['0666', '0666', '0600']);
    },
  );
});

describeE2e('generated lines in ntpsec ntpd', ['ntpd'], () => {
  it.each(['ntpsec', 'ntpd'] as const)(
    'ntpd takes the %s form: no syntax error, segments with the asked permissions',
    { timeout: 60_000 },
    async (daemon) => {
      const lines = linesFor(daemon);
      const ntpd = await startNtpd({ lines });
      stops.push(() => ntpd.stop());
      expect(ntpd.process.exit()).toBeUndefined();
      // Every refclock came up and created its segment: 0666 above unit 1, `mode 1` = 0600.
      expect(await createdPerms()).toEqual(['0666', '0666', '0600']);
    },
  );
});
