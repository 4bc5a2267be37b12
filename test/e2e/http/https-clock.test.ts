// End to end with a wrong local clock: the real `htntp http` under libfaketime (which
// shifts the addon's clock_gettime and OpenSSL's time alike) measures HTTPS servers on the
// right time whose certificates are not valid at the shifted clock; and chronyd -x, on the
// same wrong clock, receives the estimate through SHM.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanupsAfterEach } from '../../helpers/cleanups.js';
import { clockSync } from '../../../src/clock.js';
import { refclockLines } from '../../../src/refclock-config.js';
import type { MeasurementResult } from '../../../src/sources/http/measure.js';
import { describeE2e, findTool, startChronyd, waitForChronySelection } from '../../helpers/daemons.js';
import { exclusiveSegment } from '../../helpers/exclusive.js';
import { units } from '../../helpers/units.js';
import { startHtntp, type RunningProcess } from '../../helpers/process.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';
import { makeTestPki, type TestPki } from '../../helpers/http/tls.js';

const UNIT = units.httpsWrongClockChronyd;
const DAY = 86_400;
const DAEMON_SLACK = 0.002;

let pki: TestPki;
let servers: TimeServer[] = [];
const cleanups = cleanupsAfterEach();

/** The environment of a process whose clock is `days` off (monotonic clocks untouched). */
function shiftedClock(days: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LD_PRELOAD: findTool('libfaketime') ?? '',
    FAKETIME: `${days >= 0 ? '+' : ''}${days}d`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}

beforeAll(async () => {
  // Valid from now for two days: 400 days behind it is not yet valid, 3 years ahead expired.
  pki = makeTestPki();
  const tls = { key: pki.key, cert: pki.cert };
  servers = await startTimeServers([{ tls }, { tls }, { tls }]);
});
afterAll(async () => {
  await closeAll(servers);
  pki.cleanup();
});

/** `htntp http --once --dry-run --json` against the three servers, its clock `days` off. */
function measureOnceShifted(days: number): RunningProcess {
  const args = ['http', '--once', '--dry-run', '--json', '--probes', '3', '--ca', pki.caPath];
  return startHtntp([...args, ...servers.map((server) => server.url)], { env: shiftedClock(days) });
}

describeE2e('htntp http with its clock far off (libfaketime)', ['libfaketime'], () => {
  it(
    "clock 400 days behind, before the floor: the servers' time is published, time-unverified, with one warning",
    { timeout: 60_000 },
    async () => {
      const days = -400;
      const run = measureOnceShifted(days);
      const exit = await run.exited;
      expect(exit, run.output()).toEqual({ code: 0, signal: null });
      const result = JSON.parse(run.stdoutLines.at(-1) ?? '') as MeasurementResult;
      // Server - local: the clock's shift, reversed.
      expect(Math.abs((result.offset ?? NaN) + days * DAY)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-3);
      expect(result.timeUnverified).toBe(true);
      expect(result.servers.map((server) => [server.status, server.tls])).toEqual(
        Array.from({ length: 3 }, () => ['ok', 'time-unverified']),
      );
      const warnings = run.stderrLines.filter((line) => /the local clock is (behind|ahead) by about/.test(line));
      expect(warnings, run.output()).toHaveLength(1);
    },
  );

  it(
    'clock 3 years ahead, after the floor: taken only while the kernel says unsynchronised',
    { timeout: 60_000 },
    async () => {
      const days = 3 * 365 + 1;
      // libfaketime moves the process's clock, not the kernel's word on it: what the gate reads.
      const synchronised = clockSync().synchronised;
      const run = measureOnceShifted(days);
      const exit = await run.exited;
      const result = JSON.parse(run.stdoutLines.at(-1) ?? '') as MeasurementResult;
      if (synchronised) {
        expect(exit.code, run.output()).toBe(1);
        expect(result.offset).toBeNull();
        for (const server of result.servers)
          expect(server.reason).toMatch(
            /^tls: CERT_HAS_EXPIRED certificate expired at the local clock, which is known to be right .*: refused/,
          );
      } else {
        expect(exit, run.output()).toEqual({ code: 0, signal: null });
        expect(Math.abs((result.offset ?? NaN) + days * DAY)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-3);
        expect(result.timeUnverified).toBe(true);
      }
    },
  );

  it('a wrong host name: still rejected', { timeout: 60_000 }, async () => {
    const wrongPki = makeTestPki({ subject: 'wrong.example', subjectAltName: 'DNS:wrong.example' });
    try {
      const [wrong] = await startTimeServers([{ tls: { key: wrongPki.key, cert: wrongPki.cert } }]);
      cleanups.push(() => closeAll(wrong ? [wrong] : []));
      const run = startHtntp(
        ['http', '--once', '--dry-run', '--json', '--probes', '1', '--ca', wrongPki.caPath, wrong?.url ?? ''],
        { env: shiftedClock(-400) },
      );
      const exit = await run.exited;
      expect(exit.code, run.output()).toBe(1);
      const result = JSON.parse(run.stdoutLines.at(-1) ?? '') as MeasurementResult;
      expect(result.servers[0]?.reason).toMatch(
        new RegExp(
          '^tls: IP_ADDRESS_MISMATCH certificate not valid at the local clock \\(CERT_NOT_YET_VALID\\) ' +
            "nor at the server's own Date",
        ),
      );
    } finally {
      wrongPki.cleanup();
    }
  });
});

describeE2e('chronyd -x fed by htntp, both on a clock a year behind', ['chronyd', 'libfaketime'], () => {
  it("chronyd sees its clock a year slow, within htntp's error", { timeout: 120_000 }, async () => {
    const env = shiftedClock(-365);
    const segment = await exclusiveSegment(UNIT);
    cleanups.push(async () => {
      segment.remove();
      segment.detach();
    });
    const feeder = startHtntp(
      [
        'http',
        '--unit',
        String(UNIT),
        '--interval',
        '60',
        '--probes',
        '4',
        '--ca',
        pki.caPath,
        ...servers.map((server) => server.url),
      ],
      { env },
    );
    cleanups.push(() => feeder.stop('SIGTERM', 3_000));
    const line = await feeder.waitForLine(/^info http estimate /, { stream: 'stderr', timeoutMs: 30_000 });
    const offset = Number(/ offset=(\S+)/.exec(line)?.[1]);
    const error = Number(/ error=(\S+)/.exec(line)?.[1]);
    expect(Math.abs(offset - 365 * DAY)).toBeLessThanOrEqual(error + 1e-3);
    const chronyd = await startChronyd({
      lines: refclockLines({ daemon: 'chrony', unit: UNIT, refid: 'HTTP', poll: 0, precision: -7 }),
      env,
    });
    cleanups.push(() => chronyd.stop());
    const tracking = await waitForChronySelection(chronyd, 'HTTP', 60_000);
    console.info(
      `chronyd on a clock 365 days behind: system time ${tracking.systemTimeFast.toFixed(6)} s fast, last ` +
        `offset ${tracking.lastOffset.toFixed(6)} s (htntp offset ${offset.toFixed(6)} ± ${error.toFixed(6)})`,
    );
    expect(Math.abs(tracking.systemTimeFast + 365 * DAY)).toBeLessThanOrEqual(error + DAEMON_SLACK);
  });
});
