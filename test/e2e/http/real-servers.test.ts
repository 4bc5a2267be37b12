// The real-server scenarios do what they claim, seen through raw HEAD requests on one
// keep-alive connection (no htntp code on the path): each answer's Date second D, sent at
// local a and answered at local b, puts the server's offset in (D - b, D + 1 - a); a sweep
// of answers 20 ms apart across a tick narrows that to ~20 ms.
import { connect, createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { realtime } from '../../../src/clock.js';
import { parseHttpDate } from '../../../src/sources/http/date.js';
import { diffSeconds, toSeconds } from '../../../src/time.js';
import { startRelay, type Relay } from '../../helpers/relay.js';
import { describeE2e } from '../../helpers/tools.js';
import {
  openHeadConnection,
  startBalancer,
  startProxy,
  startWebServer,
  startWebServers,
  type HeadAnswer,
  type RealProcess,
} from '../../helpers/webservers.js';

/** A Date may be stamped this much before the request was sent (a cached stamp of the loop turn). */
const STAMP_SLACK = 0.002;

const started: (RealProcess | Relay)[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((entry) => ('stop' in entry ? entry.stop() : entry.close())));
});

function track<T extends RealProcess | Relay>(entry: T): T {
  started.push(entry);
  return entry;
}

interface Bounds {
  low: number;
  high: number;
}

/** The offset bounds one answer proves. */
function bounds(answer: HeadAnswer): Bounds {
  const date = parseHttpDate(answer.headers.date ?? '', new Date().getUTCFullYear());
  if (date === undefined) throw new Error(`no usable Date in ${JSON.stringify(answer.headers)}`);
  return {
    low: date.seconds - answer.receiveTime.sec - answer.receiveTime.nsec / 1e9,
    high: date.seconds + 1 - answer.sendTime.sec - answer.sendTime.nsec / 1e9,
  };
}

function intersect(answers: readonly HeadAnswer[]): Bounds {
  return answers
    .map(bounds)
    .reduce((acc, next) => ({ low: Math.max(acc.low, next.low), high: Math.min(acc.high, next.high) }), {
      low: -Infinity,
      high: Infinity,
    });
}

/** HEAD requests on one connection, `spacingMs` apart, for `durationMs`. */
async function sweep(port: number, durationMs = 1_300, spacingMs = 20): Promise<HeadAnswer[]> {
  const connection = await openHeadConnection(port);
  const answers: HeadAnswer[] = [];
  try {
    const start = performance.now();
    while (performance.now() - start < durationMs) {
      answers.push(await connection.head());
      await sleep(spacingMs);
    }
  } finally {
    connection.close();
  }
  return answers;
}

function expectBrackets(found: Bounds, offset: number, slack = STAMP_SLACK): void {
  expect(found.low, `low bound ${found.low} vs offset ${offset}`).toBeLessThanOrEqual(offset + slack);
  expect(found.high, `high bound ${found.high} vs offset ${offset}`).toBeGreaterThanOrEqual(offset - slack);
}

describeE2e('real web servers with shifted clocks', ['nginx', 'apache2', 'lighttpd'], () => {
  it('nginx, apache2 and lighttpd answer with the offset their clock was given', { timeout: 60_000 }, async () => {
    const specs = [
      { kind: 'nginx', offset: 0.4321 },
      { kind: 'apache2', offset: -1.75 },
      { kind: 'lighttpd', offset: 0.25 },
    ] as const;
    const servers = await startWebServers(specs);
    servers.forEach(track);
    for (const server of servers) {
      const found = intersect(await sweep(server.port));
      // Within the sweep's resolution of the given offset, and not the host's clock.
      expectBrackets(found, server.offset, server.kind === 'lighttpd' ? 0.01 : STAMP_SLACK);
      expect(found.high - found.low, `${server.kind}: a sweep across a tick pins the offset`).toBeLessThan(0.1);
    }
  });

  it('a steppable clock moves at once, and only when stepped', { timeout: 60_000 }, async () => {
    const server = track(await startWebServer('nginx', { offset: 0, steppable: true }));
    const before = intersect(await sweep(server.port));
    expectBrackets(before, 0);
    expect(before.high).toBeLessThan(0.3);
    await server.step(0.5);
    const after = intersect(await sweep(server.port));
    expectBrackets(after, 0.5);
    expect(after.low).toBeGreaterThan(0.2);
  });

  it(
    'lighttpd with a real monotonic clock: its Date second changes frac(REALTIME - MONOTONIC) late',
    { timeout: 60_000 },
    async () => {
      const server = track(await startWebServer('lighttpd', { offset: 0, realMonotonic: true }));
      // lighttpd refreshes its cached Date when CLOCK_MONOTONIC (Node's hrtime) crosses a second.
      const realtimeNow = realtime();
      const monotonicNow = process.hrtime.bigint();
      const sinceBoot = toSeconds(realtimeNow) - Number(monotonicNow) / 1e9;
      const lag = sinceBoot - Math.floor(sinceBoot);
      const found = intersect(await sweep(server.port, 2_200));
      console.info(
        `lighttpd: frac(REALTIME - MONOTONIC) = ${lag.toFixed(4)} s; its Date proves offset in ` +
          `[${found.low.toFixed(4)}, ${found.high.toFixed(4)}]`,
      );
      // The apparent offset is -lag (a refresh comes a few ms after the crossing); the true offset 0 is outside unless
      // lag is tiny.
      expect(found.high).toBeGreaterThanOrEqual(-lag - 0.03);
      expect(found.low).toBeLessThanOrEqual(-lag + STAMP_SLACK);
    },
  );
});

describeE2e('haproxy round-robin over two clocks', ['haproxy', 'nginx'], () => {
  it(
    'alternates backends per request on one keep-alive connection, each answer with its own clock',
    { timeout: 60_000 },
    async () => {
      const backends = await startWebServers([
        { kind: 'nginx', offset: 0, label: 'early' },
        { kind: 'nginx', offset: 0.5, label: 'late' },
      ]);
      backends.forEach(track);
      const balancer = track(await startBalancer(backends));
      const answers = await sweep(balancer.port, 2_000);
      const labels = answers.map((answer) => answer.headers['x-clock']);
      expect(answers.length).toBeGreaterThan(20);
      // Strict alternation on one connection.
      labels.forEach((label, index) => expect(label).toBe(index % 2 === 0 ? labels[0] : labels[1]));
      expect(new Set(labels)).toEqual(new Set(['early', 'late']));
      const early = intersect(answers.filter((answer) => answer.headers['x-clock'] === 'early'));
      const late = intersect(answers.filter((answer) => answer.headers['x-clock'] === 'late'));
      expectBrackets(early, 0);
      expectBrackets(late, 0.5);
      // Taken as one host, the answers contradict each other.
      const all = intersect(answers);
      expect(all.low).toBeGreaterThan(all.high);
    },
  );
});

describeE2e('the relay', [], () => {
  it('delays each direction by its own amount with jitter, in order', { timeout: 60_000 }, async () => {
    // A stamping echo: answers each request with the local realtime at its arrival.
    const stamper = createServer((socket) => {
      socket.on('data', () => {
        const arrival = realtime();
        socket.write(`${arrival.sec} ${arrival.nsec}\n`);
      });
    });
    await new Promise<void>((resolve) => stamper.listen(0, '127.0.0.1', resolve));
    const relay = track(
      await startRelay({
        targetPort: (stamper.address() as AddressInfo).port,
        up: { ms: 30, jitterMs: 3 },
        down: { ms: 10, jitterMs: 3 },
      }),
    );
    const socket = connect(relay.port, '127.0.0.1');
    socket.setEncoding('latin1');
    const ups: number[] = [];
    const downs: number[] = [];
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      for (let index = 0; index < 20; index += 1) {
        const replied = new Promise<string>((resolve) => socket.once('data', resolve));
        const sent = realtime();
        socket.write('x');
        const reply = await replied;
        const received = realtime();
        const [sec = '0', nsec = '0'] = reply.trim().split(' ');
        const stamp = { sec: Number(sec), nsec: Number(nsec) };
        ups.push(diffSeconds(stamp, sent));
        downs.push(diffSeconds(received, stamp));
      }
    } finally {
      socket.destroy();
      await new Promise<void>((resolve) => stamper.close(() => resolve()));
    }
    const median = (values: number[]): number =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
    console.info(
      `relay: up median ${(median(ups) * 1e3).toFixed(2)} ms, down median ${(median(downs) * 1e3).toFixed(2)} ms`,
    );
    expect(Math.min(...ups)).toBeGreaterThanOrEqual(0.027 - 0.001);
    expect(Math.min(...downs)).toBeGreaterThanOrEqual(0.007 - 0.001);
    expect(median(ups)).toBeGreaterThan(median(downs) + 0.012);
    expect(median(ups)).toBeLessThan(0.06);
    expect(median(downs)).toBeLessThan(0.04);
    // Jitter: not every leg the same.
    expect(new Set(ups.map((value) => Math.round(value * 1e4))).size).toBeGreaterThan(3);
  });
});

describeE2e('real forward proxies', ['squid', 'tinyproxy', 'nginx'], () => {
  it(
    'squid and tinyproxy forward absolute-form HEAD to a shifted nginx and refuse CONNECT to port 80',
    { timeout: 60_000 },
    async () => {
      const origin = track(await startWebServer('nginx', { offset: -0.3 }));
      for (const kind of ['squid', 'tinyproxy'] as const) {
        const proxy = track(await startProxy(kind));
        const connection = await openHeadConnection(proxy.port);
        try {
          const answer = await connection.head(origin.url);
          expect(answer.status, `${kind}: ${JSON.stringify(answer.headers)}`).toBe(200);
          expect(answer.headers['x-clock']).toBe(origin.label);
          expectBrackets(bounds(answer), origin.offset);
        } finally {
          connection.close();
        }
        // Debian's default rule: CONNECT only to 443.
        const tunnel = await openHeadConnection(proxy.port);
        try {
          const refused = await tunnel.request('CONNECT', `127.0.0.1:${origin.port}`);
          expect(refused.status, `${kind} CONNECT to a non-443 port`).toBe(403);
        } finally {
          tunnel.close();
        }
      }
    },
  );
});
