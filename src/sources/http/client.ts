// The one HTTP client of the probes, on Node's own HTTP client (its parser is native), for
// every server: straight to it, or through an HTTP proxy: plain http:// in absolute form
// (proxies commonly refuse CONNECT to port 80), https:// through a CONNECT tunnel, the
// proxy given or the one in the environment (NO_PROXY honoured).
// Each server has its own agent, one request at a time on one keep-alive socket, and every
// socket comes from the connectors here, which time it.
//
// Timing, the same for every socket: the request gets its socket only once the connection
// is up (the connector calls back after connect, the tunnel or the TLS handshake), and Node
// writes the request's bytes right after the `socket` event: the send time is taken there.
// The receive time is taken by a `data` listener put on the socket before Node's parser, at
// the first bytes after the send (CR and LF alone do not count: the parser skips them). An
// informational (1xx) answer restarts it, so only the final answer is timed; `response`
// (head parsed) is the fallback when the final answer came in the same read as a 1xx. TLS
// trust travels the same way: the connector hands each TLS socket over with how its
// certificates were trusted (tls.ts), and every answer carries its socket's.
import { Agent, request, type ClientRequestArgs, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type * as Tls from 'node:tls';
import type { Clock } from '../../clock.js';
import { codedError } from '../../errors.js';
import type { Timespec } from '../../time.js';
import {
  bodyTooLarge,
  caOption,
  DEFAULT_MAX_HEADER_SIZE,
  defaultPort,
  hostOf,
  KEEP_ALIVE_MS,
  MAX_BODY,
  parseProxy,
  ProbeFault,
  requestHeaders,
  tcpConnector,
  whenReady,
  type Answer,
  type ConnectionOptions,
  type ConnectTarget,
  type Connector,
  type ProbeConnection,
  type ProbeMethod,
  type ProbeResponse,
} from './connection.js';
import type { TlsConnection } from './tls.js';

const require = createRequire(import.meta.url);

/** One socket of a server's connection: the first byte answering the request on it, and its TLS trust. */
class SocketTiming {
  /** The clock of the request waiting for its answer on this socket. */
  #clock: Clock | undefined;
  #firstByte: Timespec | undefined;

  constructor(
    socket: Socket,
    readonly tls: TlsConnection | null,
  ) {
    // Put on before Node's parser listens: each read comes here first.
    socket.on('data', (chunk: Buffer) => {
      if (this.#clock === undefined || this.#firstByte !== undefined) return;
      if (chunk.some((byte) => byte !== 0x0d && byte !== 0x0a)) this.#firstByte = this.#clock.realtime();
    });
  }

  /** The request's bytes go out now: its send time. */
  send(clock: Clock): Timespec {
    this.#clock = clock;
    this.#firstByte = undefined;
    return clock.realtime();
  }

  /** An informational answer came: the next answer is timed afresh. */
  restart(): void {
    this.#firstByte = undefined;
  }

  /** The first byte of the answer whose head was parsed at `headTime` (that time when none was seen). */
  firstByte(headTime: Timespec): Timespec {
    return this.#firstByte ?? headTime;
  }

  /** No request waits on the socket. */
  idle(): void {
    this.#clock = undefined;
  }
}

/** The proxy a server is reached through: the one given, else the environment's unless NO_PROXY exempts the server. */
export function proxyFor(url: URL, proxy: string | undefined): URL | undefined {
  if (proxy !== undefined) return parseProxy(proxy);
  const env = process.env;
  const http = env.http_proxy ?? env.HTTP_PROXY;
  const value = url.protocol === 'https:' ? (env.https_proxy ?? env.HTTPS_PROXY ?? http) : http;
  if (!value || exemptFromProxy(url, env.no_proxy ?? env.NO_PROXY ?? '')) return undefined;
  return parseProxy(value);
}

/** Whether NO_PROXY (`*`, or names with an optional port; `.a.org` and `*.a.org` match below a.org) exempts `url`. */
function exemptFromProxy(url: URL, noProxy: string): boolean {
  const host = hostOf(url.hostname).toLowerCase();
  const port = defaultPort(url);
  return noProxy
    .split(/[,\s]+/)
    .filter(Boolean)
    .some((entry) => {
      if (entry === '*') return true;
      const [, name = entry, entryPort] = /^(.+?)(?::(\d+))?$/.exec(entry) ?? [];
      if (entryPort !== undefined && entryPort !== port) return false;
      const bare = hostOf(name).toLowerCase();
      return /^[.*]/.test(bare) ? host.endsWith(bare.replace(/^\*/, '')) : host === bare;
    });
}

/** Proxy-Authorization for a proxy URL's credentials. */
function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === '' && proxy.password === '') return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** Errors of reaching the proxy are the proxy's. */
const proxyFault = (proxy: URL, error: Error): ProbeFault => {
  const code = (error as NodeJS.ErrnoException).code ?? 'ERR_HTTP_PROXY';
  return new ProbeFault('proxy', `${proxy.host}: ${code} ${error.message}`, code, { cause: error });
};

/** A connection to the proxy itself (TLS with normal verification for an https:// proxy). */
function toProxy(proxy: URL, options: ConnectionOptions): Connector {
  const target: ConnectTarget = { hostname: proxy.hostname, protocol: proxy.protocol, port: defaultPort(proxy) };
  const tcp = tcpConnector(options.timeoutMs);
  const open: Connector =
    proxy.protocol === 'https:'
      ? (_target, callback) => {
          const host = hostOf(proxy.hostname);
          const tls = require('node:tls') as typeof Tls;
          const socket = tls.connect({ host, port: Number(target.port), ...caOption(options.ca), servername: host });
          whenReady(socket, 'secureConnect', 'connect and TLS handshake to the proxy', options.timeoutMs, callback);
        }
      : (_target, callback) => tcp(target, callback);
  return (_target, callback) =>
    open(target, (error, socket) => {
      if (error === null && socket !== null) callback(null, socket);
      else callback(proxyFault(proxy, error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION')), null);
    });
}

/** Longest answer to CONNECT read before giving up on the proxy. */
const MAX_CONNECT_HEAD = 16 * 1024;

/** A raw stream to the server through the proxy's CONNECT tunnel (TLS, if any, goes on top). */
function tunnel(proxy: URL, options: ConnectionOptions): Connector {
  const open = toProxy(proxy, options);
  return (target, callback) =>
    open(target, (error, socket) => {
      if (error !== null || socket === null) {
        callback(error, null);
        return;
      }
      const host = hostOf(target.hostname);
      const port = target.port || (target.protocol === 'https:' ? '443' : '80');
      const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      let head = Buffer.alloc(0);
      const slow = (): Error =>
        codedError(
          `the proxy's answer to CONNECT took longer than ${options.timeoutMs} ms`,
          'ERR_HTTP_CONNECT_TIMEOUT',
        );
      const timer = setTimeout(() => done(slow()), options.timeoutMs);
      const done = (failure: Error | null, rest?: Buffer): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', done);
        socket.off('close', onClose);
        if (failure !== null) {
          socket.destroy();
          callback(failure instanceof ProbeFault ? failure : proxyFault(proxy, failure), null);
          return;
        }
        socket.pause();
        if (rest !== undefined && rest.length > 0) socket.unshift(rest);
        callback(null, socket);
      };
      const onClose = (): void => done(codedError('the proxy closed before answering CONNECT', 'ECONNRESET'));
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          const tooLong = head.length > MAX_CONNECT_HEAD;
          if (tooLong) done(codedError(`a CONNECT answer over ${MAX_CONNECT_HEAD} bytes`, 'ERR_HTTP_PROXY_TUNNEL'));
          return;
        }
        const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
        if (status >= 200 && status < 300) {
          done(null, head.subarray(end + 4));
          return;
        }
        const code = status === 407 ? 'ERR_HTTP_PROXY_AUTH' : 'ERR_HTTP_PROXY_TUNNEL';
        done(new ProbeFault('proxy', `${proxy.host}: CONNECT ${authority}: ${statusLine}`, code));
      };
      socket.on('data', onData);
      socket.once('error', done);
      socket.once('close', onClose);
      const fields = Object.entries({ host: authority, ...proxyAuthorization(proxy) }).map(
        ([name, value]) => `${name}: ${value}`,
      );
      socket.write(`CONNECT ${authority} HTTP/1.1\r\n${fields.map((field) => `${field}\r\n`).join('')}\r\n`);
    });
}

/**
 * https: the time-tolerant connector (tls.ts) over `base` (TCP, or a proxy's tunnel),
 * loaded with the first https connection so that a feeder of http:// servers never loads
 * node:tls and the certificate checks.
 */
function tlsConnector(options: ConnectionOptions, base: Connector | undefined): Connector {
  let connector: Connector | undefined;
  return (target, callback) => {
    if (connector !== undefined) {
      connector(target, callback);
      return;
    }
    import('./tls.js').then(
      ({ timeTolerantConnector }) => {
        try {
          const { timeoutMs, timeUnverified = false } = options;
          connector ??= timeTolerantConnector({ timeoutMs, timeUnverified, extraCa: options.ca, base });
          connector(target, callback);
        } catch (error) {
          callback(error as Error, null);
        }
      },
      (error: Error) => callback(error, null),
    );
  };
}

/** A server's connector: TCP or TLS to it, or through the proxy (absolute form to the proxy, or TLS in a tunnel). */
function serverConnector(https: boolean, proxy: URL | undefined, options: ConnectionOptions): Connector {
  if (proxy === undefined) return https ? tlsConnector(options, undefined) : tcpConnector(options.timeoutMs);
  return https ? tlsConnector(options, tunnel(proxy, options)) : toProxy(proxy, options);
}

/** An agent with one keep-alive connection, each socket from the connector and timed. */
class ServerAgent extends Agent {
  /** Set by destroy(): a request still queued must not open a new connection. */
  closed: Error | undefined;
  readonly timings = new WeakMap<Duplex, SocketTiming>();

  constructor(
    private readonly connector: Connector,
    private readonly target: ConnectTarget,
  ) {
    super({ keepAlive: true, maxSockets: 1, timeout: KEEP_ALIVE_MS });
  }

  override createConnection(
    _options: ClientRequestArgs,
    callback?: (error: Error | null, socket: Duplex) => void,
  ): undefined {
    // Node's callback reads its socket argument only when there is no error.
    const oncreate = callback as ((error: Error | null, socket?: Duplex) => void) | undefined;
    if (this.closed) {
      oncreate?.(this.closed);
      return undefined;
    }
    this.connector(this.target, (error, socket, tls) => {
      if (error !== null || socket === null) {
        oncreate?.(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'));
        return;
      }
      this.timings.set(socket, new SocketTiming(socket, tls ?? null));
      oncreate?.(null, socket);
    });
    return undefined;
  }
}

/** Header fields by lower-case name, repeats joined with ", " (Node would drop some repeats, such as a second Age). */
function headerFields(raw: readonly string[]): Record<string, string | undefined> {
  const fields: Record<string, string | undefined> = {};
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = (raw[index] ?? '').toLowerCase();
    const value = raw[index + 1] ?? '';
    const before = fields[name];
    fields[name] = before === undefined ? value : `${before}, ${value}`;
  }
  return fields;
}

/** The answer whose head `incoming` is, with its times and its connection's TLS trust. */
function answerOf(
  incoming: IncomingMessage,
  times: Pick<ProbeResponse, 'sendTime' | 'receiveTime' | 'headTime' | 'tls'>,
): Answer {
  const headers = headerFields(incoming.rawHeaders);
  const statusCode = incoming.statusCode ?? 0;
  return {
    response: { ...times, statusCode, date: headers.date, age: headers.age },
    statusCode,
    statusText: incoming.statusMessage ?? '',
    headers,
  };
}

/** One keep-alive connection to one server, direct or through a proxy, timed by its sockets. */
export class ServerConnection implements ProbeConnection {
  readonly #agent: ServerAgent;
  readonly #timeoutMs: number;
  readonly #maxHeaderSize: number;
  /** The proxy that answers this server's plain http:// requests (absolute form). */
  readonly #httpProxy: URL | undefined;
  /** How to fail each probe not yet settled. */
  readonly #pending = new Set<(error: Error) => void>();
  #destroyed: Error | undefined;

  constructor(url: URL, options: ConnectionOptions) {
    const proxy = proxyFor(url, options.proxy);
    const https = url.protocol === 'https:';
    this.#httpProxy = proxy !== undefined && !https ? proxy : undefined;
    const target = { hostname: url.hostname, protocol: url.protocol, port: defaultPort(url) };
    this.#agent = new ServerAgent(serverConnector(https, proxy, options), target);
    this.#timeoutMs = options.timeoutMs;
    this.#maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  }

  httpProxy(): URL | undefined {
    return this.#httpProxy;
  }

  async destroy(reason?: Error): Promise<void> {
    this.#destroyed ??= reason ?? codedError('connection closed', 'ERR_HTTP_CONNECTION_CLOSED');
    this.#agent.closed = this.#destroyed;
    // At once, whether a probe waits for its answer, its connection or its turn.
    for (const fail of this.#pending) fail(this.#destroyed);
    this.#agent.destroy();
  }

  send(url: URL, clock: Clock, method: ProbeMethod): Promise<Answer> {
    if (this.#destroyed) return Promise.reject(this.#destroyed);
    return new Promise((resolve, reject) => {
      let sendTime: Timespec | undefined;
      let timing: SocketTiming | undefined;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const proxy = this.#httpProxy;
      const outgoing = request({
        agent: this.#agent,
        method,
        host: hostOf(url.hostname),
        port: defaultPort(url),
        // Through a proxy, plain http:// goes in absolute form (credentials are never sent on).
        path: proxy ? `${url.protocol}//${url.host}${url.pathname}${url.search}` : `${url.pathname}${url.search}`,
        headers: { host: url.host, ...requestHeaders(method), ...(proxy ? proxyAuthorization(proxy) : {}) },
        maxHeaderSize: this.#maxHeaderSize,
      });
      const finish = (): void => {
        settled = true;
        clearTimeout(timer);
        timing?.idle();
        this.#pending.delete(fail);
      };
      const fail = (error: Error): void => {
        if (settled) return;
        finish();
        reject(error);
        outgoing.destroy(error);
      };
      let answered: { answer: Answer; incoming: IncomingMessage } | undefined;
      const succeed = (answer: Answer): void => {
        if (settled) return;
        finish();
        resolve(answer);
      };
      // A complete answer stands whatever comes after it on a connection being closed (a
      // proxy's error page sent after the head of its answer to HEAD).
      const failUnlessAnswered = (error: Error): void =>
        answered?.incoming.complete ? succeed(answered.answer) : fail(error);
      this.#pending.add(fail);
      const limit = (what: string, code: string): NodeJS.Timeout =>
        setTimeout(() => fail(codedError(`${what} took longer than ${this.#timeoutMs} ms`, code)), this.#timeoutMs);
      // Connecting has its own limit (the connector's); the head's starts with the send.
      outgoing.once('socket', (socket: Socket) => {
        timing = this.#agent.timings.get(socket);
        sendTime = timing?.send(clock) ?? clock.realtime();
        timer = limit('the response head', 'ERR_HTTP_HEADERS_TIMEOUT');
      });
      // Node emits it for every 1xx but 101, 100 Continue included.
      outgoing.on('information', () => timing?.restart());
      // A 101 (an upgrade never asked for) ends in 'close' alone; a settled probe ignores it.
      const noAnswer = 'the connection closed without a final answer (such as an unasked-for 101 Switching Protocols)';
      // Every request closes: the error (a stack trace) is made only for one that closed unanswered.
      outgoing.once('close', () => {
        if (!settled) failUnlessAnswered(new ProbeFault('protocol', noAnswer, 'ERR_HTTP_NO_RESPONSE'));
      });
      outgoing.once('response', (incoming: IncomingMessage) => {
        const headTime = clock.realtime();
        const receiveTime = timing?.firstByte(headTime) ?? headTime;
        clearTimeout(timer);
        timer = limit('the response body', 'ERR_HTTP_BODY_TIMEOUT');
        // 'socket' comes before any answer; kept as a guard: without a send time there is no upper bound.
        if (sendTime === undefined) {
          fail(codedError('response came without a send time: no upper bound', 'ERR_HTTP_NO_SEND_TIME'));
          return;
        }
        const answer = answerOf(incoming, { sendTime, receiveTime, headTime, tls: timing?.tls ?? null });
        answered = { answer, incoming };
        let bodyBytes = 0;
        incoming.on('data', (chunk: Buffer) => {
          bodyBytes += chunk.length;
          if (bodyBytes > MAX_BODY) fail(bodyTooLarge());
        });
        incoming.on('error', failUnlessAnswered);
        incoming.once('end', () => succeed(answer));
      });
      outgoing.on('error', failUnlessAnswered);
      outgoing.end();
    });
  }
}
