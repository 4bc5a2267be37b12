// `npm run bench:http`: htntp next to Debian's htpdate on the same local servers (plain
// http: htpdate 1.3.7 has no TLS), at the same probes per server, for several true
// offsets and three symmetric delays. Then 20 servers at once, and what the probe's
// first-byte stamp gains over its head-parsed one, next to a raw socket. Loopback only;
// every step has a deadline. `real`: the same cases against Debian's real web servers;
// `scale`: one measurement over N ports of one nginx; `burst`: the probe client's cost per
// probe among many, next to a raw socket (bench/http-scale.ts).
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { realtime, systemClock } from '../src/clock.js';
import { parseHttpDate, utcYear } from '../src/sources/http/date.js';
import { measureOffset, SendSchedule } from '../src/sources/http/measure.js';
import {
  asymmetrySigma,
  median,
  posteriorMedian,
  posteriorQuantiles,
  symmetricLow,
  type ProbeGroup,
} from '../src/sources/http/posterior.js';
import { createConnection, probe, type ProbeConnection } from '../src/sources/http/probe.js';
import { carryInterval } from '../src/sources/http/source.js';
import { diffSeconds, toSeconds } from '../src/time.js';
import { burst, scale } from './http-scale.js';
import type { TimeServerConfig } from '../test/helpers/http/servers.js';
import { serve, stop } from '../test/helpers/http/spawn.js';
import { startRelayProcess, type LegDelay, type RelayProcess } from '../test/helpers/relay.js';
import { missingTools } from '../test/helpers/tools.js';
import { startWebServers, stopAll, type WebServerKind } from '../test/helpers/webservers.js';

const PROBES = 8;
// Fractions spread over the second (htpdate's bisection and ours meet every phase).
const OFFSETS = [
  0.1234567, -0.6180339, 0.4142136, 2.7182818, -1.7320508, 0.9876543, -0.0523599, 0.5772157, -3.3333333, 1.6487213,
];
const DELAYS: { name: string; delay?: TimeServerConfig['delay'] }[] = [
  { name: 'no delay' },
  { name: '20±5 ms each way', delay: { up: 20, down: 20, jitter: 5 } },
  { name: '50±10 ms each way', delay: { up: 50, down: 50, jitter: 10 } },
];
const execFileAsync = promisify(execFile);

const ms = (seconds: number): string => `${(seconds * 1000).toFixed(2)} ms`.padStart(11);

interface Row {
  tool: string;
  errors: number[];
  wall: number;
  note?: string;
}

/** With `steady`, a first measurement seeds the second's aim as a service 300 s later would. */
async function runHtntp(urls: string[], probes: number, steady = false, labels?: readonly string[]): Promise<Row> {
  const priors = steady
    ? (await measureOffset(urls, { probes })).servers.map((server) =>
        server.low === null || server.high === null
          ? undefined
          : carryInterval({ low: server.low, high: server.high }, 300),
      )
    : undefined;
  const result = await measureOffset(urls, { probes, ...(priors ? { priors } : {}) });
  const errors = result.servers.map((server, index) => Math.abs((server.offset ?? NaN) - (OFFSETS[index] ?? NaN)));
  const bounds = result.servers.map((server) => server.error ?? NaN);
  const outside = errors.flatMap((error, index) =>
    error <= (bounds[index] ?? 0) + 1e-6 ? [] : [labels?.[index] ?? `#${index}`],
  );
  const named = labels && outside.length > 0 ? ` (outside: ${outside.join(', ')})` : '';
  return {
    tool: `htntp -p ${probes}${steady ? ' (2nd)' : ''}`,
    errors,
    wall: result.duration,
    note:
      `truth inside bound ${errors.length - outside.length}/${errors.length}${named}, median bound ` +
      `±${(median(bounds) * 1000).toFixed(2)} ms`,
  };
}

async function runHtpdate(
  urls: string[],
  probes: number,
  truths: readonly number[] = OFFSETS,
): Promise<{ row: Row; offsets: number[] }> {
  const hosts = urls.map((url) => `127.0.0.1:${new URL(url).port}`);
  const started = realtime();
  const output = await execFileAsync('htpdate', ['-d', '-p', String(Math.min(probes, 9)), ...hosts], {
    timeout: 240_000,
  }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  const wall = diffSeconds(realtime(), started);
  const offsets = [...output.stdout.matchAll(/^offset: (-?[\d.]+)$/gm)].map((match) => Number(match[1]));
  const errors = offsets.map((offset, index) => Math.abs(offset - (truths[index] ?? NaN)));
  return {
    row: {
      tool: `htpdate -p ${probes}`,
      errors,
      wall,
      note: offsets.length === urls.length ? '' : `${offsets.length}/${urls.length} offsets parsed`,
    },
    offsets,
  };
}

function printRow(row: Row): void {
  console.log(
    `  ${row.tool.padEnd(19)} median |error| ${ms(median(row.errors))}   worst ${ms(Math.max(...row.errors))}   ` +
      `wall ${row.wall.toFixed(1).padStart(5)} s   ${row.note ?? ''}`,
  );
}

async function comparison(): Promise<void> {
  const help = await execFileAsync('htpdate', ['-h']).catch((error: { stdout?: string; stderr?: string }) => error);
  const version = help.stdout?.match(/htpdate version [\d.]+/)?.[0] ?? '';
  console.log(`htntp vs htpdate ${version}: ${OFFSETS.length} servers, true offsets ${OFFSETS.join(', ')} s`);
  for (const { name, delay } of DELAYS) {
    const served = await serve(OFFSETS.map((offset) => ({ offset, ...(delay ? { delay } : {}) })));
    try {
      console.log(`${name}:`);
      // One after the other: each tool alone on the servers and the CPU.
      printRow(await runHtntp(served.urls, PROBES));
      printRow(await runHtntp(served.urls, PROBES, true));
      printRow(await runHtntp(served.urls, PROBES + 2));
      printRow((await runHtpdate(served.urls, PROBES)).row);
    } finally {
      await stop(served);
    }
  }
}

// The published quantity: one estimate from servers that keep the same time (web servers
// keep UTC; the local clock is what is off). Several true offsets, each with its own
// servers; the cold measurement then seeds an aimed one, as a service's next would be.
const SHARED_TRUTHS = OFFSETS.slice(0, 6);
const SHARED_COUNTS = [10, 3];
const HTPDATE_TRUTHS = 3;

/** htpdate's own way of combining (upper median, values within 0.5 s of it, mean), without its halving below 1 s. */
function htpdateCombined(offsets: number[]): number {
  const sorted = [...offsets].sort((a, b) => a - b);
  const upper = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const kept = sorted.filter((offset) => Math.abs(offset - upper) <= 0.5);
  return kept.reduce((sum, offset) => sum + offset, 0) / kept.length;
}

/**
 * A cold measurement of servers sharing `truth`, then the aimed one it seeds as a service's
 * next would be: each combined estimate's error into rows[0] and rows[1], and whether the
 * truth was inside its bound into inside[0] and inside[1].
 */
async function coldAndAimed(urls: string[], truth: number, rows: Row[], inside: number[]): Promise<void> {
  const cold = await measureOffset(urls, { probes: PROBES });
  const priors = cold.servers.map((server) =>
    server.low === null || server.high === null
      ? undefined
      : carryInterval({ low: server.low, high: server.high }, 300),
  );
  const aimed = await measureOffset(urls, { probes: PROBES, priors });
  for (const [index, result] of [cold, aimed].entries()) {
    const error = Math.abs((result.offset ?? NaN) - truth);
    const row = rows[index] as Row;
    row.errors.push(error);
    row.wall = Math.max(row.wall, result.duration);
    if (error <= (result.error ?? -1) + 1e-6) inside[index] = (inside[index] ?? 0) + 1;
  }
}

async function sharedTruth(): Promise<void> {
  console.log(
    `servers sharing one time, the combined estimate (what is published), ${PROBES} probes, true ` +
      `offsets ${SHARED_TRUTHS.join(', ')} s:`,
  );
  for (const { name, delay } of DELAYS) {
    console.log(`${name}:`);
    for (const count of SHARED_COUNTS) {
      const rows: Row[] = [
        { tool: `htntp ${count} servers`, errors: [], wall: 0 },
        { tool: `htntp ${count} (2nd)`, errors: [], wall: 0 },
      ];
      const htpdate: Row = { tool: `htpdate ${count} servers`, errors: [], wall: 0 };
      const inside = [0, 0];
      for (const [run, truth] of SHARED_TRUTHS.entries()) {
        const served = await serve(
          Array.from({ length: count }, () => ({ offset: truth, ...(delay ? { delay } : {}) })),
        );
        try {
          await coldAndAimed(served.urls, truth, rows, inside);
          if (count <= 3 && run < HTPDATE_TRUTHS) {
            const measured = await runHtpdate(
              served.urls,
              PROBES,
              Array.from({ length: count }, () => truth),
            );
            htpdate.errors.push(Math.abs(htpdateCombined(measured.offsets) - truth));
            htpdate.wall = Math.max(htpdate.wall, measured.row.wall);
          }
        } finally {
          await stop(served);
        }
      }
      rows.forEach((row, index) =>
        printRow({ ...row, note: `truth inside bound ${inside[index]}/${row.errors.length}` }),
      );
      if (htpdate.errors.length > 0)
        printRow({ ...htpdate, note: `its combining rule, unhalved; ${htpdate.errors.length} offsets` });
    }
  }
}

/**
 * The floor of jittery paths: every probe (the first too) sent so that the middle of its
 * round trip lands on the server's true second boundary, as an aim that knew the answer
 * would. What is left is the legs' asymmetry, which each probe can only show as one bit.
 * (Without delay there is no such floor: there the answers are sharp and bisecting, not
 * sitting on the tick, is what gains.)
 */
async function oracleFloor(): Promise<void> {
  const counts = [3, 10];
  console.log(
    `floor: ${PROBES} probes per server aimed by an oracle at the true tick, true ` +
      `offsets ${SHARED_TRUTHS.join(', ')} s (groups of 3: the disjoint threes of the ten):`,
  );
  for (const { name, delay } of DELAYS.filter((entry) => entry.delay)) {
    const perServer: number[] = [];
    const combined = new Map<number, number[]>(counts.map((count) => [count, []]));
    for (const truth of SHARED_TRUTHS) {
      const served = await serve(
        Array.from({ length: Math.max(...counts) }, () => ({ offset: truth, ...(delay ? { delay } : {}) })),
      );
      try {
        const groups = await aimedAtTruth(served.urls, truth);
        perServer.push(
          ...groups.map((group) =>
            Math.abs(posteriorMedian(group.lows, group.sigma, { low: truth - 0.5, high: truth + 0.5 }) - truth),
          ),
        );
        for (const count of counts) {
          for (let first = 0; first + count <= groups.length; first += count) {
            const [joint = NaN] = posteriorQuantiles(
              groups.slice(first, first + count),
              { low: truth - 0.5, high: truth + 0.5 },
              [0.5],
            );
            combined.get(count)?.push(Math.abs(joint - truth));
          }
        }
      } finally {
        await stop(served);
      }
    }
    const cells = [
      `one server ${ms(median(perServer))}`,
      ...counts.map((count) => `${count} servers ${ms(median(combined.get(count) ?? []))}`),
    ];
    console.log(`  ${name.padEnd(18)} median |error|: ${cells.join('   ')}`);
  }
}

/** Probes every server of `urls` (one clock, `truth`) with the middle of each round trip at its true tick. */
async function aimedAtTruth(urls: string[], truth: number): Promise<ProbeGroup[]> {
  const connections = urls.map((url) => createConnection(new URL(url), { timeoutMs: 30_000 }));
  const signal = new AbortController().signal;
  try {
    // One unaimed request each: the connection and a first round trip to aim with.
    const rtts = await Promise.all(
      urls.map(async (url, index) => {
        const response = await probe(connections[index] as ProbeConnection, new URL(url), systemClock);
        return [diffSeconds(response.receiveTime, response.sendTime)];
      }),
    );
    const lows: number[][] = urls.map(() => []);
    const start = toSeconds(systemClock.realtime());
    const schedule = new SendSchedule(systemClock);
    for (let round = 0; round < PROBES; round += 1) {
      // Local time when the server's clock reads a whole second: t + truth is an integer.
      const tick = Math.ceil(start + truth) + 1 + round - truth;
      await Promise.all(
        urls.map(async (url, index) => {
          const ownRtts = rtts[index] ?? [];
          await schedule.at(tick - median(ownRtts) / 2, signal);
          const response = await probe(connections[index] as ProbeConnection, new URL(url), systemClock);
          const date = parseHttpDate(response.date ?? '', utcYear(response.sendTime.sec));
          const rtt = diffSeconds(response.receiveTime, response.sendTime);
          ownRtts.push(rtt);
          lows[index]?.push(symmetricLow(date?.seconds ?? NaN, response.sendTime, response.receiveTime));
        }),
      );
    }
    // The aim's round trips are the warm-up's and the probes'; the noise is the probes' alone.
    return lows.map((own, index) => ({ lows: own, sigma: asymmetrySigma((rtts[index] ?? []).slice(1)) }));
  } finally {
    await Promise.all(connections.map((connection) => connection.destroy().catch(() => {})));
  }
}

async function twentyServers(): Promise<void> {
  const truth = 0.3141593;
  const served = await serve(Array.from({ length: 20 }, () => ({ offset: truth })));
  try {
    const result = await measureOffset(served.urls, { probes: PROBES });
    const ok = result.servers.filter((server) => server.status === 'ok').length;
    console.log(
      `20 servers at once, ${PROBES} probes: ${result.duration.toFixed(2)} s (target <= ${PROBES + 2} s), ${ok}/20 ` +
        `ok, offset error ${ms(Math.abs((result.offset ?? NaN) - truth))} ± ${ms(result.error ?? NaN)}`,
    );
  } finally {
    await stop(served);
  }
}

/** Round trips of back-to-back HEADs on one keep-alive connection, three ways of timing b. */
async function firstByteTiming(): Promise<void> {
  const served = await serve([{ offset: 0 }]);
  const url = new URL(served.urls[0] ?? '');
  const count = 400;
  try {
    const connection = createConnection(url, { timeoutMs: 30_000 });
    const firstByte: number[] = [];
    const headComplete: number[] = [];
    for (let index = 0; index < count; index += 1) {
      const response = await probe(connection, url, systemClock);
      firstByte.push(diffSeconds(response.receiveTime, response.sendTime));
      headComplete.push(diffSeconds(response.headTime, response.sendTime));
    }
    await connection.destroy();
    const raw: number[] = [];
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    for (let index = 0; index < count; index += 1) {
      const sendTime = realtime();
      socket.write(`HEAD / HTTP/1.1\r\nhost: ${url.host}\r\ncache-control: no-cache\r\n\r\n`);
      const receiveTime = await new Promise<ReturnType<typeof realtime>>((resolve) =>
        socket.once('data', () => resolve(realtime())),
      );
      raw.push(diffSeconds(receiveTime, sendTime));
    }
    socket.destroy();
    const line = (name: string, values: number[]): string =>
      `  ${name.padEnd(44)} min ${ms(Math.min(...values))}  median ${ms(median(values))}`;
    console.log(`first-byte timing, ${count} HEADs on one loopback connection (round trip = b - a):`);
    console.log(line('probe: send -> first data (receiveTime)', firstByte));
    console.log(line('probe: send -> head parsed (headTime)', headComplete));
    console.log(line('raw socket write -> first data event', raw));
  } finally {
    await stop(served);
  }
}

// Debian's nginx, apache2 and lighttpd with clocks shifted by libfaketime, paths delayed by
// a relay process each (up and down legs with jitter, as the Node servers' delays above).
const REAL_KINDS: WebServerKind[] = ['nginx', 'apache2', 'lighttpd', 'nginx', 'apache2', 'lighttpd'];
const REAL_SHARED_TRUTHS = SHARED_TRUTHS.slice(0, 3);

interface RealSet {
  urls: string[];
  stop(): Promise<void>;
}

/** One real server per offset (kinds in turn), each behind its own delaying relay when `delay` is given. */
async function realServers(offsets: readonly number[], delay: TimeServerConfig['delay']): Promise<RealSet> {
  const servers = await startWebServers(
    offsets.map((offset, index) => ({ kind: REAL_KINDS[index % REAL_KINDS.length] as WebServerKind, offset })),
  );
  const relays: RelayProcess[] = [];
  try {
    if (delay) {
      const leg = (ms: number): LegDelay => ({ ms, jitterMs: delay.jitter ?? 0 });
      relays.push(
        ...(await Promise.all(
          servers.map((server) =>
            startRelayProcess({ targetPort: server.port, up: leg(delay.up), down: leg(delay.down) }),
          ),
        )),
      );
    }
  } catch (error) {
    await Promise.all([stopAll(servers), ...relays.map((relay) => relay.close())]);
    throw error;
  }
  return {
    urls: delay ? relays.map((relay) => relay.url) : servers.map((server) => server.url),
    stop: async () => {
      await Promise.all([stopAll(servers), ...relays.map((relay) => relay.close())]);
    },
  };
}

async function realWorld(): Promise<void> {
  const missing = missingTools(['nginx', 'apache2', 'lighttpd', 'htpdate']);
  if (missing !== undefined) {
    console.log(`real servers: skipped (${missing})`);
    return;
  }
  const offsets = OFFSETS.slice(0, REAL_KINDS.length);
  console.log(
    `real servers (${REAL_KINDS.join(', ')}; libfaketime clocks, relay-delayed paths), true ` +
      `offsets ${offsets.join(', ')} s, per server:`,
  );
  for (const { name, delay } of DELAYS) {
    const set = await realServers(offsets, delay);
    try {
      console.log(`${name}:`);
      const labels = offsets.map((_, index) => `${REAL_KINDS[index % REAL_KINDS.length] ?? ''}#${index}`);
      printRow(await runHtntp(set.urls, PROBES, false, labels));
      printRow(await runHtntp(set.urls, PROBES, true, labels));
      printRow((await runHtpdate(set.urls, PROBES, offsets)).row);
    } finally {
      await set.stop();
    }
  }
  console.log(
    `real servers sharing one time (${REAL_KINDS.length}: ${REAL_KINDS.join(', ')}), the combined estimate, true ` +
      `offsets ${REAL_SHARED_TRUTHS.join(', ')} s:`,
  );
  for (const { name, delay } of DELAYS) {
    const rows: Row[] = [
      { tool: `htntp ${REAL_KINDS.length} servers`, errors: [], wall: 0 },
      { tool: `htntp ${REAL_KINDS.length} (2nd)`, errors: [], wall: 0 },
      { tool: `htpdate ${REAL_KINDS.length} servers`, errors: [], wall: 0 },
    ];
    const inside = [0, 0];
    for (const truth of REAL_SHARED_TRUTHS) {
      const set = await realServers(
        REAL_KINDS.map(() => truth),
        delay,
      );
      try {
        await coldAndAimed(set.urls, truth, rows, inside);
        const measured = await runHtpdate(
          set.urls,
          PROBES,
          REAL_KINDS.map(() => truth),
        );
        const htpdate = rows[2] as Row;
        htpdate.errors.push(Math.abs(htpdateCombined(measured.offsets) - truth));
        htpdate.wall = Math.max(htpdate.wall, measured.row.wall);
      } finally {
        await set.stop();
      }
    }
    console.log(`${name}:`);
    rows
      .slice(0, 2)
      .forEach((row, index) => printRow({ ...row, note: `truth inside bound ${inside[index]}/${row.errors.length}` }));
    printRow({ ...(rows[2] as Row), note: 'its combining rule, unhalved' });
  }
}

// `npm run bench:http -- shared` (or any section names) runs just those sections.
const sections: Record<string, () => Promise<void>> = {
  comparison,
  shared: sharedTruth,
  floor: oracleFloor,
  twenty: twentyServers,
  timing: firstByteTiming,
  real: realWorld,
  scale,
  burst,
};
const chosen = process.argv.slice(2);
for (const [name, section] of Object.entries(sections)) {
  if (chosen.length === 0 || chosen.includes(name)) await section();
}
