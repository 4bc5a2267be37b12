// measureOffset() and `htntp http` against Debian's real web servers with clocks shifted by
// libfaketime, directly, behind haproxy (one backend) and through squid and tinyproxy: the
// truth within the published bound, run after run. Then the faults real servers and
// proxies show: absolute form for http:// through a proxy, CONNECT for https://, the
// proxy's failures named as the proxy's, HEAD refused, 1xx, 3xx, 5xx, and --json failures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureOffset, type MeasurementResult } from '../../../src/sources/http/measure.js';
import { flags, startHtntp } from '../../helpers/process.js';
import { describeE2e } from '../../helpers/tools.js';
import {
  startBalancer,
  startProxy,
  startWebServers,
  stopAll,
  type RealProcess,
  type RealProxy,
  type RealWebServer,
} from '../../helpers/webservers.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';
import { makeTestPki, type TestPki } from '../../helpers/http/tls.js';

const RUNS = 3;
const PROBES = 6;

function expectTruthWithin(result: MeasurementResult, truth: number, what: string): void {
  const detail = `${what}: ${JSON.stringify(result)}`;
  expect(result.offset, detail).not.toBeNull();
  expect(Math.abs((result.offset ?? NaN) - truth), detail).toBeLessThanOrEqual((result.error ?? NaN) + 1e-6);
  for (const server of result.servers) {
    expect(server.status, detail).toBe('ok');
    expect(Math.abs((server.offset ?? NaN) - truth), `${server.url} ${detail}`).toBeLessThanOrEqual(
      (server.error ?? NaN) + 1e-6,
    );
  }
}

/** nginx and apache2 at `truth`, and haproxy over one more nginx at `truth`. */
async function honestSet(truth: number): Promise<{ urls: string[]; processes: RealProcess[] }> {
  const servers = await startWebServers([
    { kind: 'nginx', offset: truth },
    { kind: 'apache2', offset: truth },
    { kind: 'nginx', offset: truth },
  ]);
  const [nginx, apache2, backend] = servers as [RealWebServer, RealWebServer, RealWebServer];
  const balancer = await startBalancer([backend]).catch(async (error: unknown) => {
    await stopAll(servers);
    throw error;
  });
  return { urls: [nginx.url, apache2.url, balancer.url], processes: [...servers, balancer] };
}

describeE2e('honest real servers', ['nginx', 'apache2', 'haproxy'], () => {
  for (const truth of [0.4321, -2.75]) {
    it(
      `nginx, apache2, haproxy over nginx at ${truth} s: the truth within every published bound, ${RUNS} runs`,
      { timeout: 120_000 },
      async () => {
        const { urls, processes } = await honestSet(truth);
        try {
          for (let run = 0; run < RUNS; run += 1) {
            expectTruthWithin(await measureOffset(urls, { probes: PROBES }), truth, `run ${run}`);
          }
        } finally {
          await stopAll(processes);
        }
      },
    );
  }

  it('htntp http --once --dry-run --json: the truth within the bound', { timeout: 90_000 }, async () => {
    const truth = -0.0731;
    const { urls, processes } = await honestSet(truth);
    try {
      const run = startHtntp(['--once', '--dry-run', '--json', '--probes', String(PROBES), ...urls]);
      const exit = await run.exited;
      expect(exit.code, run.output()).toBe(0);
      expect(run.stdoutLines, run.output()).toHaveLength(1);
      expectTruthWithin(JSON.parse(run.stdoutLines[0] ?? '') as MeasurementResult, truth, 'cli');
    } finally {
      await stopAll(processes);
    }
  });
});

describeE2e('real forward proxies', ['squid', 'tinyproxy', 'nginx', 'apache2'], () => {
  const truth = 0.3;
  let origins: RealWebServer[] = [];
  const proxies: Partial<Record<'squid' | 'tinyproxy', RealProxy>> = {};
  beforeAll(async () => {
    origins = await startWebServers([
      { kind: 'nginx', offset: truth },
      { kind: 'apache2', offset: truth },
    ]);
    proxies.squid = await startProxy('squid');
    proxies.tinyproxy = await startProxy('tinyproxy');
  }, 60_000);
  afterAll(async () => {
    await stopAll([...origins, proxies.squid, proxies.tinyproxy]);
  });

  for (const kind of ['squid', 'tinyproxy'] as const) {
    it(
      `http:// through ${kind} (CONNECT to 443 only) in absolute form: the truth within the bound, ${RUNS} runs`,
      { timeout: 90_000 },
      async () => {
        const proxy = proxies[kind] as RealProxy;
        const requestsBefore = (await (origins[0] as RealWebServer).requests()).length;
        for (let run = 0; run < RUNS; run += 1) {
          expectTruthWithin(
            await measureOffset(
              origins.map((origin) => origin.url),
              { probes: PROBES, proxy: proxy.uri },
            ),
            truth,
            `${kind} run ${run}`,
          );
        }
        // The proxy forwarded HEADs (a CONNECT would have been refused and nothing would reach nginx).
        const requests = (await (origins[0] as RealWebServer).requests()).slice(requestsBefore);
        expect(requests.length).toBeGreaterThanOrEqual(RUNS * PROBES);
        expect(requests.every((line) => line === 'HEAD 200')).toBe(true);
      },
    );
  }

  it('htntp http --proxy through squid: the truth within the bound', { timeout: 60_000 }, async () => {
    const options = {
      once: true,
      'dry-run': true,
      json: true,
      probes: PROBES,
      proxy: (proxies.squid as RealProxy).uri,
    };
    const run = startHtntp([...flags(options), ...origins.map((origin) => origin.url)]);
    const exit = await run.exited;
    expect(exit.code, run.output()).toBe(0);
    expectTruthWithin(JSON.parse(run.stdoutLines[0] ?? '') as MeasurementResult, truth, 'cli through squid');
  });

  it(
    "a refused proxy, a proxy that cannot reach the server, a refused CONNECT: each reported as the proxy's",
    { timeout: 60_000 },
    async () => {
      const squid = proxies.squid as RealProxy;
      const tinyproxy = proxies.tinyproxy as RealProxy;
      // Nothing listens on port 1 of loopback.
      const refused = await measureOffset([origins[0]?.url ?? ''], { probes: 2, proxy: '127.0.0.1:1' });
      expect(refused.servers[0]?.reason).toMatch(/^proxy: 127\.0\.0\.1:1: ECONNREFUSED/);
      const unreachable = 'http://127.0.0.1:1/';
      const viaSquid = await measureOffset([unreachable], { probes: 2, proxy: squid.uri });
      expect(viaSquid.servers[0]?.reason).toMatch(
        new RegExp(`^proxy: 127\\.0\\.0\\.1:${squid.port}: 503\\b.*ERR_CONNECT_FAIL`),
      );
      const viaTinyproxy = await measureOffset([unreachable], { probes: 2, proxy: tinyproxy.uri });
      expect(viaTinyproxy.servers[0]?.reason).toMatch(new RegExp(`^proxy: 127\\.0\\.0\\.1:${tinyproxy.port}: 500\\b`));
      // https:// keeps CONNECT, which Debian's squid refuses to a port other than 443.
      const tunnel = await measureOffset([`https://127.0.0.1:${origins[0]?.port ?? 0}/`], {
        probes: 2,
        proxy: squid.uri,
      });
      expect(tunnel.servers[0]?.reason).toMatch(new RegExp(`^proxy: 127\\.0\\.0\\.1:${squid.port}: .*403`));
    },
  );
});

describeE2e('https:// keeps CONNECT through a real proxy', ['squid'], () => {
  let pki: TestPki;
  let servers: TimeServer[] = [];
  let squid: RealProxy | undefined;
  beforeAll(async () => {
    pki = makeTestPki();
    servers = await startTimeServers([{ offset: -0.2, tls: { key: pki.key, cert: pki.cert } }]);
    squid = await startProxy('squid', { connect: 'any' });
  }, 60_000);
  afterAll(async () => {
    await stopAll([squid]);
    await closeAll(servers);
    pki.cleanup();
  });

  it("measures an https server through squid's CONNECT tunnel", { timeout: 60_000 }, async () => {
    const result = await measureOffset([servers[0]?.url ?? ''], {
      probes: PROBES,
      proxy: squid?.uri ?? '',
      ca: pki.ca,
    });
    expectTruthWithin(result, -0.2, 'https through squid');
  });
});

describeE2e('answers other than 200 from real nginx', ['nginx'], () => {
  it(
    '405 and 501 to HEAD: asked again with GET and Range: bytes=0-0, the truth within the bound',
    { timeout: 90_000 },
    async () => {
      const truth = 0.125;
      const servers = await startWebServers([
        { kind: 'nginx', offset: truth, refuseHead: 405 },
        { kind: 'nginx', offset: truth, refuseHead: 501 },
      ]);
      try {
        expectTruthWithin(
          await measureOffset(
            servers.map((server) => server.url),
            { probes: PROBES },
          ),
          truth,
          'HEAD refused',
        );
        for (const server of servers) {
          const requests = await server.requests();
          // One refused HEAD, then GETs answered with the one byte asked for.
          expect(requests[0]).toBe(`HEAD ${server === servers[0] ? 405 : 501}`);
          expect(requests.slice(1).length).toBeGreaterThanOrEqual(PROBES);
          expect(requests.slice(1).every((line) => line === 'GET 206')).toBe(true);
        }
      } finally {
        await stopAll(servers);
      }
    },
  );

  it(
    "a 3xx carries the server's Date (used); 5xx and 304 do not count, each with its reason",
    { timeout: 90_000 },
    async () => {
      const truth = -0.6;
      const servers = await startWebServers([
        { kind: 'nginx', offset: truth, status: 301 },
        { kind: 'nginx', offset: truth, status: 503 },
        { kind: 'nginx', offset: truth, status: 500 },
        { kind: 'nginx', offset: truth, status: 304 },
      ]);
      try {
        const result = await measureOffset([servers[0]?.url ?? ''], { probes: PROBES });
        expectTruthWithin(result, truth, '301');
        const failing = await measureOffset(
          servers.slice(1).map((server) => server.url),
          { probes: 2 },
        );
        expect(failing.offset).toBeNull();
        expect(failing.servers.map((server) => server.reason)).toEqual([
          expect.stringMatching(
            /^status: 503 Service (Temporarily )?Unavailable: a Date in a server error is not used/,
          ),
          expect.stringMatching(/^status: 500 Internal Server Error: a Date in a server error is not used/),
          expect.stringMatching(/^status: 304 Not Modified .*a cache answered/),
        ]);
      } finally {
        await stopAll(servers);
      }
    },
  );
});

describe('informational answers (no real server sends them unasked: a Node server does)', () => {
  let servers: TimeServer[] = [];
  beforeAll(async () => {
    servers = await startTimeServers([
      { offset: 0.2, fault: 'early-hints' },
      { offset: 0.2, fault: 'continue' },
    ]);
  });
  afterAll(async () => {
    await closeAll(servers);
  });

  it(
    '103 Early Hints then 200: the final answer is timed, the truth within the bound',
    { timeout: 60_000 },
    async () => {
      expectTruthWithin(await measureOffset([servers[0]?.url ?? ''], { probes: PROBES }), 0.2, '103');
    },
  );

  it(
    'an unasked-for 100 Continue then 200: the final answer is timed, the truth within the bound',
    { timeout: 60_000 },
    async () => {
      expectTruthWithin(await measureOffset([servers[1]?.url ?? ''], { probes: PROBES }), 0.2, '100');
    },
  );
});

describe('htntp http --json failures before any measurement', () => {
  const cases: [string, string[], RegExp, string][] = [
    ['an unreadable --ca', ['--ca', '/nonexistent/ca.pem'], /^--ca \/nonexistent\/ca\.pem: ENOENT/, 'ENOENT'],
    ['a --ca without a certificate', ['--ca', '/etc/hostname'], /no PEM certificate/, 'ERR_INVALID_ARG_VALUE'],
    ['a bad option value', ['--probes', '0'], /probes must be an integer from 1 to 64/, 'commander.invalidArgument'],
    ['an unknown option', ['--no-such-option'], /unknown option/, 'commander.unknownOption'],
    ['a bad server', ['ftp://example.org/'], /only http:\/\/ and https:\/\//, 'ERR_INVALID_URL'],
  ];
  for (const [what, args, reason, code] of cases) {
    it(`${what}: one JSON object on stdout, exit 1`, { timeout: 30_000 }, async () => {
      const run = startHtntp(['http', '--once', '--dry-run', '--json', ...args, 'http://127.0.0.1:1/']);
      const exit = await run.exited;
      expect(exit.code, run.output()).toBe(1);
      expect(run.stdoutLines, run.output()).toHaveLength(1);
      const failure = JSON.parse(run.stdoutLines[0] ?? '') as { reason: string; code: string; exitCode: number };
      expect(failure).toEqual({ reason: expect.stringMatching(reason), code, exitCode: 1 });
    });
  }
});
