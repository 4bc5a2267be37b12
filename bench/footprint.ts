// `npm run bench:footprint`: memory and CPU of the long-running commands as a service
// runs them (with the NODE_OPTIONS of the systemd units), next to their anchors: bare Node
// (a 1 s timer) and gpsd on a pty of its own fed the same sentences. Each process is started together, left to settle
// (HTNTP_BENCH_WARMUP s, default 45), then watched for HTNTP_BENCH_SECONDS (default 60):
// RSS (VmRSS at the end, VmHWM: the peak since start), CPU ms per second (utime + stime
// of every thread) and the main thread's wake-ups per second (context switches).
// Subjects: `fixed` (1 Hz), `http` (3 loopback servers, default interval), `gps` (socat
// pty, one NMEA burst a second). Targets: RSS <= 64 MB, CPU <= 1 ms/s between measurements.
// Units from test/helpers/units.ts. Needs socat; gpsd (optional anchor) runs in its own
// IPC namespace so its SHM segments never reach the host's time daemon.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { keyText } from '../src/shm.js';
import {
  htntpBin,
  makeTempDir,
  repoRoot,
  runCommand,
  startProcess,
  type RunningProcess,
} from '../test/helpers/process.js';
import { findTool } from '../test/helpers/tools.js';
import { units } from '../test/helpers/units.js';
import { PacedWriter, startPtyPair, type PtyPair } from '../test/helpers/gps/pty.js';
import { burst } from '../test/helpers/gps/sentences.js';
import { closeAll, startTimeServers } from '../test/helpers/http/servers.js';

// Between measurements: an HTTP measurement's connections close 10 s after its last probe,
// and its garbage is collected over the next half minute.
const WARMUP_SECONDS = Number(process.env.HTNTP_BENCH_WARMUP ?? 45);
const SECONDS = Number(process.env.HTNTP_BENCH_SECONDS ?? 60);
const UNITS = { fixed: units.footprintFixed, http: units.footprintHttp, gps: units.footprintGps } as const;
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface Reading {
  cpuTicks: number;
  wakeups: number;
  rssKb: number;
  peakKb: number;
}

function read(pid: number): Reading {
  // Fields after the command name, which may hold spaces: utime is the 14th field, stime the 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const value = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return {
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    wakeups: value('voluntary_ctxt_switches') + value('nonvoluntary_ctxt_switches'),
    rssKb: value('VmRSS'),
    peakKb: value('VmHWM'),
  };
}

/** NODE_OPTIONS of contrib/systemd/htntp.service, which the GPS unit shares. */
function unitNodeOptions(): string {
  const unit = readFileSync(new URL('../contrib/systemd/htntp.service', import.meta.url), 'utf8');
  const options = /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1];
  if (options === undefined) throw new Error('contrib/systemd/htntp.service sets no NODE_OPTIONS');
  return options;
}

interface Subject {
  name: string;
  process: RunningProcess;
}

async function main(): Promise<void> {
  const socat = findTool('socat');
  if (socat === undefined) throw new Error('socat not found (apt-get install socat)');
  const gpsd = findTool('gpsd');
  const unshare = findTool('unshare');
  const temp = await makeTempDir('footprint');
  const ptys: PtyPair[] = [];
  const writers: PacedWriter[] = [];
  const subjects: Subject[] = [];
  const servers = await startTimeServers([{}, {}, {}]);
  try {
    const feed = async (dir: string): Promise<PtyPair> => {
      await mkdir(dir, { recursive: true });
      const pair = await startPtyPair(socat, dir);
      const writer = new PacedWriter(pair.writerPath, {
        latency: 0.05,
        burst: (second) => ({ lines: burst(second), valid: true }),
      });
      writer.start();
      ptys.push(pair);
      writers.push(writer);
      return pair;
    };
    const gpsPty = await feed(`${temp.path}/gps`);
    const node = (args: string[]): RunningProcess => startProcess(process.execPath, args, { cwd: repoRoot });
    // htntp as its systemd units run it: with their NODE_OPTIONS.
    const serviceEnvironment = { ...process.env, NODE_OPTIONS: unitNodeOptions() };
    const service = (args: string[]): RunningProcess =>
      startProcess(process.execPath, args, { cwd: repoRoot, env: serviceEnvironment });
    process.stdout.write(`htntp runs with the units' NODE_OPTIONS=${serviceEnvironment.NODE_OPTIONS}\n`);
    subjects.push({ name: 'bare node (1 s timer)', process: node(['-e', 'setInterval(() => {}, 1000)']) });
    subjects.push({
      name: 'htntp fixed',
      process: service([htntpBin, 'fixed', '--unit', String(UNITS.fixed), '--offset', '0', '--quiet']),
    });
    subjects.push({
      name: 'htntp http (3 servers)',
      process: service([
        htntpBin,
        'http',
        '--unit',
        String(UNITS.http),
        '--quiet',
        ...servers.map((server) => server.url),
      ]),
    });
    subjects.push({
      name: 'htntp gps (pty)',
      process: service([htntpBin, 'gps', '--device', gpsPty.devicePath, '--unit', String(UNITS.gps), '--quiet']),
    });
    if (gpsd !== undefined && unshare !== undefined && process.getuid?.() === 0) {
      const gpsdPty = await feed(`${temp.path}/gpsd`);
      // -N foreground, -n read without a client, -b never write to the device; a port of
      // its own beside any system gpsd; a private IPC namespace keeps its SHM to itself.
      subjects.push({
        name: 'gpsd -N -n -b (pty)',
        process: startProcess(unshare, ['--ipc', gpsd, '-N', '-n', '-b', '-S', '29471', gpsdPty.devicePath]),
      });
    } else {
      process.stdout.write('gpsd anchor skipped: needs gpsd, unshare and root\n');
    }

    await delay(WARMUP_SECONDS * 1000);
    for (const subject of subjects) {
      if (subject.process.exit() !== undefined)
        throw new Error(`${subject.name} exited during warm-up\n${subject.process.output()}`);
    }
    const before = subjects.map((subject) => read(subject.process.pid));
    await delay(SECONDS * 1000);
    const after = subjects.map((subject) => read(subject.process.pid));

    process.stdout.write(
      `\nfootprint over ${SECONDS} s after ${WARMUP_SECONDS} s of warm-up; node ${process.version}; load ${loadavg()
        .map((load) => load.toFixed(2))
        .join(' ')}\n`,
    );
    process.stdout.write(
      `${'process'.padEnd(26)}${'RSS MB'.padStart(8)}${'peak MB'.padStart(9)}${'CPU ms/s'.padStart(10)}` +
        `${'wake-ups/s'.padStart(12)}\n`,
    );
    subjects.forEach((subject, index) => {
      const start = before[index]!;
      const end = after[index]!;
      const cpuMsPerSecond = ((end.cpuTicks - start.cpuTicks) * (1000 / CLOCK_TICKS_PER_SECOND)) / SECONDS;
      const wakeupsPerSecond = (end.wakeups - start.wakeups) / SECONDS;
      process.stdout.write(
        `${subject.name.padEnd(26)}${(end.rssKb / 1024).toFixed(1).padStart(8)}` +
          `${(end.peakKb / 1024).toFixed(1).padStart(9)}${cpuMsPerSecond.toFixed(2).padStart(10)}` +
          `${wakeupsPerSecond.toFixed(2).padStart(12)}\n`,
      );
    });
    process.stdout.write('targets: htntp RSS <= 64 MB, CPU <= 1 ms/s per feeder between measurements\n');
  } finally {
    for (const subject of subjects) await subject.process.stop('SIGTERM', 5_000);
    for (const writer of writers) writer.stop();
    for (const pty of ptys) await pty.stop();
    await closeAll(servers);
    for (const unit of Object.values(UNITS)) await runCommand('ipcrm', ['-M', keyText(unit)]).catch(() => undefined);
    await temp.remove();
  }
}

await main();
