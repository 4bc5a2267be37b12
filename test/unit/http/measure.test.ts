// measureOffset against local servers whose clocks are off by known amounts: the truth
// must lie inside the reported bound, and every fault must be named.
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { measureOffset, type MeasurementResult, type ServerResult } from '../../../src/sources/http/measure.js';
import {
  closeAll,
  startTimeServer,
  startTimeServers,
  type TimeServer,
  type TimeServerConfig,
} from '../../helpers/http/servers.js';
import { untilFine } from '../../helpers/attempts.js';

const TRUTH = 0.3217;
// Attempts at a resolution that load can blur (see test/helpers/attempts.ts).
const RESOLUTION_ATTEMPTS = 3;
const servers: TimeServer[] = [];

async function start(configs: TimeServerConfig[]): Promise<string[]> {
  const started = await startTimeServers(configs);
  servers.push(...started);
  return started.map((server) => server.url);
}

function expectWithinBound(result: { offset: number | null; error: number | null }, truth: number): void {
  expect(result.offset).not.toBeNull();
  // The bounds are hard: the truth lies inside (1 us for float rounding).
  expect(Math.abs((result.offset ?? NaN) - truth)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-6);
}

function byUrl(result: MeasurementResult, url: string): ServerResult {
  const server = result.servers.find((candidate) => candidate.url === url);
  if (!server) throw new Error(`no result for ${url}`);
  return server;
}

afterAll(async () => {
  await closeAll(servers);
});

describe('measureOffset', () => {
  it('finds a fractional offset within its bound, every Date format, all servers at once', async () => {
    const urls = await start([
      { offset: TRUTH },
      { offset: TRUTH, format: 'rfc850' },
      { offset: TRUTH, format: 'asctime' },
      { offset: TRUTH, fault: 'close' }, // Connection: close on every answer
    ]);
    const result = await measureOffset(urls, { probes: 8 });
    expect(result.servers.map((server) => server.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(result.survivors).toBe(4);
    expectWithinBound(result, TRUTH);
    for (const server of result.servers) {
      expectWithinBound(server, TRUTH);
      expect(server.probes).toBe(8);
    }
    // Eight probes bisect the second down to 1/128 s; loopback adds well under 1 ms, the
    // stale-Date allowance 2 ms, and the bound reaches from the estimate to either end.
    expect(result.error).toBeLessThan(0.015);
    expect(Math.abs((result.offset ?? NaN) - TRUTH)).toBeLessThan(0.01);
    // Concurrent: eight aimed probes take about eight seconds at most, not 4 x 8.
    expect(result.duration).toBeLessThan(8 + 4);
  });

  it('aims agreeing servers as a team: three cold servers resolve far finer than one can', async () => {
    const urls = await start([{ offset: TRUTH }, { offset: TRUTH }, { offset: TRUTH }]);
    // Alone, each server's 7 aimed probes split the second into 1/128 s (7.8 ms); side by
    // side they would all split it along the same lines. As a team each second splits four
    // ways. The bound spans what any two of the three share (one may be the liar): a few ms.
    const { results, fine } = await untilFine(
      RESOLUTION_ATTEMPTS,
      () => measureOffset(urls, { probes: 8 }),
      (result) => (result.error ?? Infinity) < 0.01 && Math.abs((result.offset ?? NaN) - TRUTH) < 0.001,
    );
    for (const result of results) {
      expect(result.survivors).toBe(3);
      expectWithinBound(result, TRUTH);
    }
    expect(fine, `errors ${results.map((result) => result.error).join(', ')}`).toBeDefined();
  });

  it('keeps each team member aimed at the tick the team found, even with all its own answers on one side', async () => {
    const delay = { up: 20, down: 20, jitter: 5 };
    const urls = await start(Array.from({ length: 6 }, () => ({ offset: TRUTH, delay })));
    let probes = new Map<string, number[]>();
    const logger = {
      ...silentLogger,
      debug(event: string, fields?: Record<string, unknown>) {
        // The bisecting probes (verification probes aim well off the tick on purpose).
        if (event !== 'http probe' || !fields || String(fields.kind).startsWith('verify')) return;
        // Where the middle of the round trip fell against the server's second boundary: the
        // server read TRUTH + (Date - low - rtt / 2) there, Date a whole second.
        const serverTime = TRUTH - Number(fields.low) - Number(fields.rtt) / 2;
        const fromTick = serverTime - Math.round(serverTime);
        probes.set(String(fields.url), [...(probes.get(String(fields.url)) ?? []), fromTick]);
      },
    };
    // Six servers split each second seven ways: by the fourth probe the team has the tick
    // to a few ms. A member whose own answers all fell on one side has its interval's edge
    // at the tick; sent off to bisect the rest of its own interval instead, its probe lands
    // 50-500 ms away and teaches the team nothing.
    const aimedAtTick = (): boolean =>
      [...probes.values()].every((fromTicks) => fromTicks.slice(4).every((fromTick) => Math.abs(fromTick) < 0.03));
    const { results, fine } = await untilFine(
      RESOLUTION_ATTEMPTS,
      async () => {
        probes = new Map();
        const result = await measureOffset(urls, { probes: 8, logger });
        expect(result.survivors).toBe(6);
        expectWithinBound(result, TRUTH);
        for (const fromTicks of probes.values()) expect(fromTicks).toHaveLength(8);
        return [...probes.values()].map((fromTicks) => fromTicks.map((value) => (value * 1000).toFixed(1)).join(' '));
      },
      aimedAtTick,
    );
    expect(
      fine,
      `ms from the tick, per server, per attempt: ${results.map((attempt) => attempt.join(' | ')).join(' || ')}`,
    ).toBeDefined();
  });

  it('lets servers a fraction of a second apart each resolve their own clock', async () => {
    // After one probe most of their intervals are common (85 % for neighbours): teamed up,
    // each would spend its probes where the others' time is.
    const truths = [0.2, 0.35, 0.5, 0.65];
    const urls = await start(truths.map((offset) => ({ offset })));
    // Held at the edge of its own interval, a server would end about 0.3 s wide, on every
    // attempt; a loaded machine widens one now and then (a check its lag left unproven).
    const { results, fine } = await untilFine(
      RESOLUTION_ATTEMPTS,
      async () => {
        const result = await measureOffset(urls, { probes: 8 });
        result.servers.forEach((server, index) => expectWithinBound(server, truths[index] ?? NaN));
        return result.servers.map((server) => server.error ?? Infinity);
      },
      (errors) => errors.every((error) => error < 0.06),
    );
    expect(fine, `errors (s), per attempt: ${results.map((errors) => errors.join(' ')).join(' | ')}`).toBeDefined();
  });

  it('stays within its bound under symmetric and asymmetric delay with jitter', async () => {
    const urls = await start([
      { offset: -1.4321, delay: { up: 20, down: 20, jitter: 5 } },
      { offset: -1.4321, delay: { up: 40, down: 5, jitter: 2 } },
    ]);
    const { results, fine } = await untilFine(
      RESOLUTION_ATTEMPTS,
      async () => {
        const [symmetric, asymmetric] = await Promise.all(urls.map((url) => measureOffset([url], { probes: 8 })));
        for (const result of [symmetric, asymmetric]) {
          expectWithinBound(result ?? { offset: null, error: null }, -1.4321);
          // One server alone: the published bound leaves a second above for a lagging Date cache.
          expect(result?.caveat).toMatch(/one server alone/);
          expect(result?.error).toBeGreaterThan(0.5);
          // Its own interval: never tighter than the fastest leg allows.
          expectWithinBound(result?.servers[0] ?? { offset: null, error: null }, -1.4321);
          expect(result?.servers[0]?.error).toBeGreaterThan(0.004);
        }
        const own = (result: MeasurementResult | undefined): { offset: number | null; error: number | null } =>
          result?.servers[0] ?? { offset: null, error: null };
        return { symmetric: own(symmetric), asymmetric: own(asymmetric) };
      },
      // Never looser than the round trip; with symmetric delay the midpoint is the truth up
      // to the legs' jitter.
      ({ symmetric, asymmetric }) =>
        [symmetric, asymmetric].every((result) => (result.error ?? Infinity) < 0.07) &&
        Math.abs((symmetric.offset ?? NaN) + 1.4321) < 0.008,
    );
    expect(
      fine,
      `(offset, error) symmetric / asymmetric per attempt: ${results
        .map(({ symmetric: s, asymmetric: a }) => `${s.offset}, ${s.error} / ${a.offset}, ${a.error}`)
        .join('; ')}`,
    ).toBeDefined();
  });

  it('keeps servers whose cached Date lags its tick (Node, nginx) within the bound', async () => {
    const urls = await start([
      { offset: 0.875, stale: 0.0018 },
      { offset: 0.875, stale: 0.0018 },
    ]);
    // Aimed finely (a prior around the truth), the probes land within the stale window.
    const result = await measureOffset(urls, {
      probes: 10,
      priors: [
        { low: 0.86, high: 0.89 },
        { low: 0.86, high: 0.89 },
      ],
    });
    expect(result.servers.map((server) => server.status)).toEqual(['ok', 'ok']);
    for (const server of result.servers) expectWithinBound(server, 0.875);
  });

  it('names liars as falsetickers and takes the majority', async () => {
    const urls = await start([{ offset: 0.05 }, { offset: 0.05 }, { offset: 0.05 }, { offset: 7.5 }, { offset: -200 }]);
    const result = await measureOffset(urls, { probes: 6 });
    expect(result.servers.map((server) => server.status)).toEqual(['ok', 'ok', 'ok', 'falseticker', 'falseticker']);
    expect(byUrl(result, urls[3] ?? '').reason).toMatch(/excludes the majority/);
    expect(byUrl(result, urls[3] ?? '').offset).toBeCloseTo(7.5, 1);
    expectWithinBound(result, 0.05);
  });

  it('gives no estimate without a majority', async () => {
    const urls = await start([{ offset: 0 }, { offset: 2 }]);
    const result = await measureOffset(urls, { probes: 3 });
    expect(result.offset).toBeNull();
    expect(result.error).toBeNull();
    expect(result.reason).toMatch(/no majority/);
    expect(result.servers.every((server) => server.status === 'ok')).toBe(true);
  });

  it('rejects caches, missing and frozen Dates and load balancers, each with its reason', async () => {
    const urls = await start([
      { offset: 0.2 },
      { offset: 0.2, fault: 'age' },
      { offset: 0.2, fault: 'no-date' },
      { offset: 0.2, fault: 'frozen' },
      // Backends a few seconds apart; closer ones look like one clock between them (the
      // bisection's answers stay consistent) and fall to Marzullo as falsetickers.
      { split: [0.2, 3.7] },
    ]);
    const result = await measureOffset(urls, { probes: 5 });
    const reasons = result.servers.map((server) => [server.status, server.reason]);
    expect(reasons[0]).toEqual(['ok', null]);
    expect(reasons[1]).toEqual(['failed', expect.stringMatching(/Age/)]);
    expect(reasons[2]).toEqual(['failed', expect.stringMatching(/no Date header/)]);
    expect(reasons[3]).toEqual(['failed', expect.stringMatching(/does not advance/)]);
    expect(reasons[4]).toEqual(['failed', expect.stringMatching(/^not one clock: /)]);
    // One good server alone would be published with its one-server allowance, but not beside a Date that stopped
    // advancing: a clock stepped back reads so, and what stepped it may have stepped the survivor unseen.
    expect(result.offset).toBeNull();
    expect(result.reason).toMatch(/^one server alone is not published beside [12] whose clock may have stepped/);
  });

  it('names every connection failure and ends by its deadline', async () => {
    const hang = await startTimeServer({ fault: 'hang' });
    const slow = await startTimeServer({ fault: 'slow-headers' });
    const huge = await startTimeServer({ fault: 'huge-headers' });
    const garbage = await startTimeServer({ fault: 'garbage' });
    const reset = await startTimeServer({ fault: 'reset' });
    servers.push(hang, slow, huge, garbage, reset);
    const refused = await startTimeServer();
    await refused.close();
    const [good] = await start([{ offset: -0.75 }]);
    const urls = [
      good ?? '',
      hang.url,
      slow.url,
      huge.url,
      garbage.url,
      reset.url,
      refused.url,
      'http://nonexistent.invalid/',
    ];
    const started = performance.now();
    const result = await measureOffset(urls, { probes: 3, timeout: 3 });
    // By its deadline, with room for a loaded machine: the hanging server never answers.
    expect((performance.now() - started) / 1000).toBeLessThan(3 + 3);
    const reasons = result.servers.map((server) => server.reason);
    expect(reasons[0]).toBeNull();
    expect(reasons.slice(1)).toEqual([
      expect.stringMatching(/^timeout: /),
      expect.stringMatching(/^timeout: /),
      expect.stringMatching(/^headers too large: /),
      expect.stringMatching(/^not HTTP: /),
      expect.stringMatching(/^reset: /),
      expect.stringMatching(/^refused: ECONNREFUSED/),
      expect.stringMatching(/^(dns|timeout): /),
    ]);
    expect(result.servers.slice(1).every((server) => server.status === 'failed')).toBe(true);
    expectWithinBound(result, -0.75);
  });

  it('rejects bad arguments before any network work', async () => {
    await expect(measureOffset([], {})).rejects.toThrow(TypeError);
    await expect(measureOffset(['ftp://example.com'], {})).rejects.toMatchObject({ code: 'ERR_INVALID_URL' });
    await expect(measureOffset(['http://127.0.0.1:1/'], { probes: 0 })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
    });
    await expect(measureOffset(['http://127.0.0.1:1/'], { timeout: -1 })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
    });
    // A proxy that is not a URL would be passed over and the servers asked directly; credentials stay out of the error.
    for (const proxy of [
      'http://proxy host:3128',
      'http://proxy:99999',
      'http://u:secret@[::1:3128',
      'http://u:se#cret@p:1',
    ]) {
      const refused = measureOffset(['http://127.0.0.1:1/'], { proxy });
      await expect(refused).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: /^proxy is not/ });
      await expect(refused).rejects.not.toThrow(/secret|cret/);
    }
    await expect(measureOffset(['http://127.0.0.1:1/'], { proxy: '' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(measureOffset(['http://127.0.0.1:1/'], { proxy: 3128 as unknown as string })).rejects.toThrow(
      TypeError,
    );
    const before = { HTTPS_PROXY: process.env.HTTPS_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTPS_PROXY = 'http://proxy host:3128';
    try {
      await expect(measureOffset(['https://127.0.0.1:1/'], {})).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_VALUE',
        message: /^HTTPS_PROXY is not a proxy URL/,
      });
      // Refused only where it applies: not to http:// (HTTP_PROXY's), nor to a server NO_PROXY exempts.
      const direct = await measureOffset(['http://127.0.0.1:1/'], { probes: 1, timeout: 2 });
      expect(direct.servers[0]?.reason).toMatch(/^refused: /);
      process.env.NO_PROXY = '127.0.0.1';
      const exempt = await measureOffset(['https://127.0.0.1:1/'], { probes: 1, timeout: 2 });
      expect(exempt.servers[0]?.reason).toMatch(/^refused: /);
    } finally {
      for (const [name, value] of Object.entries(before)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe('measureOffset with priors (aiming only)', () => {
  it('splits a good prior finely and survives a wrong one', async () => {
    // Two clocks seconds apart, so each is aimed on its own.
    // The second is 20 ms away: a probe's bound then stays a round trip short of where it
    // was aimed, so only letting the prior go frees its probes.
    const urls = await start([{ offset: 0.6543 }, { offset: 2.6543, delay: { up: 20, down: 20, jitter: 1 } }]);
    // 7 aimed probes over 40 ms: about 2.5 ms. The wrong prior is let go once the answers
    // leave it behind (held at its edge, the server would end ~0.3 s wide), and the probes
    // left bisect the rest of the second.
    const { results, fine } = await untilFine(
      RESOLUTION_ATTEMPTS,
      async () => {
        const result = await measureOffset(urls, {
          probes: 8,
          // The first server's prior holds the truth (40 ms wide); the second's is 0.3 s off.
          priors: [
            { low: 0.63, high: 0.67 },
            { low: 2.3, high: 2.34 },
          ],
        });
        const [good, wrong] = result.servers;
        expectWithinBound(good ?? { offset: null, error: null }, 0.6543);
        expectWithinBound(wrong ?? { offset: null, error: null }, 2.6543);
        return { good: good?.error ?? Infinity, wrong: wrong?.error ?? Infinity };
      },
      (errors) => errors.good < 0.004 && errors.wrong < 0.1,
    );
    expect(
      fine,
      `errors (good, wrong prior): ${results.map((errors) => `${errors.good}, ${errors.wrong}`).join('; ')}`,
    ).toBeDefined();
  });
});
