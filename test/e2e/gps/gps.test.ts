// End to end: a receiver simulated on a socat pty pair, paced in real time; the real
// `htntp gps` CLI publishes; ntpshmmon and chronyd -x read the segment.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { cleanupsAfterEach } from '../../helpers/cleanups.js';
import { realtime } from '../../../src/clock.js';
import { addSeconds, compare, diffSeconds, type Timespec } from '../../../src/time.js';
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
  type PeerstatsLine,
  type ShmmonSample,
} from '../../helpers/daemons.js';
import { flags, makeTempDir, startHtntp, type RunningProcess, type TempDir } from '../../helpers/process.js';
import { refclockLines } from '../../../src/refclock-config.js';
import { median } from '../../../src/sources/http/posterior.js';
import { PacedWriter, startPtyPair, startPtyPairIn, type PtyPair, type Written } from '../../helpers/gps/pty.js';
import { burst, GSV } from '../../helpers/gps/sentences.js';
import { units } from '../../helpers/units.js';

const UNIT_SHMMON = units.gpsShmmon;
const UNIT_CHRONY = units.gpsChrony;
const UNIT_ERRORS = units.gpsErrors;
const UNIT_HUNT = units.gpsHunt;
const UNIT_DENIED = units.gpsDenied;
const UNIT_CHRONY_OFFSET = units.gpsChronyOffset;
const UNIT_NTPD = units.gpsNtpd;
const UNIT_NTPD_TIME1 = units.gpsNtpdTime1;
const UNITS = [
  UNIT_SHMMON,
  UNIT_CHRONY,
  UNIT_ERRORS,
  UNIT_HUNT,
  UNIT_DENIED,
  UNIT_CHRONY_OFFSET,
  UNIT_NTPD,
  UNIT_NTPD_TIME1,
];

const LATENCY = 0.3; // the simulated receiver's burst comes 300 ms after the second
const OFFSET = 0.25; // --offset: clock = sentence second + 0.25
// A write on a pty and the feeder's stamp of it: well under a ms typically on an idle
// machine. The median must stay within a few ms; single samples get room for scheduling
// delays on a loaded machine, yet a stamp of another burst (a second away) fails.
const RECEIVE_MEDIAN_TOLERANCE = 0.005;
const RECEIVE_TOLERANCE = 0.5;
// Daemon samples judged as a set: chronyd's filtered samples, ntpd's peerstats lines.
const CHRONY_SAMPLES = 4;
const NTPD_SAMPLES = 5;

let temp: TempDir;
const cleanups = cleanupsAfterEach(() => UNITS.forEach(removeSegment));

beforeAll(async () => {
  temp = await makeTempDir('gps-e2e');
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
  const pair = await startPtyPairIn(temp.path, name);
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
async function simulatedReceiver(unit: number, offset: number): Promise<PacedWriter> {
  const pair = await ptyPair(`receiver-${unit}`);
  const feeder = htntp(flags({ device: pair.devicePath, unit, offset, 'min-fixes': 2 }));
  await feeder.waitForLine(/"event":"device open"/);
  const paced = writer(pair.writerPath, 0);
  paced.start();
  return paced;
}

/**
 * How late the simulated receivers wrote their bursts, median over every burst: the
 * writer's timers fire late on a loaded machine, and a daemon sees that lateness as
 * latency. The daemons' figures are judged against LATENCY plus this.
 */
function writerLateness(writers: readonly PacedWriter[]): number {
  const late = writers.flatMap((paced) =>
    paced.written.map((entry) => diffSeconds(entry.writeTime, { sec: entry.second, nsec: 0 }) - LATENCY),
  );
  return median(late);
}

function writtenAt(written: readonly Written[], second: number): Written | undefined {
  return written.find((entry) => entry.second === second);
}

describeE2e('htntp gps end to end (socat pty)', ['socat', 'ntpshmmon'], () => {
  it('publishes second + offset stamped at the write; nothing before the fix; survives the device going', async () => {
    const first = await ptyPair('shmmon');
    const feeder = htntp(flags({ device: first.devicePath, unit: UNIT_SHMMON, offset: OFFSET, 'min-fixes': 3 }));
    await feeder.waitForLine(/"event":"device open"/);

    // ntpshmmon finds segments when it starts: start it once the feeder's exists.
    const start = realtime();
    const validFrom = start.sec + 3;
    const paced = writer(first.writerPath, validFrom);
    // ntpshmmon runs until it has 8 samples, two of them after the device came back (or a
    // generous bound).
    let monitorBackAt: Timespec | undefined;
    const monitor = runNtpshmmon({
      units: [UNIT_SHMMON],
      seconds: 60,
      until: (seen) =>
        monitorBackAt !== undefined &&
        seen.length >= 8 &&
        seen.filter((sample) => compare(sample.clock, monitorBackAt!) > 0).length >= 2,
    });
    paced.start();

    await feeder.waitForLine(/"event":"fix acquired"/, { timeoutMs: 20_000 });
    await waitFor(() => (paced.written.filter((entry) => entry.second >= validFrom).length >= 7 ? true : undefined), {
      what: '7 valid bursts',
      timeoutMs: 20_000,
    });

    // The device vanishes (socat killed: the pty is gone) ...
    const lostAt = realtime();
    paced.detach();
    await first.stop();
    await feeder.waitForLine(/"event":"device lost"/);
    await waitFor(() => (diffSeconds(realtime(), lostAt) > 2 ? true : undefined), {
      what: '2 s without the device',
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    // ... and comes back under the same name.
    const second = await startPtyPair(socat(), first.writerPath.replace(/\/writer$/, ''));
    cleanups.push(() => second.stop());
    const backAt = second.readyAt;
    monitorBackAt = backAt;
    paced.reopen(second.writerPath);
    await feeder.waitForLine(/"event":"device back"/, { timeoutMs: 20_000 });

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

    const latencies = samples
      .map((sample) => diffSeconds(sample.receive, writtenAt(paced.written, sample.clock.sec)!.writeTime) * 1000)
      .sort((a, b) => a - b);
    // The first line is the one stamped: the median stamp is nearer its write than the
    // second line's (30 ms later), even when a busy machine delays the reads by a few ms.
    expect(latencies[Math.floor(latencies.length / 2)]).toBeLessThan(LINE_SPACING_MS / 2);
    process.stderr.write(
      `[gps e2e] ${samples.length} samples; receive - write: ` +
        `median ${latencies[Math.floor(latencies.length / 2)]?.toFixed(3)} ms, ` +
        `worst ${latencies.at(-1)?.toFixed(3)} ms\n`,
    );
    // Nothing stale: no sample carries a second of the outage, every later one a second
    // written after the device came back.
    expect(samples.filter((sample) => sample.clock.sec > lostAt.sec + 1 && sample.clock.sec < backAt.sec)).toEqual([]);
    const after = samples.filter((sample) => compare(sample.clock, backAt) > 0);
    expect(after.length, output).toBeGreaterThanOrEqual(2);
    // Resumed within 8 s of the device coming back (3 fixes again: about 3 s; the rest is
    // room for a loaded machine).
    const resumed = after[0]!;
    process.stderr.write(
      `[gps e2e] first sample ${diffSeconds(resumed.seen, backAt).toFixed(3)} s after the device came back\n`,
    );
    expect(diffSeconds(resumed.seen, backAt)).toBeLessThan(8);
    for (const sample of after)
      expect(compare(writtenAt(paced.written, sample.clock.sec)!.writeTime, backAt)).toBeGreaterThan(0);
  }, 120_000);

  it('refuses a missing, non-tty, locked or forbidden device and unit 0 without root, with clear errors', async () => {
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
      spawnSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          'bin/htntp.js',
          'gps',
          '--no-leapfile',
          ...args,
        ],
        {
          encoding: 'utf8',
          timeout: 10_000,
        },
      );
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
  }, 60_000);

  it('--baud auto hunts past a rate that gives only garbage, then publishes', async () => {
    const pair = await ptyPair('hunt');
    const feeder = htntp(flags({ device: pair.devicePath, unit: UNIT_HUNT, baud: 'auto', 'min-fixes': 1, json: true }));
    await feeder.waitForLine(/"event":"device open"/);
    // A pty takes any rate, so "wrong rate" is simulated: garbage until the feeder moved on.
    let hunted = false;
    const paced = new PacedWriter(pair.writerPath, {
      latency: LATENCY,
      burst: (second) =>
        hunted
          ? { lines: burst(second), valid: true }
          : {
              lines: ['\x8f\xf3x\x11\xa0~~\x13', GSV.replace(/\*..$/, '*00'), `$GPGSV,${'9'.repeat(300)}`],
              valid: false,
            },
    });
    cleanups.push(() => paced.stop());
    paced.start();
    const huntLine = await feeder.waitForLine(/"event":"baud rate hunt"/, { timeoutMs: 20_000 });
    expect(JSON.parse(huntLine)).toMatchObject({ baud: 9600 });
    hunted = true;
    const found = await feeder.waitForLine(/"event":"baud rate found"/, { timeoutMs: 20_000 });
    expect(JSON.parse(found)).toMatchObject({ baud: 9600 });
    await feeder.waitForLine(/"event":"sample published"/, { timeoutMs: 20_000 });
    // The garbage was counted, not fatal.
    await feeder.stop('SIGTERM');
    expect(feeder.output()).toMatch(/"event":"gps counts".*"bad-checksum":\d+/);
    expect(feeder.output()).toMatch(/"event":"gps counts".*"overlong":\d+/);
    // --json: the run's summary, one object on stdout.
    const summary = JSON.parse(feeder.stdoutLines.join('')) as {
      device: string;
      unit: number;
      published: number;
      counts: Record<string, number>;
    };
    expect(summary).toMatchObject({ device: pair.devicePath, unit: UNIT_HUNT });
    expect(summary.published).toBeGreaterThanOrEqual(1);
    expect(summary.counts.samples).toBe(summary.published);
    expect(summary.counts['bad-checksum']).toBeGreaterThan(0);
  }, 60_000);
});

describeE2e('htntp gps feeds chronyd', ['socat', 'chronyd'], () => {
  let chronyd: Chronyd | undefined;
  afterEach(async () => {
    await chronyd?.stop();
  });

  it('chronyd -x measures offset = latency - --offset, and chrony `offset` is the same correction', async () => {
    // UNIT_CHRONY: htntp --offset 0.25, chrony offset 0. UNIT_CHRONY_OFFSET: htntp --offset 0, chrony offset 0.25.
    const chronyLine = (unit: number, refid: string, offset: number): string => {
      const [line] = refclockLines({
        daemon: 'chrony',
        unit,
        refid,
        poll: 2,
        offset,
        precision: -10,
        delay: 0.2,
        noselect: true,
      });
      return `${line} dpoll 0 filter 4`;
    };
    chronyd = await startChronyd({
      lines: [chronyLine(UNIT_CHRONY, 'GPS', 0), chronyLine(UNIT_CHRONY_OFFSET, 'GPSO', OFFSET)],
    });
    const writers = [await simulatedReceiver(UNIT_CHRONY, OFFSET), await simulatedReceiver(UNIT_CHRONY_OFFSET, 0)];
    // Several of chrony's filtered samples per source (a new one every 4 s at poll 2), each
    // told apart by its lastRx going back. noselect: a selected source would make chronyd
    // -x correct its model of the clock, and later samples would be measured against that.
    const names = ['GPS', 'GPSO'];
    const measured = new Map<string, number[]>(names.map((name) => [name, []]));
    let lastSeen = new Map<string, number>();
    await waitFor(
      async () => {
        const sampled = (await chronyd!.sources()).filter(
          (entry) => names.includes(entry.name) && entry.lastRx !== undefined && entry.reach > 0,
        );
        const seen = new Map<string, number>();
        for (const entry of sampled) {
          seen.set(entry.name, entry.lastRx!);
          if (entry.lastRx! < (lastSeen.get(entry.name) ?? Infinity))
            measured.get(entry.name)!.push(entry.measuredOffset);
        }
        lastSeen = seen;
        if (names.every((name) => measured.get(name)!.length >= CHRONY_SAMPLES)) return true;
        // Not yet: what was seen, for the timeout message.
        throw new Error(
          `samples so far ${JSON.stringify(Object.fromEntries(measured))}; sources ${JSON.stringify(sampled)}`,
        );
      },
      { what: `${CHRONY_SAMPLES} chronyd samples from both units`, timeoutMs: 60_000, intervalMs: 250 },
    );
    // chrony: positive = local clock ahead of the source. receive - clock = latency - offset.
    const late = writerLateness(writers);
    for (const name of names) {
      const offsets = measured.get(name)!;
      console.log(
        `[gps e2e] chronyd ${name}: measured offsets ${offsets.map((value) => value.toFixed(4)).join(' ')}; writer ` +
          `late ${(late * 1000).toFixed(1)} ms`,
      );
      // A stamp is never early: no sample can fall below latency - offset.
      expect(Math.min(...offsets), name).toBeGreaterThan(LATENCY - OFFSET - 0.001);
      // Late writes and stamps (scheduling) only push samples up; their median stays close. chrony's
      // value is filtered (filter 4): a median, with a little more room than ours.
      expect(median(offsets), name).toBeLessThan(LATENCY - OFFSET + late + 4 * RECEIVE_MEDIAN_TOLERANCE);
    }
  }, 90_000);
});

/**
 * A peerstats line of `unit` that holds a measurement. Lines of exactly 0 s show up when
 * ntpd polled and found no new sample; every sample here is about 50 ms away from 0.
 */
function measured(line: PeerstatsLine, unit: number): boolean {
  return line.unit === unit && line.offset !== 0;
}

describeE2e('htntp gps feeds ntpsec ntpd', ['socat', 'ntpd'], () => {
  let ntpd: Ntpd | undefined;
  afterEach(async () => {
    await ntpd?.stop();
  });

  it('ntpd measures offset = --offset - latency, and time1 is the same correction', async () => {
    // UNIT_NTPD: htntp --offset 0.25, time1 0. UNIT_NTPD_TIME1: htntp --offset 0, time1 0.25.
    ntpd = await startNtpd({
      lines: [
        ...refclockLines({ daemon: 'ntpsec', unit: UNIT_NTPD, refid: 'GPS', poll: 1 }),
        ...refclockLines({ daemon: 'ntpsec', unit: UNIT_NTPD_TIME1, refid: 'GPST', poll: 1, offset: OFFSET }),
      ],
    });
    const writers = [await simulatedReceiver(UNIT_NTPD, OFFSET), await simulatedReceiver(UNIT_NTPD_TIME1, 0)];
    const lines = await waitFor(
      async () => {
        const stats = await ntpd!.peerstats();
        const enough = [UNIT_NTPD, UNIT_NTPD_TIME1].every(
          (unit) => stats.filter((line) => measured(line, unit)).length >= NTPD_SAMPLES,
        );
        return enough ? stats : undefined;
      },
      { what: `${NTPD_SAMPLES} ntpd peerstats lines for both units`, timeoutMs: 60_000, intervalMs: 500 },
    );
    // ntpd's sign: reference - local. clock - receive + time1 = offset - latency.
    const late = writerLateness(writers);
    for (const unit of [UNIT_NTPD, UNIT_NTPD_TIME1]) {
      const offsets = lines.filter((line) => measured(line, unit)).map((line) => line.offset);
      console.log(
        `[gps e2e] ntpd SHM(${unit}): peerstats offsets ${offsets.map((value) => value.toFixed(4)).join(' ')}; ` +
          `writer late ${(late * 1000).toFixed(1)} ms`,
      );
      // A stamp is never early: no sample can rise above offset - latency.
      expect(Math.max(...offsets), `unit ${unit}`).toBeLessThan(OFFSET - LATENCY + 0.001);
      // Late writes and stamps (scheduling) only push samples down; their median stays close.
      expect(median(offsets), `unit ${unit}`).toBeGreaterThan(OFFSET - LATENCY - late - 4 * RECEIVE_MEDIAN_TOLERANCE);
    }
  }, 90_000);
});
