// `npm run bench:http -- scale`: the HTTP source at scale. One real nginx listening on N
// loopback ports, its clock +0.250 s off through libfaketime, measured by one
// `htntp http --once --dry-run --json` over all N ports (N servers to htntp: each port is
// its own connection, deduplicated by port). Per run: wall, CPU of the process (user +
// system, from the shell's `times`), |error| of the estimate against the true offset and
// the published bound. HTNTP_BENCH_SCALE="20 50" chooses N, HTNTP_BENCH_RUNS the runs,
// HTNTP_BENCH_NODE_ARGS options for node before the CLI (e.g. `--cpu-prof`). `burst`: what
// one probe costs the event loop among many, next to a raw socket.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect as connectSocket, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { realtime, systemClock } from '../src/clock.js';
import { createConnection, probe, type ProbeConnection } from '../src/sources/http/probe.js';
import { diffSeconds } from '../src/time.js';
import { htntpBin, makeTempDir, startProcess } from '../test/helpers/process.js';
import { findTool, missingTools } from '../test/helpers/tools.js';
import { waitFor } from '../test/helpers/wait.js';
import { fakeTimeSpec } from '../test/helpers/webservers.js';

const TRUTH = 0.25;
const COUNTS = (process.env.HTNTP_BENCH_SCALE ?? '20 50').split(/\s+/).filter(Boolean).map(Number);
const RUNS = Number(process.env.HTNTP_BENCH_RUNS ?? 3);
const NODE_ARGS = (process.env.HTNTP_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const execFileAsync = promisify(execFile);

/** `count` ports that were free a moment ago, all held at once so that none repeats. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let index = 0; index < count; index += 1) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => (server.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** One nginx (one worker, one clock) on `count` ports; the URLs and a stop. */
export async function nginxOnPorts(count: number, offset: number): Promise<{ urls: string[]; stop(): Promise<void> }> {
  const dir = await makeTempDir('scale-nginx');
  const ports = await freePorts(count);
  await mkdir(join(dir.path, 'www'), { recursive: true });
  await mkdir(join(dir.path, 'tmp'), { recursive: true });
  await writeFile(join(dir.path, 'www', 'index.html'), 'htntp\n');
  const conf = join(dir.path, 'nginx.conf');
  await writeFile(
    conf,
    `daemon off;
master_process on;
worker_processes 1;
user root;
pid ${dir.path}/nginx.pid;
error_log stderr warn;
env FAKETIME; env LD_PRELOAD;
events { worker_connections ${count * 4 + 64}; }
http {
  access_log off;
  client_body_temp_path ${dir.path}/tmp; proxy_temp_path ${dir.path}/tmp; fastcgi_temp_path ${dir.path}/tmp;
  uwsgi_temp_path ${dir.path}/tmp; scgi_temp_path ${dir.path}/tmp;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  server {
${ports.map((port) => `    listen 127.0.0.1:${port};`).join('\n')}
    root ${dir.path}/www;
  }
}
`,
  );
  const env = { ...process.env, LD_PRELOAD: findTool('libfaketime') ?? '', FAKETIME: fakeTimeSpec(offset) };
  const nginx = startProcess(findTool('nginx') ?? 'nginx', ['-p', dir.path, '-c', conf, '-e', 'stderr'], {
    cwd: dir.path,
    env,
  });
  const stop = async (): Promise<void> => {
    await nginx.stop('SIGTERM', 5_000);
    await dir.remove();
  };
  try {
    const last = ports[ports.length - 1] ?? 0;
    await waitFor(
      async () =>
        nginx.exit()
          ? Promise.reject(new Error(`nginx exited:\n${nginx.output()}`))
          : fetch(`http://127.0.0.1:${last}/`).then(
              () => true,
              () => undefined,
            ),
      {
        what: `nginx to accept on ${count} ports`,
        timeoutMs: 15_000,
        intervalMs: 50,
      },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls: ports.map((port) => `http://127.0.0.1:${port}/`), stop };
}

interface Run {
  wall: number;
  cpu: number;
  error: number;
  bound: number;
  ok: number;
}

/** Seconds from the `times` builtin's `0m1.230000s` (or `1m2.5s`). */
const timesSeconds = (text: string): number => {
  const match = /(\d+)m([\d.]+)s/.exec(text);
  return match ? Number(match[1]) * 60 + Number(match[2]) : Number.NaN;
};

/** One `--once --dry-run --json` measurement, timed by the shell that runs it. */
async function once(urls: string[]): Promise<Run> {
  const script = `"$@" > "$HTNTP_SCALE_OUT"; status=$?; times >&2; exit $status`;
  const dir = await makeTempDir('scale-run');
  const out = join(dir.path, 'result.json');
  try {
    const started = realtime();
    const { stderr } = await execFileAsync(
      'sh',
      [
        '-c',
        script,
        'sh',
        process.execPath,
        ...NODE_ARGS,
        htntpBin,
        'http',
        '--once',
        '--dry-run',
        '--json',
        '--quiet',
        ...urls,
      ],
      {
        env: { ...process.env, HTNTP_SCALE_OUT: out },
        timeout: 120_000,
        maxBuffer: 1 << 24,
      },
    );
    const wall = diffSeconds(realtime(), started);
    // The second line of `times`: user and system time of the shell's children.
    const children = stderr.trim().split('\n').at(-1)?.split(/\s+/) ?? [];
    const cpu = timesSeconds(children[0] ?? '') + timesSeconds(children[1] ?? '');
    const result = JSON.parse(await readFile(out, 'utf8')) as {
      offset: number | null;
      error: number | null;
      servers: { status: string }[];
    };
    return {
      wall,
      cpu,
      error: Math.abs((result.offset ?? Number.NaN) - TRUTH),
      bound: result.error ?? Number.NaN,
      ok: result.servers.filter((server) => server.status === 'ok').length,
    };
  } finally {
    await dir.remove();
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? NaN)
    : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
};
const ms = (seconds: number): string => `${(seconds * 1000).toFixed(2)} ms`;

export async function scale(): Promise<void> {
  const missing = missingTools(['nginx', 'libfaketime']);
  if (missing !== undefined) {
    console.log(`scale: skipped (${missing})`);
    return;
  }
  console.log(
    `scale: one nginx on N ports, clock ${fakeTimeSpec(TRUTH)}; node ${[process.version, ...NODE_ARGS].join(' ')} ` +
      `htntp http --once --dry-run --json, ${RUNS} runs per N`,
  );
  console.log(
    `${'N'.padStart(4)}  ${'run'.padStart(3)}  ${'wall s'.padStart(7)}  ${'CPU s'.padStart(6)} ` +
      ` ${'|error|'.padStart(10)}  ${'bound ±'.padStart(10)}  ok   load`,
  );
  for (const count of COUNTS) {
    const served = await nginxOnPorts(count, TRUTH);
    const runs: Run[] = [];
    try {
      for (let run = 1; run <= RUNS; run += 1) {
        const result = await once(served.urls);
        runs.push(result);
        const load = loadavg()[0]?.toFixed(2) ?? '';
        console.log(
          `${String(count).padStart(4)}  ${String(run).padStart(3)}  ${result.wall.toFixed(2).padStart(7)} ` +
            ` ${result.cpu.toFixed(2).padStart(6)}  ${ms(result.error).padStart(10)} ` +
            ` ${ms(result.bound).padStart(10)}  ${String(result.ok).padStart(2)}   ${load}`,
        );
      }
    } finally {
      await served.stop();
    }
    const of = (pick: (run: Run) => number): number[] => runs.map(pick);
    console.log(
      `${String(count).padStart(4)}  median: wall ${median(of((run) => run.wall)).toFixed(2)} s, ` +
        `CPU ${median(of((run) => run.cpu)).toFixed(2)} s ` +
        `(${((median(of((run) => run.cpu)) / count) * 1000).toFixed(0)} ms per server), ` +
        `|error| ${ms(median(of((run) => run.error)))} (worst ${ms(Math.max(...of((run) => run.error)))}), bound ` +
        `±${ms(median(of((run) => run.bound)))} (${ms(Math.min(...of((run) => run.bound)))}` +
        `..${ms(Math.max(...of((run) => run.bound)))})`,
    );
  }
}

/** A bare HEAD on a kept-alive socket, done at the answer head's end: the anchor the probe client is held against. */
class RawHead {
  readonly #socket: Socket;
  #pending = '';
  #done: (() => void) | undefined;

  constructor(url: URL) {
    this.#socket = connectSocket({ host: url.hostname, port: Number(url.port) }).setNoDelay(true);
    this.#socket.on('data', (chunk: Buffer) => {
      this.#pending += chunk.toString('latin1');
      const end = this.#pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.#pending = this.#pending.slice(end + 4);
      this.#done?.();
    });
  }

  send(url: URL): Promise<void> {
    return new Promise((resolve) => {
      this.#done = resolve;
      this.#socket.write(`HEAD ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\ncache-control: no-cache\r\n\r\n`);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/**
 * `npm run bench:http -- burst`: what one probe costs the event loop when many go at once, as in
 * a measurement's last aimed second. N ports of one nginx (HTNTP_BENCH_SCALE's first N), every
 * server probed 3 times back to back, all at once; the loop's busy time and the process's CPU
 * per probe, next to a raw socket writing the same HEAD and reading to the head's end.
 */
export async function burst(): Promise<void> {
  const missing = missingTools(['nginx', 'libfaketime']);
  if (missing !== undefined) {
    console.log(`burst: skipped (${missing})`);
    return;
  }
  const count = COUNTS[0] ?? 50;
  const perServer = 3;
  const rounds = 10;
  const served = await nginxOnPorts(count, TRUTH);
  const urls = served.urls.map((url) => new URL(url));
  const connections = urls.map((url) => createConnection(url, { timeoutMs: 10_000 }));
  const raws = urls.map((url) => new RawHead(url));
  const ways = {
    'probe (client.ts)': (index: number) =>
      probe(connections[index] as ProbeConnection, urls[index] as URL, systemClock),
    'raw socket': (index: number) => (raws[index] as RawHead).send(urls[index] as URL),
  };
  const costs = new Map<string, { busy: number[]; cpu: number[] }>();
  try {
    for (let round = 0; round < rounds; round += 1) {
      for (const [way, one] of Object.entries(ways)) {
        const utilization = performance.eventLoopUtilization();
        const cpu = process.cpuUsage();
        await Promise.all(
          urls.map(async (_url, index) => {
            for (let probeIndex = 0; probeIndex < perServer; probeIndex += 1) await one(index);
          }),
        );
        const { active } = performance.eventLoopUtilization(utilization);
        const used = process.cpuUsage(cpu);
        // The first two rounds open the connections and warm the code up.
        if (round < 2) continue;
        const cost = costs.get(way) ?? { busy: [], cpu: [] };
        cost.busy.push(active / 1000 / (count * perServer));
        cost.cpu.push((used.user + used.system) / 1e6 / (count * perServer));
        costs.set(way, cost);
      }
      await sleep(500);
    }
  } finally {
    await Promise.all(connections.map((connection) => connection.destroy()));
    for (const raw of raws) raw.close();
    await served.stop();
  }
  console.log(
    `burst: ${count} ports of one nginx, ${perServer} HEADs each back to back, all at once; ` +
      `${rounds - 2} rounds after 2 (load ${loadavg()[0]?.toFixed(2)})`,
  );
  for (const [way, { busy, cpu }] of costs) {
    const range = (values: number[]): string =>
      `${ms(median(values))} (${ms(Math.min(...values))}..${ms(Math.max(...values))})`;
    console.log(`  ${way.padEnd(18)} loop busy per probe ${range(busy)}, CPU per probe ${range(cpu)}`);
  }
}
