// End to end: a receiver simulated on a socat pty pair, paced in real time; the real
// `htntp gps` CLI publishes; ntpshmmon and chronyd -x read the segment.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { realtime } from '../../src/clock.js';
import { addSeconds, compare, diffSeconds, type Timespec } from '../../src/time.js';
import {
  describeE2e,
  findTool,
  removeSegment,
  runNtpshmmon,
  startChronyd,
  startNtpd,
  waitFor,
  type Chronyd,
  type Ntpd,
  type ShmmonSample,
} from '../helpers/daemons.js';
import { makeTempDir, startHtntp, type RunningProcess, type TempDir } from '../helpers/process.js';
import { refclockLines } from '../../src/refclock-config.js';
import { PacedWriter, startPtyPair, type PtyPair, type Written } from './pty.js';
import { burst, GSV } from './sentences.js';

// This file's SHM units (issue 4 range 170-199).
const UNIT_SHMMON = 170;
const UNIT_CHRONY = 171;
const UNIT_ERRORS = 172;
const UNIT_HUNT = 173;
const UNIT_DENIED = 174;
const UNIT_CHRONY_OFFSET = 175;
const UNIT_NTPD = 176;
const UNIT_NTPD_TIME1 = 177;
const UNITS = [UNIT_SHMMON, UNIT_CHRONY, UNIT_ERRORS, UNIT_HUNT, UNIT_DENIED, UNIT_CHRONY_OFFSET, UNIT_NTPD, UNIT_NTPD_TIME1];

const LATENCY = 0.3; // the simulated receiver's burst comes 300 ms after the second
const OFFSET = 0.25; // --offset: clock = sentence second + 0.25
// A write on a pty and the feeder's stamp of it: well under a ms typically on an idle
// machine. The median must stay within a few ms; single samples get room for scheduling
// delays, because several developers' tests share 2 cores.
const RECEIVE_MEDIAN_TOLERANCE = 0.005;
const RECEIVE_TOLERANCE = 0.1;

let temp: TempDir;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  temp = await makeTempDir('gps-e2e');
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const unit of UNITS) removeSegment(unit);
});

afterAll(async () => {
  await temp?.remove();
});

function socat(): string {
  const path = findTool('socat');
  if (path === undefined) throw new Error('socat not found');
  return path;
}

async function ptyPair(name: string): Promise<PtyPair> {
  const { mkdir } = await import('node:fs/promises');
  const dir = `${temp.path}/${name}`;
  await mkdir(dir, { recursive: true });
  const pair = await startPtyPair(socat(), dir);
  cleanups.push(() => pair.stop());
  return pair;
}

function htntp(args: string[]): RunningProcess {
  const child = startHtntp(['gps', '--log-format', 'json', '-v', '--no-leapfile', ...args]);
  cleanups.push(async () => void (await child.stop('SIGTERM', 3_000)));
  return child;
}

// Sentences of a burst 30 ms apart (a 4800-9600 baud receiver): a stamp taken on any
// line but the first would be 30-90 ms late, and the latency checks would see it.
const LINE_SPACING_MS = 30;

function writer(path: string, validFrom: number): PacedWriter {
  const paced = new PacedWriter(path, {
    latency: LATENCY,
    lineSpacingMs: LINE_SPACING_MS,
    burst: (second) => {
      const valid = second >= validFrom;
      return { lines: burst(second, { valid }), valid };
    },
  });
  cleanups.push(() => paced.stop());
  return paced;
}

/** A pty with a receiver that always has a fix, and `htntp gps --offset` publishing it on `unit`. */
async function simulatedReceiver(unit: number, offset: number): Promise<void> {
  const pair = await ptyPair(`receiver-${unit}`);
  const feeder = htntp(['--device', pair.devicePath, '--unit', String(unit), '--offset', String(offset), '--min-fixes', '2']);
  await feeder.waitForLine(/"event":"device open"/);
  writer(pair.writerPath, 0).start();
}

function writtenAt(written: readonly Written[], second: number): Written | undefined {
  return written.find((entry) => entry.second === second);
}

describeE2e('htntp gps end to end (socat pty)', ['socat', 'ntpshmmon'], () => {
  it('publishes clock = sentence second + offset, stamped within ms of the write; nothing before the fix; survives the device vanishing', async () => {
    const first = await ptyPair('shmmon');
    const feeder = htntp(['--device', first.devicePath, '--unit', String(UNIT_SHMMON), '--offset', String(OFFSET), '--min-fixes', '3']);
    await feeder.waitForLine(/"event":"device open"/);

    // ntpshmmon finds segments when it starts: start it once the feeder's exists.
    const start = realtime();
    const validFrom = start.sec + 3;
    const paced = writer(first.writerPath, validFrom);
    const monitor = runNtpshmmon({ units: [UNIT_SHMMON], seconds: 22 });
    paced.start();

    await feeder.waitForLine(/"event":"fix acquired"/, { timeoutMs: 10_000 });
    await waitFor(() => (paced.written.filter((entry) => entry.second >= validFrom).length >= 7 ? true : undefined), {
      what: '7 valid bursts',
      timeoutMs: 12_000,
    });

    // The device vanishes (socat killed: the pty is gone) ...
    const lostAt = realtime();
    paced.detach();
    await first.stop();
    await feeder.waitForLine(/"event":"device lost"/);
    await waitFor(() => (diffSeconds(realtime(), lostAt) > 2 ? true : undefined), { what: '2 s without the device', timeoutMs: 4_000, intervalMs: 100 });
    // ... and comes back under the same name.
    const second = await startPtyPair(socat(), first.writerPath.replace(/\/writer$/, ''));
    cleanups.push(() => second.stop());
    const backAt = second.readyAt;
    paced.reopen(second.writerPath);
    await feeder.waitForLine(/"event":"device back"/, { timeoutMs: 5_000 });

    const samples: ShmmonSample[] = await monitor;
    paced.stop();
    await feeder.stop('SIGTERM');
    const output = feeder.output();
    // The no-fix seconds were counted, and the run ended cleanly.
    expect(output).toMatch(/"event":"gps counts".*"invalid-fix":\d+/);
    expect(feeder.exit()?.code, output).toBe(0);

    expect(samples.length, output).toBeGreaterThanOrEqual(8);
    const seenSeconds = new Set<number>();
    for (const sample of samples) {
      // clock = the burst's second + offset, exactly (ntpshmmon prints ns).
      const sentenceSecond = Math.floor(diffSeconds(sample.clock, { sec: 0, nsec: 0 }) - OFFSET + 1e-6);
      expect(sample.clock).toEqual(addSeconds({ sec: sentenceSecond, nsec: 0 }, OFFSET));
      // One sample per second.
      expect(seenSeconds.has(sentenceSecond)).toBe(false);
      seenSeconds.add(sentenceSecond);
      // Nothing before the fix: the third consecutive good fix is the first sample.
      expect(sentenceSecond).toBeGreaterThanOrEqual(validFrom + 2);
      // The burst for that second was written, and the receive stamp is within ms of it.
      const written = writtenAt(paced.written, sentenceSecond);
      expect(written, `no write for ${sentenceSecond}`).toBeDefined();
      const latency = diffSeconds(sample.receive, written!.writeTime);
      expect(latency).toBeGreaterThanOrEqual(0);
      expect(latency).toBeLessThan(RECEIVE_TOLERANCE);
      expect(sample.leap).toBe(0);
      expect(sample.precision).toBe(-1);
    }

    const latencies = samples.map((sample) => diffSeconds(sample.receive, writtenAt(paced.written, sample.clock.sec)!.writeTime) * 1000).sort((a, b) => a - b);
    expect(latencies[Math.floor(latencies.length / 2)]).toBeLessThan(RECEIVE_MEDIAN_TOLERANCE * 1000);
    process.stderr.write(
      `[gps e2e] ${samples.length} samples; receive - write: median ${latencies[Math.floor(latencies.length / 2)]?.toFixed(3)} ms, worst ${latencies.at(-1)?.toFixed(3)} ms\n`,
    );
    // Nothing stale: no sample carries a second of the outage, every later one a second
    // written after the device came back.
    expect(samples.filter((sample) => sample.clock.sec > lostAt.sec + 1 && sample.clock.sec < backAt.sec)).toEqual([]);
    const after = samples.filter((sample) => compare(sample.clock, backAt) > 0);
    expect(after.length, output).toBeGreaterThanOrEqual(2);
    // Resumed within 5 s of the device coming back (3 fixes again: about 3 s).
    const resumed = after[0]!;
    process.stderr.write(`[gps e2e] first sample ${diffSeconds(resumed.seen, backAt).toFixed(3)} s after the device came back\n`);
    expect(diffSeconds(resumed.seen, backAt)).toBeLessThan(5);
    for (const sample of after) expect(compare(writtenAt(paced.written, sample.clock.sec)!.writeTime, backAt)).toBeGreaterThan(0);
  }, 45_000);

  it('refuses a missing device, a file that is no tty, a locked device, unit 0 without root, and a forbidden device, with clear errors', async () => {
    const missing = htntp(['--device', `${temp.path}/no-such-tty`, '--unit', String(UNIT_ERRORS)]);
    expect((await missing.exited).code).toBe(1);
    expect(missing.stderrLines.join('\n')).toMatch(/htntp: device .*no-such-tty does not exist/);

    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${temp.path}/plain-file`, 'not a tty\n');
    const notTty = htntp(['--device', `${temp.path}/plain-file`, '--unit', String(UNIT_ERRORS)]);
    expect((await notTty.exited).code).toBe(1);
    expect(notTty.stderrLines.join('\n')).toMatch(/htntp: .*plain-file is not a serial port/);

    const pair = await ptyPair('errors');
    const holder = htntp(['--device', pair.devicePath, '--unit', String(UNIT_ERRORS)]);
    await holder.waitForLine(/"event":"device open"/);
    // Another unit: a second feeder on the holder's unit would be refused for the unit first.
    const second = htntp(['--device', pair.devicePath, '--unit', String(UNIT_DENIED)]);
    expect((await second.exited).code).toBe(1);
    expect(second.stderrLines.join('\n')).toMatch(/htntp: .*device is locked by another program \(gpsd, ModemManager/);

    const { spawnSync } = await import('node:child_process');
    const asNobody = (args: string[]) =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'bin/htntp.js', 'gps', '--no-leapfile', ...args], {
        encoding: 'utf8',
        timeout: 10_000,
      });
    if (process.getuid?.() === 0) {
      const unitZero = asNobody(['--device', pair.devicePath]);
      expect(unitZero.status).toBe(1);
      expect(unitZero.stderr).toMatch(/unit 0 is root-only .*use --unit 2 or higher/);
      // The pty is root's, mode 0600: a plain user is refused, and told why.
      const denied = asNobody(['--device', pair.devicePath, '--unit', String(UNIT_DENIED)]);
      expect(denied.status).toBe(1);
      expect(denied.stderr).toMatch(/permission denied opening .*device: run as a member of its group/);
    } else {
      process.stderr.write('[htntp e2e] not root: the unit 0 / permission checks need setpriv as root\n');
    }
  }, 30_000);

  it('--baud auto hunts past a rate that gives only garbage, then publishes', async () => {
    const pair = await ptyPair('hunt');
    const feeder = htntp(['--device', pair.devicePath, '--unit', String(UNIT_HUNT), '--baud', 'auto', '--min-fixes', '1', '--json']);
    await feeder.waitForLine(/"event":"device open"/);
    // A pty takes any rate, so "wrong rate" is simulated: garbage until the feeder moved on.
    let hunted = false;
    const paced = new PacedWriter(pair.writerPath, {
      latency: LATENCY,
      burst: (second) =>
        hunted ? { lines: burst(second), valid: true } : { lines: ['\x8f\xf3x\x11\xa0~~\x13', GSV.replace(/\*..$/, '*00'), `$GPGSV,${'9'.repeat(300)}`], valid: false },
    });
    cleanups.push(() => paced.stop());
    paced.start();
    const huntLine = await feeder.waitForLine(/"event":"baud rate hunt"/, { timeoutMs: 8_000 });
    expect(JSON.parse(huntLine)).toMatchObject({ baud: 9600 });
    hunted = true;
    const found = await feeder.waitForLine(/"event":"baud rate found"/, { timeoutMs: 5_000 });
    expect(JSON.parse(found)).toMatchObject({ baud: 9600 });
    await feeder.waitForLine(/"event":"sample published"/, { timeoutMs: 5_000 });
    // The garbage was counted, not fatal.
    await feeder.stop('SIGTERM');
    expect(feeder.output()).toMatch(/"event":"gps counts".*"bad-checksum":\d+/);
    expect(feeder.output()).toMatch(/"event":"gps counts".*"overlong":\d+/);
    // --json: the run's summary, one object on stdout.
    const summary = JSON.parse(feeder.stdoutLines.join('')) as { device: string; unit: number; published: number; counts: Record<string, number> };
    expect(summary).toMatchObject({ device: pair.devicePath, unit: UNIT_HUNT });
    expect(summary.published).toBeGreaterThanOrEqual(1);
    expect(summary.counts.samples).toBe(summary.published);
    expect(summary.counts['bad-checksum']).toBeGreaterThan(0);
  }, 30_000);
});

describeE2e('htntp gps feeds chronyd', ['socat', 'chronyd'], () => {
  let chronyd: Chronyd | undefined;
  afterEach(async () => {
    await chronyd?.stop();
  });

  it('chronyd -x measures offset = latency - --offset, and chrony `offset` is the same correction', async () => {
    // Unit 171: htntp --offset 0.25, chrony offset 0. Unit 175: htntp --offset 0, chrony offset 0.25.
    const chronyLine = (unit: number, refid: string, offset: number): string =>
      `${refclockLines({ daemon: 'chrony', unit, refid, poll: 2, offset, precision: -10, delay: 0.2 })[0]} dpoll 0 filter 4`;
    chronyd = await startChronyd({ lines: [chronyLine(UNIT_CHRONY, 'GPS', 0), chronyLine(UNIT_CHRONY_OFFSET, 'GPSO', OFFSET)] });
    await simulatedReceiver(UNIT_CHRONY, OFFSET);
    await simulatedReceiver(UNIT_CHRONY_OFFSET, 0);
    const sources = await waitFor(
      async () => {
        const all = await chronyd!.sources();
        const sampled = all.filter((entry) => entry.lastRx !== undefined && entry.reach > 0).map((entry) => entry.name);
        return sampled.includes('GPS') && sampled.includes('GPSO') ? all : undefined;
      },
      { what: 'chronyd to take samples from both units', timeoutMs: 25_000, intervalMs: 500 },
    );
    // chrony: positive = local clock ahead of the source. receive - clock = latency - offset.
    for (const name of ['GPS', 'GPSO']) {
      const source = sources.find((entry) => entry.name === name)!;
      expect(source.measuredOffset, name).toBeGreaterThan(LATENCY - OFFSET - 0.001);
      // chrony's value is filtered (filter 4): a median, with a little more room than ours.
      expect(source.measuredOffset, name).toBeLessThan(LATENCY - OFFSET + 4 * RECEIVE_MEDIAN_TOLERANCE);
    }
  }, 45_000);
});

describeE2e('htntp gps feeds ntpsec ntpd', ['socat', 'ntpd'], () => {
  let ntpd: Ntpd | undefined;
  afterEach(async () => {
    await ntpd?.stop();
  });

  it('ntpd measures offset = --offset - latency, and time1 is the same correction', async () => {
    // Unit 176: htntp --offset 0.25, time1 0. Unit 177: htntp --offset 0, time1 0.25.
    ntpd = await startNtpd({
      lines: [
        ...refclockLines({ daemon: 'ntpsec', unit: UNIT_NTPD, refid: 'GPS', poll: 1 }),
        ...refclockLines({ daemon: 'ntpsec', unit: UNIT_NTPD_TIME1, refid: 'GPST', poll: 1, offset: OFFSET }),
      ],
    });
    await simulatedReceiver(UNIT_NTPD, OFFSET);
    await simulatedReceiver(UNIT_NTPD_TIME1, 0);
    const lines = await waitFor(
      async () => {
        const stats = await ntpd!.peerstats();
        const units = new Set(stats.map((line) => line.unit));
        return units.has(UNIT_NTPD) && units.has(UNIT_NTPD_TIME1) ? stats : undefined;
      },
      { what: 'ntpd peerstats for both units', timeoutMs: 30_000, intervalMs: 500 },
    );
    // ntpd's sign: reference - local. clock - receive + time1 = offset - latency.
    for (const unit of [UNIT_NTPD, UNIT_NTPD_TIME1]) {
      const last = lines.filter((line) => line.unit === unit).at(-1)!;
      expect(last.offset, `unit ${unit}`).toBeLessThan(OFFSET - LATENCY + 0.001);
      expect(last.offset, `unit ${unit}`).toBeGreaterThan(OFFSET - LATENCY - 4 * RECEIVE_MEDIAN_TOLERANCE);
    }
  }, 60_000);
});
