// Local HTTP(S) servers on 127.0.0.1 whose Date clocks are off by known amounts, with
// injected delays and the faults real servers show (liars, caches, frozen or missing
// Date, load balancers, broken protocol). Stamps come from the addon's CLOCK_REALTIME,
// so the true offset is exactly `offset` whatever the scheduler does.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { realtime } from '../../../src/clock.js';
import { formatHttpDate, type HttpDateFormat } from '../../../src/sources/http/date.js';
import { addSeconds } from '../../../src/time.js';

export interface Delay {
  /** ms before the server stamps its Date (client -> server leg) */
  up: number;
  /** ms after the stamp before the response leaves (server -> client leg) */
  down: number;
  /** each leg gets a uniform extra in [-jitter, +jitter] ms */
  jitter?: number;
}

export type Fault =
  | 'none'
  | 'age' // a cache's copy: Age header
  | 'frozen' // Date stuck at the first stamp
  | 'no-date'
  | 'close' // Connection: close on every response
  | 'hang' // accepts, never answers
  | 'slow-headers' // response head one byte per 300 ms
  | 'huge-headers' // 64 KiB of headers
  | 'garbage' // not HTTP at all
  | 'reset' // RST on the request
  | 'continue' // an unasked-for 100 Continue before the answer
  | 'early-hints'; // 103 Early Hints, then the answer 50 ms later

export interface TimeServerConfig {
  /** server clock - true clock, seconds (may be fractional) */
  offset?: number;
  /** a load balancer over backends with these offsets, alternating per request */
  split?: number[];
  delay?: Delay;
  format?: HttpDateFormat;
  /** every other answer carries a cached Date this many seconds old (a cache timer firing late) */
  stale?: number;
  fault?: Fault;
  tls?: { key: string; cert: string };
  /** listen on this port (a server coming back where it was); default: any free port */
  port?: number;
  /**
   * the Date second changes this many seconds after the clock's (a Date cache refreshed on its own timer, as
   * lighttpd's)
   */
  lag?: number;
  /** uniforms in [0, 1) for the delays' jitter (default Math.random): a seeded run repeats */
  random?: () => number;
}

export interface TimeServer {
  url: string;
  port: number;
  requests: number;
  /** Steps the server's clock: from now on it is `offset` seconds off the true clock. */
  setOffset(offset: number): void;
  close(): Promise<void>;
}

const RAW_FAULTS: ReadonlySet<Fault> = new Set(['hang', 'slow-headers', 'huge-headers', 'garbage', 'reset']);

function legDelay(ms: number, jitter: number, random: () => number): number {
  return Math.max(0, ms + (random() * 2 - 1) * jitter);
}

function rawHandler(fault: Fault, sockets: Set<Socket>): (socket: Socket) => void {
  return (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => {
      const date = formatHttpDate(realtime().sec);
      switch (fault) {
        case 'hang':
          return;
        case 'garbage':
          socket.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\0\0\0');
          return;
        case 'reset':
          socket.resetAndDestroy();
          return;
        case 'huge-headers':
          socket.write(
            `HTTP/1.1 200 OK\r\nDate: ${date}\r\nX-Padding: ${'x'.repeat(64 * 1024)}\r\nContent-Length: 0\r\n\r\n`,
          );
          return;
        case 'slow-headers': {
          const head = Buffer.from(`HTTP/1.1 200 OK\r\nDate: ${date}\r\nContent-Length: 0\r\n\r\n`);
          let index = 0;
          const timer = setInterval(() => {
            if (index >= head.length || socket.destroyed) return clearInterval(timer);
            socket.write(head.subarray(index, index + 1));
            index += 1;
          }, 300);
          socket.on('close', () => clearInterval(timer));
          return;
        }
        default:
          return;
      }
    });
  };
}

export async function startTimeServer(config: TimeServerConfig = {}): Promise<TimeServer> {
  const { delay, format = 'imf-fixdate', fault = 'none', split, stale = 0, lag = 0, random = Math.random } = config;
  const sockets = new Set<Socket>();
  let frozen: number | undefined;
  const state = { requests: 0, offset: config.offset ?? 0 };
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const backend = split ? (split[state.requests % split.length] ?? 0) : state.offset;
    state.requests += 1;
    if (fault === 'continue') response.writeContinue();
    if (fault === 'early-hints') {
      response.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      await sleep(50);
    }
    if (delay) await sleep(legDelay(delay.up, delay.jitter ?? 0, random));
    const stamp = addSeconds(realtime(), backend - lag - (state.requests % 2 === 0 ? stale : 0)).sec;
    if (fault === 'frozen') frozen ??= stamp;
    if (delay) await sleep(legDelay(delay.down, delay.jitter ?? 0, random));
    const headers: Record<string, string> = { 'content-length': '0', 'cache-control': 'no-store' };
    if (fault !== 'no-date') headers.date = formatHttpDate(frozen ?? stamp, format);
    if (fault === 'age') headers.age = '42';
    if (fault === 'close') headers.connection = 'close';
    response.sendDate = false;
    response.writeHead(request.method === 'HEAD' || request.method === 'GET' ? 200 : 405, headers);
    response.end();
  };
  let server: Server | NetServer;
  if (RAW_FAULTS.has(fault)) {
    server = createNetServer(rawHandler(fault, sockets));
  } else {
    const listener = (request: IncomingMessage, response: ServerResponse): void => void handle(request, response);
    const httpServer = config.tls
      ? createHttpsServer({ key: config.tls.key, cert: config.tls.cert }, listener)
      : createHttpServer(listener);
    httpServer.keepAliveTimeout = 30_000;
    server = httpServer;
    httpServer.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
  }
  await new Promise<void>((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = config.tls ? 'https' : 'http';
  return {
    url: `${scheme}://127.0.0.1:${port}/`,
    port,
    get requests() {
      return state.requests;
    },
    setOffset(offset: number) {
      state.offset = offset;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startTimeServers(configs: readonly TimeServerConfig[]): Promise<TimeServer[]> {
  return Promise.all(configs.map((config) => startTimeServer(config)));
}

export async function closeAll(servers: readonly TimeServer[]): Promise<void> {
  await Promise.all(servers.map((server) => server.close()));
}
