// `htntp config --pps`: the paired NMEA + PPS lines, read by the real daemons. There is
// no PPS device here, so each daemon shows it parsed every line by reaching the point
// where it opens /dev/pps0: chronyd exits with "Could not open /dev/pps0" (a bad
// refclock line would stop it earlier with a parse error), ntpd logs no syntax error,
// brings up the SHM unit (its segment appears) and logs "refclock_pps: /dev/pps0 open failed".
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { refclockLines, type RefclockDaemon } from '../../src/refclock-config.js';
import { NtpdShm } from '../../src/shm.js';
import { describeE2e, findTool, removeSegment, startNtpd, waitFor } from '../helpers/daemons.js';
import { htntpLines } from '../helpers/cli.js';
import { flags } from '../helpers/process.js';
import { units } from '../helpers/units.js';

const UNIT = units.gpsPpsConfig;
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
  removeSegment(UNIT);
});

function cliLines(daemon: RefclockDaemon): Promise<string[]> {
  return htntpLines(['config', ...flags({ daemon, unit: UNIT, refid: 'GPS', offset: '0.35', pps: '/dev/pps0' })]);
}

function segmentExists(): boolean {
  try {
    new NtpdShm({ unit: UNIT, create: false, readOnly: true }).detach();
    return true;
  } catch {
    return false;
  }
}

describeE2e('PPS pairing in chronyd', ['chronyd'], () => {
  it('prints the NMEA line noselect, the pulse locked to it; chronyd parses both, stops at no pps0', async () => {
    const lines = await cliLines('chrony');
    expect(lines).toEqual([
      `refclock SHM ${UNIT}:perm=0666 refid GPS poll 4 dpoll 0 offset 0.35 delay 0.2 precision 0.125 noselect`,
      'refclock PPS /dev/pps0 lock GPS refid PPS prefer',
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'htntp-pps-chrony-'));
    stops.push(() => rm(dir, { recursive: true, force: true }));
    let runs = 0;
    const run = async (configLines: string[]): Promise<{ code: number | null; log: string }> => {
      runs += 1;
      const conf = join(dir, `chrony-${runs}.conf`);
      const log = join(dir, `chronyd-${runs}.log`);
      await writeFile(conf, `pidfile ${join(dir, 'chronyd.pid')}\n${configLines.join('\n')}\n`);
      // -Q: measure only, never set the clock, exit: no daemon left behind.
      const { spawnSync } = await import('node:child_process');
      const result = spawnSync(
        findTool('chronyd') as string,
        ['-x', '-Q', '-u', 'root', '-t', '3', '-f', conf, '-L', '0', '-l', log],
        { timeout: 20_000 },
      );
      return { code: result.status, log: await readFile(log, 'utf8').catch(() => '') };
    };
    const paired = await run(lines);
    expect(paired.code).not.toBe(0);
    expect(paired.log).toMatch(/Fatal error : Could not open \/dev\/pps0/);
    // The control: a refclock line chronyd cannot take fails differently.
    const broken = await run([lines[0] as string, 'refclock PPS /dev/pps0 lockk GPS refid PPS prefer']);
    expect(broken.log).toMatch(/Fatal error : .*(parse|Invalid)/i);
    expect(broken.log).not.toMatch(/Could not open \/dev\/pps0/);
  });
});

describeE2e('PPS pairing in ntpsec ntpd', ['ntpd'], () => {
  it.each(['ntpsec', 'ntpd'] as const)(
    'ntpd takes the %s form: no syntax error, the NMEA unit up and preferred, the PPS driver tries /dev/pps0',
    { timeout: 40_000 },
    async (daemon) => {
      const lines =
        daemon === 'ntpsec'
          ? await cliLines('ntpsec')
          : refclockLines({ daemon, unit: UNIT, refid: 'GPS', offset: 0.35, pps: '/dev/pps0' });
      expect(lines.join('\n')).toMatch(
        daemon === 'ntpsec'
          ? /refclock pps unit 0 refid PPS/
          : /server 127\.127\.22\.0 minpoll 4 maxpoll 4\nfudge 127\.127\.22\.0 refid PPS/,
      );
      expect(lines[0]).toMatch(/ prefer$/);
      const ntpd = await startNtpd({ lines });
      stops.push(() => ntpd.stop());
      expect(ntpd.process.exit()).toBeUndefined();
      await waitFor(() => (segmentExists() ? true : undefined), {
        what: `ntpd to create segment ${UNIT}`,
        timeoutMs: 10_000,
      });
      const log = await waitFor(
        async () => {
          const text = await ntpd.log();
          return /refclock_pps: \/dev\/pps0 open failed/.test(text) ? text : undefined;
        },
        { what: 'ntpd to report the PPS driver', timeoutMs: 10_000 },
      );
      expect(log).not.toMatch(/syntax error/);
    },
  );
});
