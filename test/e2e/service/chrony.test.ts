// End to end with real chronyd instances (-x: they never touch the clock):
// - the reader restarting does not disturb the feeder;
// - the stratum hierarchy: htntp (fixed offset) -> chronyd serving NTP on a loopback port
//   (stratum 1 from the refclock) -> a second chronyd as its client shows the offset.
import { createSocket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { refclockLines } from '../../../src/refclock-config.js';
import {
  describeE2e,
  readSegment,
  removeSegment,
  startChronyd,
  waitFor,
  waitForCount,
  type Chronyd,
  type ChronyTracking,
} from '../../helpers/daemons.js';
import { repoRoot, startHtntp, type RunningProcess } from '../../helpers/process.js';
import { units } from '../../helpers/units.js';

const UNITS = { restart: units.chronyRestart, hierarchy: units.chronyHierarchy };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  Object.values(UNITS).forEach(removeSegment);
});

function startFeeder(unit: number, offset: number): RunningProcess {
  // htntp fixed, 4 samples a second: more than chrony's refclock filter needs per poll
  const child = startHtntp(
    ['fixed', '--no-leapfile', '--unit', String(unit), '--interval', '0.25', '--offset', String(offset)],
    { cwd: repoRoot },
  );
  cleanups.push(() => child.stop('SIGTERM', 3_000));
  return child;
}

async function chronyd(lines: string[], port = 0): Promise<Chronyd> {
  const daemon = await startChronyd({ lines, port });
  cleanups.push(() => daemon.stop());
  return daemon;
}

/** The refclock's last sample as chronyc sources reports it (offset > 0 = local clock ahead). */
async function refclockSample(daemon: Chronyd, refid: string): Promise<number | undefined> {
  const source = (await daemon.sources()).find((candidate) => candidate.name === refid);
  return source !== undefined && source.lastRx !== undefined && source.reach > 0 ? source.measuredOffset : undefined;
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** chronyd's tracking once it follows `referenceName` with a normal leap status (40 s at most). */
function synchronisedTo(daemon: Chronyd, referenceName: string, what: string): Promise<ChronyTracking> {
  return waitFor(
    async () => {
      const tracking = await daemon.tracking();
      return tracking.referenceName === referenceName && tracking.leapStatus === 'Normal' ? tracking : undefined;
    },
    { what, timeoutMs: 40_000, intervalMs: 500 },
  );
}

describeE2e('service with real chronyd', ['chronyd'], () => {
  it('a reader restarting does not disturb the feeder', async () => {
    const unit = UNITS.restart;
    const feeder = startFeeder(unit, 0.5);
    await feeder.waitForLine(new RegExp(`^info segment attached unit=${unit} `), { timeoutMs: 15_000 });
    const lines = refclockLines({ daemon: 'chrony', unit, refid: 'SVC', poll: 1 });
    const first = await chronyd(lines);
    const firstOffset = await waitFor(() => refclockSample(first, 'SVC'), {
      what: 'chronyd to read the refclock',
      timeoutMs: 20_000,
    });
    expect(firstOffset).toBeCloseTo(-0.5, 2);
    await first.stop();

    // No reader at all: the feeder carries on.
    const countWithoutReader = readSegment(unit)?.count ?? 0;
    await waitForCount(unit, countWithoutReader + 8, 'samples while no reader runs');

    const second = await chronyd(lines);
    const secondOffset = await waitFor(() => refclockSample(second, 'SVC'), {
      what: 'the restarted chronyd to read the refclock',
      timeoutMs: 20_000,
    });
    expect(secondOffset).toBeCloseTo(-0.5, 2);
    expect(feeder.exit()).toBeUndefined();
    // The feeder logged nothing but its start: no warning, no reattach.
    expect(feeder.stderrLines.filter((line) => !line.startsWith('info segment attached'))).toEqual([]);
  });

  it('htntp -> chronyd serving NTP on loopback (stratum 1) -> a chronyd client sees the offset', async () => {
    const unit = UNITS.hierarchy;
    const feeder = startFeeder(unit, -1);
    await feeder.waitForLine(new RegExp(`^info segment attached unit=${unit} `), { timeoutMs: 15_000 });
    const port = await freeUdpPort();
    const server = await chronyd(
      [...refclockLines({ daemon: 'chrony', unit, refid: 'HTNT', poll: 1 }), 'allow 127.0.0.1'],
      port,
    );
    const serverTracking = await synchronisedTo(server, 'HTNT', 'the serving chronyd to synchronise to the refclock');
    expect(serverTracking.stratum).toBe(1);
    // The reference is 1 s behind the system clock: the system clock is 1 s fast of it.
    expect(Math.abs(serverTracking.systemTimeFast - 1)).toBeLessThan(0.002);

    const client = await chronyd([`server 127.0.0.1 port ${port} iburst minpoll -2 maxpoll -2`]);
    const clientTracking = await synchronisedTo(
      client,
      '127.0.0.1',
      'the client chronyd to synchronise to the serving one',
    );
    expect(clientTracking.stratum).toBe(2);
    const [source] = await client.sources();
    expect(source).toMatchObject({ mode: '^', name: '127.0.0.1', stratum: 1 });
    // One level down, the client finds its (untouched, -x) system clock 1 s fast of NTP
    // time: the htntp reference's -1 s came through chronyd's NTP service.
    expect(Math.abs(clientTracking.systemTimeFast - 1)).toBeLessThan(0.002);
  });
});
