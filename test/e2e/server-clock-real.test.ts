// ServerClock against Debian's own web servers on 127.0.0.1, their clocks shifted by
// libfaketime: nginx (Date cached per event-loop turn) and apache2 (stamped per request)
// agree and are followed through a step of one server's clock; haproxy alternating two
// clocks on one connection is "not one clock" and outvoted.
import { once } from 'node:events';
import { afterEach, expect, it } from 'vitest';
import { realtime } from '../../src/clock.js';
import { ServerClock, type ServerClockUpdate } from '../../src/server-clock/server-clock.js';
import { describeE2e } from '../helpers/tools.js';
import { startBalancer, startWebServers, stopAll, type RealProcess } from '../helpers/webservers.js';

const OFFSET = 0.4321;

const started: RealProcess[] = [];
const clocks: ServerClock[] = [];
afterEach(async () => {
  await Promise.all(
    clocks.splice(0).map(async (clock) => {
      const closed = once(clock, 'close');
      clock.close();
      await closed;
    }),
  );
  await stopAll(started.splice(0));
});

const realtimeMs = (): number => {
  const now = realtime();
  return now.sec * 1000 + now.nsec / 1e6;
};

function expectBoundsHoldTruth(clock: ServerClock, offset: number): void {
  const before = realtimeMs() + offset * 1000;
  const { earliest, latest } = clock.bounds();
  const after = realtimeMs() + offset * 1000;
  expect(earliest).toBeLessThanOrEqual(after);
  expect(latest).toBeGreaterThanOrEqual(before);
}

function nextUpdate(clock: ServerClock, accept: (update: ServerClockUpdate) => boolean): Promise<ServerClockUpdate> {
  return new Promise((resolve) => {
    const listener = (update: ServerClockUpdate): void => {
      if (!accept(update)) return;
      clock.off('update', listener);
      resolve(update);
    };
    clock.on('update', listener);
  });
}

describeE2e('ServerClock on real web servers', ['nginx', 'apache2'], () => {
  it('holds the truth from nginx and apache2, and follows a step of their clocks', async () => {
    const servers = await startWebServers([
      { kind: 'nginx', offset: OFFSET, steppable: true },
      { kind: 'apache2', offset: OFFSET, steppable: true },
      { kind: 'nginx', offset: OFFSET, steppable: true },
    ]);
    started.push(...servers);
    const clock = new ServerClock({ servers: servers.map((server) => server.url), refresh: 1, probes: 3 });
    clocks.push(clock);
    const [first] = await Promise.all([nextUpdate(clock, () => true), clock.ready()]);
    expect(first.survivors).toBeGreaterThanOrEqual(2);
    expect(first.error).toBeLessThan(0.2);
    expectBoundsHoldTruth(clock, OFFSET);
    await nextUpdate(clock, (update) => update.source === 'measure');
    expectBoundsHoldTruth(clock, OFFSET);
    // Every server's clock jumps 2 s: the new bounds miss the held ones, a server step is
    // reported, and a new measurement makes the bounds afresh.
    const stepped = new Promise<number>((resolve) =>
      clock.on('step', (step) => step.clock === 'server' && resolve(step.step)),
    );
    await Promise.all(servers.map((server) => server.step(OFFSET + 2)));
    await nextUpdate(clock, (update) => update.offset > OFFSET + 1);
    expectBoundsHoldTruth(clock, OFFSET + 2);
    expect(await stepped).toBeCloseTo(2, 0);
  }, 90_000);
});

describeE2e('ServerClock behind haproxy over two clocks', ['haproxy', 'nginx'], () => {
  it('rejects the balancer (not one clock, or outside the majority) and keeps to the majority', async () => {
    const backends = await startWebServers([
      { kind: 'nginx', offset: OFFSET },
      { kind: 'nginx', offset: OFFSET + 0.5 },
      { kind: 'nginx', offset: OFFSET },
      { kind: 'nginx', offset: OFFSET },
    ]);
    started.push(...backends);
    const balancer = await startBalancer(backends.slice(0, 2));
    started.push(balancer);
    let sawNotOneClock: () => void = () => {};
    const notOneClock = new Promise<void>((resolve) => {
      sawNotOneClock = resolve;
    });
    const warn = (_event: string, fields?: Record<string, unknown>): void => {
      if (/not one clock|clock stepped|excludes the majority/.test(String(fields?.reason))) sawNotOneClock();
    };
    // The first measurement's verification probes ask each side on an odd and an even
    // request: the balancer's two clocks contradict each other or the majority.
    const clock = new ServerClock({
      servers: [balancer.url, backends[2]?.url ?? '', backends[3]?.url ?? ''],
      logger: { debug() {}, info() {}, error() {}, warn },
    });
    clocks.push(clock);
    const seen: ServerClockUpdate[] = [];
    clock.on('update', (update) => seen.push(update));
    await clock.ready();
    await notOneClock;
    await new Promise((resolve) => setImmediate(resolve));
    // The measurement's end: the balancer failed (2 candidates) or was outvoted (2 survivors).
    expect(seen.at(-1)?.source).toBe('refine');
    expect(seen.at(-1)?.survivors).toBe(2);
    expectBoundsHoldTruth(clock, OFFSET);
  }, 90_000);
});
