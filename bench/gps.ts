// `npm run bench:gps`: line arrival -> receive stamp latency of the GPS source on a socat
// pty, over 1000 sentences (median, p99, worst), next to the anchor: a C reader stamping
// CLOCK_REALTIME right after read() returns (gpsd's way). Latency = stamp - the time the
// writer took just before write(). Targets: median <= 1 ms, worst <= 5 ms, idle machine.
// The writer is a process of its own (this file with `writer <path>`), as a receiver
// would be: nothing else shares the reader's event loop.
// Then (`service`, or alone with `npm run bench:gps -- service`) the CLI as its unit runs it
// beside gpsd 3.22: `htntp gps` (the units' NODE_OPTIONS) on a pty and `gpsd -N -n -b` on a
// FIFO (it ships no time from a pty), fed the same bursts once a second, both read by
// ntpshmmon in a private IPC namespace; latency = the segment's receive time (and the moment
// ntpshmmon saw the sample) - the burst's write. gpsd and ntpshmmon
// from HTNTP_GPSD_ROOT (default /opt/htntp-gpsd: the Debian package extracted); needs root
// (unshare). HTNTP_BENCH_SERVICE_SECONDS (default 90) long.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger } from '../src/log.js';
import { GpsSource } from '../src/sources/gps/source.js';
import { diffSeconds, type Timespec } from '../src/time.js';
import { cBuild, repoRoot } from '../test/helpers/cc.js';
import { parseNtpshmmon } from '../test/helpers/daemons.js';
import { htntpBin, makeTempDir, runCommand, startProcess } from '../test/helpers/process.js';
import { waitFor } from '../test/helpers/wait.js';
import { findTool, gpsdRoot } from '../test/helpers/tools.js';
import { PacedWriter, startPtyPair, type PtyPair } from '../test/helpers/gps/pty.js';
import { burst, rmc } from '../test/helpers/gps/sentences.js';

const LINES = Number(process.env.HTNTP_BENCH_LINES ?? 1000);
const INTERVAL_MS = 10; // one sentence per write, the reader idle in between
const T0 = Date.UTC(2026, 10, 22) / 1000;

interface Figures {
  median: number;
  p99: number;
  worst: number;
  mean: number;
  /** Lines stamped more than 5 ms after their write. */
  over5ms: number;
}

function figures(latencies: number[]): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return {
    median: at(0.5),
    p99: at(0.99),
    worst: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    over5ms: sorted.filter((latency) => latency > 0.005).length,
  };
}

/** Writer mode: LINES sentences INTERVAL_MS apart, then each write's CLOCK_REALTIME as JSON. */
async function writerMain(path: string): Promise<void> {
  const writer = new PacedWriter(path, { latency: 0, burst: () => ({ lines: [], valid: false }) });
  writer.reopen();
  const writeTimes: Timespec[] = [];
  for (let index = 0; index < LINES; index += 1) {
    const writeTime = writer.writeLines([rmc(T0 + index)]);
    if (writeTime === null) throw new Error('the pty went away during the benchmark');
    writeTimes.push(writeTime);
    await delay(INTERVAL_MS);
  }
  writer.stop();
  process.stdout.write(`${JSON.stringify(writeTimes)}\n`);
}

/** Runs the writer process to the end; returns its write times. */
async function writeAll(writerPath: string): Promise<Timespec[]> {
  const writer = startProcess(process.execPath, [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    'writer',
    writerPath,
  ]);
  const exit = await writer.exited;
  if (exit.code !== 0) throw new Error(`writer failed\n${writer.output()}`);
  return JSON.parse(writer.stdoutLines.join('')) as Timespec[];
}

function latencies(stamps: readonly Timespec[], writeTimes: readonly Timespec[]): number[] {
  if (stamps.length !== writeTimes.length) throw new Error(`${stamps.length} stamps for ${writeTimes.length} writes`);
  return stamps.map((stamp, index) => diffSeconds(stamp, writeTimes[index]!));
}

async function anchorC(devicePath: string, writerPath: string, build: ReturnType<typeof cBuild>): Promise<number[]> {
  const binary = build.compile(join(repoRoot, 'test', 'e2e', 'gps', 'c', 'read_stamp.c'));
  const reader = startProcess(binary, [devicePath, String(LINES)]);
  await reader.waitForLine(/^ready$/, { stream: 'stderr' });
  const writeTimes = await writeAll(writerPath);
  const exit = await reader.exited;
  if (exit.code !== 0) throw new Error(`C reader failed\n${reader.output()}`);
  const stamps = reader.stdoutLines.filter(Boolean).map((line) => {
    const [sec, nsec] = line.split(' ').map(Number);
    return { sec: sec!, nsec: nsec! };
  });
  return latencies(stamps, writeTimes);
}

async function htntpSource(
  devicePath: string,
  writerPath: string,
): Promise<{ latencies: number[]; lowLatency: string }> {
  const stamps: Timespec[] = [];
  let lowLatency = 'unknown';
  let opened: () => void = () => undefined;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const logger = createLogger({
    level: 'info',
    write: (line) => {
      const match = /device open .*lowLatency=(\w+)/.exec(line);
      if (match) {
        lowLatency = match[1] === 'true' ? 'on' : 'not supported by this tty';
        opened();
      }
    },
  });
  // No samples wanted: every line's receive stamp comes through onLine.
  const source = new GpsSource({
    device: devicePath,
    baud: 9600,
    minFixes: 1_000_000,
    logger,
    onLine: (_line, receiveTime) => stamps.push(receiveTime),
  });
  const controller = new AbortController();
  const running = (async () => {
    for await (const _sample of source.samples(controller.signal)) {
      // none expected
    }
  })();
  await open;
  const writeTimes = await writeAll(writerPath);
  await delay(100);
  controller.abort();
  await running;
  return { latencies: latencies(stamps, writeTimes), lowLatency };
}

function ms(seconds: number): string {
  return `${(seconds * 1000).toFixed(3).padStart(8)} ms`;
}

function row(name: string, result: Figures): string {
  return (
    `${name.padEnd(40)} ${ms(result.median)} ${ms(result.p99)} ${ms(result.worst)} ${ms(result.mean)}` +
    ` ${String(result.over5ms).padStart(6)}`
  );
}

const SERVICE_SECONDS = Number(process.env.HTNTP_BENCH_SERVICE_SECONDS ?? 90);
/** Samples before this many seconds are the start-up's (gpsd's and the sampler's first fixes). */
const SERVICE_WARMUP = 10;
/** The unit htntp writes in the private namespace (gpsd, as root, takes 0 and 1). */
const SERVICE_UNIT = 2;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** NODE_OPTIONS of contrib/systemd/htntp-gps@.service. */
function unitNodeOptions(): string {
  const unit = readFileSync(new URL('../contrib/systemd/htntp-gps@.service', import.meta.url), 'utf8');
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1] ?? '';
}

/** The CLI and gpsd side by side, each on its own pty fed the same bursts, read by one ntpshmmon. */
async function service(socat: string): Promise<void> {
  const [gpsdPath, ntpshmmon, unshare, stdbuf] = (['gpsd', 'ntpshmmon', 'unshare', 'stdbuf'] as const).map((name) =>
    findTool(name),
  );
  if (
    gpsdPath === undefined ||
    ntpshmmon === undefined ||
    unshare === undefined ||
    stdbuf === undefined ||
    process.getuid?.() !== 0
  ) {
    process.stdout.write(`service: skipped (needs gpsd and ntpshmmon in ${gpsdRoot}, unshare, stdbuf and root)\n`);
    return;
  }
  const temp = await makeTempDir('bench-gps-service');
  const pairs: PtyPair[] = [];
  const writers: PacedWriter[] = [];
  try {
    // gpsd ships no time from a pty (its test harness's), so it reads a FIFO.
    const fifo = join(temp.path, 'gpsd.fifo');
    await runCommand('mkfifo', [fifo]);
    await mkdir(join(temp.path, 'htntp'));
    const htntpPty = await startPtyPair(socat, join(temp.path, 'htntp'));
    pairs.push(htntpPty);
    const nodeOptions = unitNodeOptions();
    // One namespace: gpsd's segments and htntp's stay away from the host's time daemon.
    const script = [
      "trap 'kill $G $H 2>/dev/null' EXIT INT TERM",
      `${gpsdPath} -N -n -b -S ${await freePort()} ${fifo} & G=$!`,
      `NODE_OPTIONS='${nodeOptions}' ${process.execPath} ${htntpBin} gps --device ${htntpPty.devicePath} ` +
        `--unit ${SERVICE_UNIT} --quiet & H=$!`,
      // ntpshmmon attaches the segments that exist when it starts.
      'sleep 2',
      `${stdbuf} -oL ${ntpshmmon} -t ${SERVICE_SECONDS + SERVICE_WARMUP}`,
    ].join('\n');
    const started = Date.now() / 1000;
    const monitor = startProcess(unshare, ['--ipc', 'sh', '-c', script], { encoding: 'latin1' });
    for (const path of [fifo, htntpPty.writerPath]) {
      const writer = new PacedWriter(path, {
        latency: 0.05,
        burst: (second) => ({ lines: burst(second), valid: true }),
      });
      // A FIFO opens for writing once gpsd has it open for reading.
      await waitFor(
        () => {
          try {
            writer.start();
            return true;
          } catch {
            return undefined;
          }
        },
        { what: `${path} to open for writing`, timeoutMs: 10_000, intervalMs: 50 },
      );
      writers.push(writer);
    }
    const exit = await monitor.exited;
    if (exit.code !== 0) throw new Error(`gpsd/htntp/ntpshmmon failed ${JSON.stringify(exit)}\n${monitor.output()}`);
    const samples = parseNtpshmmon(monitor.stdoutLines.join('\n'));
    // Each sample against its burst's write: the receive stamp in the segment, and when
    // ntpshmmon saw the sample there (the line-to-sample latency a daemon gets).
    const of = (unit: number, writer: PacedWriter, at: 'receive' | 'seen'): number[] => {
      const written = new Map(writer.written.map((entry) => [entry.second, entry.writeTime]));
      return samples.flatMap((sample) => {
        const writeTime = written.get(Math.round(sample.clock.sec + sample.clock.nsec / 1e9));
        return sample.unit === unit && writeTime !== undefined && writeTime.sec >= started + SERVICE_WARMUP
          ? [diffSeconds(sample[at], writeTime)]
          : [];
      });
    };
    const [gpsdWriter, htntpWriter] = writers as [PacedWriter, PacedWriter];
    const lines = [
      `burst write -> SHM sample, one burst a second for ${SERVICE_SECONDS} s after ${SERVICE_WARMUP} s, read by ` +
        `ntpshmmon (${of(0, gpsdWriter, 'seen').length} / ${of(SERVICE_UNIT, htntpWriter, 'seen').length} samples; ` +
        `load average ${(loadavg()[0] ?? 0).toFixed(2)})`,
    ];
    for (const at of ['receive', 'seen'] as const) {
      const gpsd = figures(of(0, gpsdWriter, at));
      const ours = figures(of(SERVICE_UNIT, htntpWriter, at));
      lines.push(
        `${(at === 'receive' ? 'write -> receive stamp' : 'write -> sample seen').padEnd(40)}` +
          ` ${'median'.padStart(11)} ${'p99'.padStart(11)} ${'worst'.padStart(11)} ${'mean'.padStart(11)}` +
          ` ${'>5 ms'.padStart(6)}`,
        row('gpsd 3.22 -N -n -b on a FIFO (anchor)', gpsd),
        row(`htntp gps on a pty (${nodeOptions})`, ours),
        `median ${((ours.median - gpsd.median) * 1000).toFixed(2)} ms behind gpsd; target <= 0.5 ` +
          `ms ${ours.median - gpsd.median <= 0.0005 ? 'met' : 'MISSED'}`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n\n`);
  } finally {
    for (const writer of writers) writer.stop();
    for (const pair of pairs) await pair.stop();
    await temp.remove();
  }
}

/** `reader` (the source beside a C read loop) and `service` (the CLI beside gpsd); both without arguments. */
async function main(sections: readonly string[]): Promise<void> {
  const socat = findTool('socat');
  if (socat === undefined) throw new Error('socat not found (apt-get install socat)');
  if (sections.length === 0 || sections.includes('reader')) await reader(socat);
  if (sections.length === 0 || sections.includes('service')) await service(socat);
}

async function reader(socat: string): Promise<void> {
  const temp = await makeTempDir('bench-gps');
  const build = cBuild('htntp-bench-gps-');
  const pair = await startPtyPair(socat, temp.path);
  try {
    const before = loadavg()[0] ?? 0;
    const anchor = figures(await anchorC(pair.devicePath, pair.writerPath, build));
    const htntp = await htntpSource(pair.devicePath, pair.writerPath);
    const ours = figures(htntp.latencies);
    process.stdout.write(
      [
        `GPS line arrival -> receive stamp on a socat pty, ${LINES} sentences ${INTERVAL_MS} ms apart (load ` +
          `average ${before.toFixed(2)} -> ${(loadavg()[0] ?? 0).toFixed(2)})`,
        `${''.padEnd(40)} ${'median'.padStart(11)} ${'p99'.padStart(11)} ${'worst'.padStart(11)}` +
          ` ${'mean'.padStart(11)} ${'>5 ms'.padStart(6)}`,
        row('C read() + clock_gettime (anchor)', anchor),
        row('htntp GpsSource (serialport data event)', ours),
        `median ${(ours.median / anchor.median).toFixed(2)}x the anchor; targets: median <= 1 ` +
          `ms ${ours.median <= 0.001 ? 'met' : 'MISSED'}, worst <= 5 ms ${ours.worst <= 0.005 ? 'met' : 'MISSED'}`,
        `lowLatency (ASYNC_LOW_LATENCY): ${htntp.lowLatency}`,
        '',
      ].join('\n'),
    );
  } finally {
    await pair.stop();
    build.cleanup();
    await temp.remove();
  }
}

if (process.argv[2] === 'writer') await writerMain(process.argv[3] ?? '');
else await main(process.argv.slice(2));
