// `npm run bench:server-clock`: what ServerClock costs and how soon it knows. now() next
// to Date.now() and performance.now() (target: at most 200 ns), then ready() time and
// bound width on local Date servers (in a child process) at several path delays, with
// measureOffset(), the one-shot measurement, as the anchor. Loopback only.
import { once } from 'node:events';
import { monotonicRaw, realtime } from '../src/clock.js';
import { ServerClock, type ServerClockUpdate } from '../src/server-clock/server-clock.js';
import { median } from '../src/sources/http/posterior.js';
import { measureOffset } from '../src/sources/http/measure.js';
import { diffSeconds } from '../src/time.js';
import type { TimeServerConfig } from '../test/helpers/http/servers.js';
import { serve, stop } from '../test/helpers/http/spawn.js';

const SECONDS = Number(process.env.HTNTP_BENCH_SECONDS ?? 0.5);
const ROUNDS = Number(process.env.HTNTP_BENCH_ROUNDS ?? 5);
const RUNS = Number(process.env.HTNTP_BENCH_RUNS ?? 5);
const BATCH = 10_000;
const OFFSET = 1.2345678;

/** ns per call of `read`, the best of ROUNDS rounds of about SECONDS each (the machine is shared). */
function costOf(read: () => number): number {
  let sink = 0;
  const round = (): number => {
    let calls = 0;
    const start = monotonicRaw();
    let elapsed: number;
    do {
      for (let index = 0; index < BATCH; index += 1) sink += read();
      calls += BATCH;
      elapsed = diffSeconds(monotonicRaw(), start);
    } while (elapsed < SECONDS);
    return (elapsed * 1e9) / calls;
  };
  round();
  const best = Math.min(...Array.from({ length: ROUNDS }, round));
  if (sink === 42) console.log('');
  return best;
}

const realtimeMs = (): number => {
  const now = realtime();
  return now.sec * 1000 + now.nsec / 1e6;
};

async function readCost(): Promise<void> {
  const clock = new ServerClock({ provider: () => realtimeMs() + OFFSET * 1000 });
  await clock.ready();
  const rows: [string, () => number][] = [
    ['Date.now()', () => Date.now()],
    ['performance.now()', () => performance.now()],
    ['ServerClock#now()', () => clock.now()],
    ['ServerClock#bounds().latest', () => clock.bounds().latest],
    ['ServerClock#offset', () => clock.offset],
  ];
  const costs = rows.map(([, read]) => costOf(read));
  const anchor = costs[0] ?? NaN;
  console.log(`read cost, best of ${ROUNDS} rounds of ${SECONDS} s (target: now() <= 200 ns):`);
  rows.forEach(([name], index) => {
    const ns = costs[index] ?? NaN;
    console.log(
      `  ${name.padEnd(30)} ${ns.toFixed(1).padStart(7)} ns   ${(ns / anchor).toFixed(2).padStart(5)}x Date.now()`,
    );
  });
  clock.close();
  await once(clock, 'close');
}

const ms = (seconds: number): string => `${(seconds * 1000).toFixed(1)} ms`;

interface Run {
  readyMs: number;
  readyError: number;
  refinedError: number;
  refinedMs: number;
  inside: boolean;
  nowError: number;
}

/** One clock from construction to its last refinement; truth = realtime + OFFSET. */
async function runOnce(urls: string[]): Promise<Run> {
  const start = performance.now();
  // The test servers stamp every answer: no allowance for a lagging Date with one server.
  const clock = new ServerClock({ servers: urls, dateLag: 0 });
  let last: ServerClockUpdate | undefined;
  let measured: () => void = () => {};
  const refined = new Promise<void>((resolve) => {
    measured = resolve;
  });
  let lastMs = 0;
  let inside = true;
  let nowError = 0;
  clock.on('update', (update) => {
    last = update;
    lastMs = performance.now() - start;
    const before = realtimeMs() + OFFSET * 1000;
    const { earliest, latest } = clock.bounds();
    const now = clock.now();
    const after = realtimeMs() + OFFSET * 1000;
    inside &&= earliest <= after && latest >= before;
    nowError = Math.max(nowError, Math.abs(now - (before + after) / 2));
    if (update.source === 'refine') measured();
  });
  await clock.ready();
  const readyMs = performance.now() - start;
  const readyError = last?.error ?? NaN;
  // The first measurement's end (a sweep, then a probe a second); the first refresh is 270+ s away.
  await Promise.race([refined, new Promise((resolve) => setTimeout(resolve, 20_000))]);
  clock.close();
  await once(clock, 'close');
  return { readyMs, readyError, refinedError: last?.error ?? NaN, refinedMs: lastMs, inside, nowError };
}

async function readyTimes(): Promise<void> {
  const paths: { name: string; configs: TimeServerConfig[] }[] = [
    { name: '1 server, no delay', configs: [{ offset: OFFSET }] },
    { name: '1 server, 2 ms each way', configs: [{ offset: OFFSET, delay: { up: 2, down: 2 } }] },
    {
      name: '3 servers, 5±1 ms each way',
      configs: Array.from({ length: 3 }, () => ({ offset: OFFSET, delay: { up: 5, down: 5, jitter: 1 } })),
    },
    {
      name: '3 servers, 20±5 ms each way',
      configs: Array.from({ length: 3 }, () => ({ offset: OFFSET, delay: { up: 20, down: 20, jitter: 5 } })),
    },
  ];
  console.log(
    `\nready() and bounds, ${RUNS} runs per row, true offset ${OFFSET} s (ServerClock: half-width at ready -> at ` +
      `the first measurement's end; anchor: measureOffset(), 8 probes):`,
  );
  for (const { name, configs } of paths) {
    const served = await serve(configs);
    try {
      const runs: Run[] = [];
      for (let run = 0; run < RUNS; run += 1) {
        // Each run starts at its own phase of the servers' second: how long the first sweep
        // takes depends on where their tick falls.
        await new Promise((resolve) => setTimeout(resolve, ((run + Math.random()) / RUNS) * 1000));
        runs.push(await runOnce(served.urls));
      }
      const anchor = await measureOffset(served.urls);
      const anchorError = Math.abs((anchor.offset ?? NaN) - OFFSET);
      const col = (values: number[], unit: (value: number) => string): string =>
        `${unit(median(values))} (max ${unit(Math.max(...values))})`;
      console.log(`  ${name}:`);
      console.log(
        `    ServerClock ready() ${col(
          runs.map((run) => run.readyMs / 1000),
          ms,
        )}, ±${col(
          runs.map((run) => run.readyError),
          ms,
        )} -> ±${col(
          runs.map((run) => run.refinedError),
          ms,
        )} at ${col(
          runs.map((run) => run.refinedMs / 1000),
          ms,
        )}`,
      );
      console.log(
        `      |now() - truth| worst ${ms(Math.max(...runs.map((run) => run.nowError)) / 1000)}, truth inside ` +
          `bounds at every update ${runs.filter((run) => run.inside).length}/${runs.length}`,
      );
      console.log(
        `    measureOffset()     ${ms(anchor.duration)}, ±${ms(anchor.error ?? NaN)}, |error| ${ms(anchorError)}`,
      );
    } finally {
      await stop(served);
    }
  }
}

// `npm run bench:server-clock -- cost` (or `ready`) runs just that section.
const sections: Record<string, () => Promise<void>> = { cost: readCost, ready: readyTimes };
const chosen = process.argv.slice(2);
for (const [name, section] of Object.entries(sections)) {
  if (chosen.length === 0 || chosen.includes(name)) await section();
}
