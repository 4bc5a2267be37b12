// measureOffset against real web servers that misbehave as real ones do: a load balancer
// over clocks 0.25 s apart, lighttpd's Date that lags its second, a clock stepped during
// the measurement, the same server listed twice, a server five years ahead. Over several
// runs of each: no published bound excludes the truth, and each misbehaving server is
// named with its reason.
import { afterEach, expect, it } from 'vitest';
import { realtime } from '../../../src/clock.js';
import { measureOffset, type MeasurementResult, type ServerResult } from '../../../src/sources/http/measure.js';
import { toSeconds } from '../../../src/time.js';
import { describeE2e } from '../../helpers/tools.js';
import {
  startBalancer,
  startWebServer,
  startWebServers,
  stopAll,
  type RealProcess,
  type RealWebServer,
} from '../../helpers/webservers.js';

/** The honest servers' offset: the local clock is TRUTH behind them. */
const TRUTH = 0.3217;
const RUNS = 3;

const started: RealProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

async function honest(count: number, offset = TRUTH): Promise<RealWebServer[]> {
  const servers = await startWebServers(Array.from({ length: count }, () => ({ kind: 'nginx' as const, offset })));
  started.push(...servers);
  return servers;
}

/** The published bound holds the truth, or nothing is published. */
function expectSound(result: MeasurementResult, truth = TRUTH): void {
  if (result.offset === null) return;
  const miss = Math.abs(result.offset - truth) - (result.error ?? NaN);
  expect(
    miss,
    `published ${result.offset} ± ${result.error} misses ${truth}: ${JSON.stringify(result.servers)}`,
  ).toBeLessThanOrEqual(1e-6);
}

function byUrl(result: MeasurementResult, url: string): ServerResult {
  const server = result.servers.find((candidate) => candidate.url === url);
  if (!server) throw new Error(`no result for ${url}`);
  return server;
}

describeE2e('HTTP faults of real servers: load balancer', ['nginx', 'haproxy', 'libfaketime'], () => {
  it(
    'haproxy over nginx clocks 0.25 s apart, with two honest nginx and alone: no wrong bound, the balancer named',
    { timeout: 180_000 },
    async () => {
      const good = await honest(2);
      const backends = await startWebServers([
        { kind: 'nginx', offset: TRUTH, label: 'on-time' },
        { kind: 'nginx', offset: TRUTH + 0.25, label: 'late' },
      ]);
      started.push(...backends);
      const balancer = await startBalancer(backends);
      started.push(balancer);
      for (let run = 0; run < RUNS; run += 1) {
        const result = await measureOffset([...good.map((server) => server.url), balancer.url], { probes: 8 });
        expectSound(result);
        expect(result.offset).not.toBeNull();
        const verdict = byUrl(result, balancer.url);
        expect(verdict.status, JSON.stringify(verdict)).not.toBe('ok');
        expect(verdict.reason).toMatch(/not one clock|clock stepped|does not advance|excludes the majority/);
      }
      // Alone it has no majority to fall to: its own verification probes must expose it.
      for (let run = 0; run < RUNS; run += 1) {
        const [verdict] = (await measureOffset([balancer.url], { probes: 8 })).servers;
        expect(verdict?.status, JSON.stringify(verdict)).toBe('failed');
        expect(verdict?.reason).toMatch(/not one clock|clock stepped|does not advance/);
      }
    },
  );
});

describeE2e('HTTP faults of real servers: lagging Date', ['nginx', 'lighttpd', 'libfaketime'], () => {
  it(
    'lighttpd whose Date lags its second: never a wrong bound, named as lagging beside two honest servers',
    { timeout: 240_000 },
    async () => {
      // lighttpd's Date second changes frac(its REALTIME - MONOTONIC) late: with every clock
      // at `truth` that is frac(REALTIME - MONOTONIC + truth) here; the truth is chosen so the
      // lag is about 0.25 s (at TRUTH it could be anything in [0, 1) on this host).
      const sinceBoot = toSeconds(realtime()) - Number(process.hrtime.bigint()) / 1e9;
      const truth = (((0.25 - sinceBoot) % 1) + 1) % 1;
      const good = await honest(2, truth);
      const lagging = await startWebServer('lighttpd', { offset: truth, realMonotonic: true });
      started.push(lagging);
      let lagHidden = 0;
      const runs = 5;
      for (let run = 0; run < runs; run += 1) {
        const result = await measureOffset([...good.map((server) => server.url), lagging.url], { probes: 8 });
        expectSound(result, truth);
        expect(result.offset).not.toBeNull();
        const verdict = byUrl(result, lagging.url);
        // Named as lagging the majority, or rejected outright: its Date cache refreshes late,
        // and later still when requests are sparse (then its Dates look like several clocks).
        if (verdict.status === 'ok') lagHidden += 1;
        else expect(verdict.reason).toMatch(/lags the majority|not one clock|does not advance|clock stepped/);
      }
      // Named in most runs (bench: about two in three); a run in which its answers to the
      // team's aims all read "not later than that" leaves it in, its interval reaching the
      // honest ones at its edge, and the bound still holds.
      console.info(`lighttpd lagging 0.25 s: left in ${lagHidden} of ${runs} runs`);
      expect(lagHidden).toBeLessThan(runs);
    },
  );

  it(
    'lighttpd alone: a bound that leaves a second above for its lag and says so, or no estimate naming the fault',
    { timeout: 180_000 },
    async () => {
      // Its lag is frac(REALTIME - MONOTONIC + truth): the truth is chosen for a short lag and a
      // long one, whatever this host's phase. A late refresh can make its Dates contradict each
      // other, and then no estimate is the sound answer.
      const sinceBoot = toSeconds(realtime()) - Number(process.hrtime.bigint()) / 1e9;
      const answers: string[] = [];
      for (const lag of [0.1, 0.6]) {
        const truth = (((lag - sinceBoot) % 1) + 1) % 1;
        const lagging = await startWebServer('lighttpd', { offset: truth, realMonotonic: true });
        started.push(lagging);
        for (let run = 0; run < 2; run += 1) {
          const result = await measureOffset([lagging.url], { probes: 6 });
          expectSound(result, truth);
          const [verdict] = result.servers;
          answers.push(`lag ${lag}: ${result.offset === null ? 'none' : 'estimate'}`);
          if (result.offset !== null) {
            expect(result.caveat).toMatch(/one server alone/);
            expect(verdict?.status).toBe('ok');
          } else {
            expect(result.caveat).toBeNull();
            // Contradicting Dates read as its clock moving: a step fits them.
            expect(result.reason).toMatch(
              /no server gave a usable Date \(1 failed\)|1 of the 1 servers answered from more than one clock/,
            );
            expect(verdict?.status, JSON.stringify(verdict)).toBe('failed');
            expect(verdict?.reason).toMatch(/not one clock|clock stepped|does not advance/);
          }
        }
      }
      console.info(`lighttpd alone: ${answers.join(', ')}`);
    },
  );

  it(
    'lighttpd with its monotonic clock shifted too (a lag of a few ms), beside one honest server: never a wrong bound',
    { timeout: 180_000 },
    async () => {
      const [good] = await honest(1);
      const lagging = await startWebServer('lighttpd', { offset: TRUTH });
      started.push(lagging);
      for (let run = 0; run < RUNS; run += 1)
        expectSound(await measureOffset([good?.url ?? '', lagging.url], { probes: 8 }));
    },
  );
});

describeE2e('HTTP faults of real servers: clock step', ['nginx', 'libfaketime'], () => {
  it(
    'a server clock stepped by a fraction of a second mid-measurement: never a wrong bound, the server named',
    { timeout: 180_000 },
    async () => {
      const good = await honest(2);
      for (const [run, by] of [0.3, -0.4, 0.6].entries()) {
        const stepping = await startWebServer('nginx', { offset: TRUTH, steppable: true });
        started.push(stepping);
        const measuring = measureOffset([...good.map((server) => server.url), stepping.url], { probes: 8 });
        await new Promise((resolve) => setTimeout(resolve, 3_500 + run * 700));
        await stepping.step(TRUTH + by);
        const result = await measuring;
        expectSound(result);
        expect(result.offset).not.toBeNull();
        const verdict = byUrl(result, stepping.url);
        expect(verdict.status, JSON.stringify(verdict)).not.toBe('ok');
        expect(verdict.reason).toMatch(/clock stepped|not one clock|does not advance|excludes the majority/);
      }
    },
  );
});

describeE2e('HTTP faults of real servers: one server listed twice', ['nginx', 'libfaketime'], () => {
  it(
    'a server five years ahead listed twice (once with ?x) does not outvote an honest one',
    { timeout: 180_000 },
    async () => {
      const [good] = await honest(1);
      const liar = await startWebServer('nginx', { offset: TRUTH + 5 * 365 * 86400 });
      started.push(liar);
      for (let run = 0; run < RUNS; run += 1) {
        const result = await measureOffset([liar.url, good?.url ?? '', `${liar.url}?x`], { probes: 5 });
        // Two distinct servers that disagree: nothing can be published.
        expect(result.offset).toBeNull();
        expect(result.reason).toMatch(/no majority/);
        expect(result.servers[2]?.status).toBe('failed');
        expect(result.servers[2]?.reason).toMatch(/^duplicate of http:\/\/127\.0\.0\.1:\d+\/: /);
        expect(result.servers[2]?.probes).toBe(0);
      }
      // With a second honest server the honest pair is the majority, the liar a falseticker.
      const [second] = await honest(1);
      const result = await measureOffset([liar.url, good?.url ?? '', `${liar.url}?x`, second?.url ?? ''], {
        probes: 5,
      });
      expectSound(result);
      expect(result.offset).not.toBeNull();
      expect(result.servers.map((server) => server.status)).toEqual(['falseticker', 'ok', 'failed', 'ok']);
    },
  );
});
