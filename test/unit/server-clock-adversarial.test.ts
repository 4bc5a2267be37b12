// ServerClock against servers that fail, lag, lie, step and balance over disagreeing
// backends, and a provider that glitches, on loopback: bounds() is checked at every update
// event and every CHECK_MS between them, against the truth read on both sides of it. The
// promise is that no check excludes the truth; "no estimate" is always acceptable.
// HTNTP_ADVERSARIAL_RUNS runs each scenario that many times (seeds 1..n). HTNTP_ADVERSARIAL_LOG=<dir>
// writes a failing run's misses, the clock's log lines and the truth's steps there, timed.
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { monotonicRaw, realtime, type Clock } from '../../src/clock.js';
import { ServerClock, type ServerClockOptions } from '../../src/server-clock/server-clock.js';
import { addSeconds } from '../../src/time.js';
import { startTimeServer, type TimeServer, type TimeServerConfig } from '../helpers/http/servers.js';
import { seededRandom } from '../helpers/random.js';

const RUNS = Number(process.env.HTNTP_ADVERSARIAL_RUNS ?? 1);
const LOG_DIR = process.env.HTNTP_ADVERSARIAL_LOG;
/** How long each scenario runs, seconds: a first measurement and a few refreshes. */
const DURATION = Number(process.env.HTNTP_ADVERSARIAL_SECONDS ?? 14);
const CHECK_MS = 150;
/** A probe answered this long after a server stepped may still carry the old time. */
const STEP_GRACE_MS = 1000;

const realtimeMs = (): number => {
  const now = realtime();
  return now.sec * 1000 + now.nsec / 1e6;
};

interface Tally {
  checks: number;
  updates: number;
  excluded: number;
  /** Checks made before the first estimate (bounds() throws then). */
  unready: number;
  /** `step` events with clock 'server'. */
  serverSteps: number;
  misses: string[];
  /** What happened, timed from the start of the run: log lines, events, the truth's steps. */
  journal: string[];
}

/**
 * The server time as offsets from the true clock that a check may find: the current one, and during a step's grace the
 * one before.
 */
interface Truth {
  offsets(): number[];
}

interface Scenario {
  name: string;
  setup(
    random: () => number,
    started: Started,
  ): Promise<{ options: ServerClockOptions; truth: Truth; servers: TimeServer[] }>;
  /** Runs alongside the clock (steps, faults) until `signal` aborts. */
  drive?(clock: ServerClock, signal: AbortSignal): Promise<void>;
  /** The servers' clock steps: every run must report it (a `step` event with clock 'server'). */
  serverStep?: boolean;
}

interface Started {
  servers: TimeServer[];
}

async function serve(started: Started, config: TimeServerConfig): Promise<TimeServer> {
  const server = await startTimeServer(config);
  started.servers.push(server);
  return server;
}

/** The URL of a port nothing listens on (a server that was there and is gone). */
async function deadUrl(): Promise<string> {
  const server = await startTimeServer();
  await server.close();
  return server.url;
}

const fixed = (offset: number): Truth => ({ offsets: () => [offset] });

/** An offset that steps, with the old value still acceptable until the clock has had a chance to see the step. */
class SteppingTruth implements Truth {
  #offset: number;
  #previous: number | undefined;
  #steppedAt = -Infinity;
  /** Since the step: whether the clock emitted update or step with probes that postdate it. */
  #seen = true;
  /** Where a step is noted (the run's journal). */
  note: (line: string) => void = () => {};

  constructor(offset: number) {
    this.#offset = offset;
  }

  step(to: number): void {
    this.note(`the servers' time steps from ${this.#offset} to ${to} s`);
    this.#previous = this.#offset;
    this.#offset = to;
    this.#steppedAt = performance.now();
    this.#seen = false;
  }

  /** An update or step event: once past the grace, what follows must hold the new time. */
  event(): void {
    if (performance.now() - this.#steppedAt > STEP_GRACE_MS) this.#seen = true;
  }

  offsets(): number[] {
    return this.#seen || this.#previous === undefined ? [this.#offset] : [this.#offset, this.#previous];
  }
}

/** A realtime clock the scenario steps, over the real raw clock. */
function steppableClock(): Clock & { shift: number } {
  const clock = { shift: 0, realtime: () => addSeconds(realtime(), clock.shift), monotonicRaw };
  return clock;
}

const honest = (offset: number, random: () => number): TimeServerConfig => ({
  offset,
  delay: { up: 1, down: 1, jitter: 1 },
  random,
});

/** One honest server per offset, started in turn. */
async function serveHonest(started: Started, random: () => number, offsets: readonly number[]): Promise<TimeServer[]> {
  const list: TimeServer[] = [];
  for (const offset of offsets) list.push(await serve(started, honest(offset, random)));
  return list;
}

const scenarios: Scenario[] = [
  {
    name: 'three servers, two refusing connections, one whose Date lags its second by 600 ms',
    async setup(random, started) {
      const lagging = await serve(started, { ...honest(0.5, random), lag: 0.6 });
      return {
        options: { servers: [await deadUrl(), lagging.url, await deadUrl()] },
        truth: fixed(0.5),
        servers: [lagging],
      };
    },
  },
  {
    name: 'all three servers step +400 ms during refinement, and again -400 ms later',
    serverStep: true,
    async setup(random, started) {
      const servers = await serveHonest(started, random, [0.2, 0.2, 0.2]);
      return { options: { servers: servers.map((server) => server.url) }, truth: new SteppingTruth(0.2), servers };
    },
    async drive(clock, signal) {
      await once(clock, 'update', { signal });
      await sleep(1500, undefined, { signal });
      const truth = stepping.get(clock);
      truth?.step(0.6);
      for (const server of servers.get(clock) ?? []) server.setOffset(0.6);
      await sleep(6000, undefined, { signal });
      truth?.step(0.2);
      for (const server of servers.get(clock) ?? []) server.setOffset(0.2);
    },
  },
  {
    name: 'two honest servers and a load balancer over backends 250 ms apart',
    async setup(random, started) {
      const list = [
        await serve(started, honest(-0.3, random)),
        await serve(started, { ...honest(-0.3, random), split: [-0.3, -0.05] }),
        await serve(started, honest(-0.3, random)),
      ];
      return { options: { servers: list.map((server) => server.url) }, truth: fixed(-0.3), servers: list };
    },
  },
  {
    name: 'three honest servers and two load balancers over backends 400 ms apart',
    async setup(random, started) {
      const list = [
        await serve(started, { ...honest(0.7, random), split: [0.3, 0.7] }),
        await serve(started, honest(0.7, random)),
        await serve(started, { ...honest(0.7, random), split: [0.7, 1.1] }),
        await serve(started, honest(0.7, random)),
        await serve(started, honest(0.7, random)),
      ];
      return { options: { servers: list.map((server) => server.url) }, truth: fixed(0.7), servers: list };
    },
  },
  {
    name: 'a provider with 5-25 ms of delay and 10 % glitches (wrong, stale, thrown)',
    async setup(random) {
      const offsetMs = 1234.5;
      let last = 0;
      const provider = async (): Promise<number> => {
        await sleep(5 + 20 * random());
        const value = Math.floor(realtimeMs() + offsetMs);
        const roll = random();
        if (roll < 0.033) return value + (random() - 0.5) * 4000;
        if (roll < 0.066 && last > 0) return last;
        if (roll < 0.1) throw new Error('glitch');
        last = value;
        await sleep(5 + 20 * random());
        return value;
      };
      return { options: { provider, probes: 8 }, truth: fixed(offsetMs / 1000), servers: [] };
    },
  },
  {
    name: 'the local realtime clock stepped +2 s, then -1.5 s, under three honest servers',
    async setup(random, started) {
      const list = await serveHonest(started, random, [0.1, 0.1, 0.1]);
      const clock = steppableClock();
      localClocks.set(list[0] as TimeServer, clock);
      return { options: { servers: list.map((server) => server.url), clock }, truth: fixed(0.1), servers: list };
    },
    async drive(clock, signal) {
      const local = localClocks.get(servers.get(clock)?.[0] as TimeServer);
      if (local === undefined) return;
      await once(clock, 'update', { signal });
      await sleep(2000, undefined, { signal });
      local.shift += 2;
      await sleep(4000, undefined, { signal });
      local.shift -= 1.5;
    },
  },
  {
    name: 'two liars short of a majority (+400 ms together, and -300 ms) among five',
    async setup(random, started) {
      const list = await serveHonest(started, random, [0.05, 0.45, 0.05, 0.45, 0.05]);
      return { options: { servers: list.map((server) => server.url) }, truth: fixed(0.05), servers: list };
    },
  },
  {
    name: 'one liar short of a majority (-300 ms) among three',
    async setup(random, started) {
      const list = await serveHonest(started, random, [0.05, -0.25, 0.05]);
      return { options: { servers: list.map((server) => server.url) }, truth: fixed(0.05), servers: list };
    },
  },
];

const stepping = new WeakMap<ServerClock, SteppingTruth>();
const servers = new WeakMap<ServerClock, TimeServer[]>();
const localClocks = new WeakMap<TimeServer, Clock & { shift: number }>();

/** One bounds() check against the truth read around it; undefined before a first estimate. */
function check(clock: ServerClock, truth: Truth, tally: Tally, at: string): void {
  const offsets = truth.offsets();
  const before = realtimeMs();
  let bounds: { earliest: number; latest: number };
  try {
    bounds = clock.bounds();
  } catch {
    tally.unready += 1;
    return;
  }
  const after = realtimeMs();
  tally.checks += 1;
  const holds = offsets.some(
    (offset) => bounds.earliest <= after + offset * 1000 && bounds.latest >= before + offset * 1000,
  );
  if (holds) return;
  tally.excluded += 1;
  if (tally.misses.length < 5) {
    const truthMs = before + (offsets[0] ?? 0) * 1000;
    tally.misses.push(
      `${at}: [${(bounds.earliest - truthMs).toFixed(1)}, ${(bounds.latest - truthMs).toFixed(1)}] ms from the truth`,
    );
  }
}

async function runScenario(scenario: Scenario, seed: number): Promise<Tally> {
  const random = seededRandom(seed);
  const started: Started = { servers: [] };
  const tally: Tally = { checks: 0, updates: 0, excluded: 0, unready: 0, serverSteps: 0, misses: [], journal: [] };
  const stop = new AbortController();
  try {
    const { options, truth, servers: list } = await scenario.setup(random, started);
    const t0 = performance.now();
    const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(3)} s`;
    const note = (line: string): void => {
      if (LOG_DIR !== undefined) tally.journal.push(`${elapsed()} ${line}`);
    };
    const write =
      (level: string) =>
      (event: string, fields?: Record<string, unknown>): void =>
        note(`${level} ${event} ${JSON.stringify(fields ?? {})}`);
    const logger = { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
    const clock = new ServerClock({ refresh: 1, probes: 4, logger, ...options, signal: stop.signal });
    servers.set(clock, list);
    if (truth instanceof SteppingTruth) {
      stepping.set(clock, truth);
      truth.note = note;
    }
    clock.on('error', () => {});
    clock.on('update', (update) => {
      if (truth instanceof SteppingTruth) truth.event();
      tally.updates += 1;
      check(clock, truth, tally, `update ${update.source} ${update.survivors}/${update.candidates} at ${elapsed()}`);
    });
    clock.on('step', (step) => {
      note(`step event ${JSON.stringify(step)}`);
      if (step.clock === 'server') tally.serverSteps += 1;
      if (truth instanceof SteppingTruth) truth.event();
    });
    const timer = setInterval(() => check(clock, truth, tally, `check at ${elapsed()}`), CHECK_MS);
    const driving = scenario.drive?.(clock, stop.signal).catch(() => {});
    await sleep(DURATION * 1000);
    clearInterval(timer);
    const closed = once(clock, 'close');
    stop.abort();
    await Promise.all([driving, closed]);
  } finally {
    stop.abort();
    await Promise.all(started.servers.map((server) => server.close()));
  }
  return tally;
}

const results = new Map<string, Tally>();

describe('ServerClock under adversarial servers: no bound excludes the truth', () => {
  afterAll(() => {
    const total = [...results.values()].reduce(
      (sum, tally) => ({ checks: sum.checks + tally.checks, excluded: sum.excluded + tally.excluded }),
      { checks: 0, excluded: 0 },
    );
    console.log(
      `server-clock adversarial: ${total.excluded} of ${total.checks} checks excluded the truth (${RUNS} run(s) a ` +
        `scenario, ${DURATION} s each)`,
    );
    for (const [name, tally] of results)
      console.log(
        `  ${tally.excluded}/${tally.checks} (updates ${tally.updates}, server steps ${tally.serverSteps}, before ` +
          `ready ${tally.unready}) ${name}${tally.misses.length ? `\n    ${tally.misses.join('\n    ')}` : ''}`,
      );
  });

  it.concurrent.each(scenarios.map((scenario) => [scenario.name, scenario] as const))(
    '%s',
    { timeout: RUNS * (DURATION + 20) * 1000 },
    async (_name, scenario) => {
      const tally: Tally = { checks: 0, updates: 0, excluded: 0, unready: 0, serverSteps: 0, misses: [], journal: [] };
      for (let seed = 1; seed <= RUNS; seed += 1) {
        const run = await runScenario(scenario, seed);
        const unreported = scenario.serverStep === true && run.serverSteps === 0;
        if (LOG_DIR !== undefined && (run.excluded > 0 || unreported)) {
          const file = `${scenario.name.slice(0, 32).replace(/\W+/g, '-')}-seed${seed}-${Date.now()}.log`;
          writeFileSync(join(LOG_DIR, file), [...run.misses, ...run.journal].join('\n'));
        }
        tally.checks += run.checks;
        tally.updates += run.updates;
        tally.excluded += run.excluded;
        tally.unready += run.unready;
        if (scenario.serverStep && run.serverSteps === 0)
          tally.misses.push(`seed ${seed}: the servers' step was never reported`);
        tally.serverSteps += run.serverSteps;
        tally.misses.push(...run.misses.map((miss) => `seed ${seed} ${miss}`));
      }
      results.set(scenario.name, tally);
      // Checks ran (a clock that never published would pass vacuously only where no estimate is sound).
      expect(tally.checks + tally.unready).toBeGreaterThan(0);
      expect(tally.misses).toEqual([]);
      expect(tally.excluded).toBe(0);
    },
  );
});
