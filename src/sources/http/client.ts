// The one HTTP client of the probes, for every server: straight to it, or through an HTTP
// proxy: plain http:// in absolute form (proxies commonly refuse CONNECT to port 80),
// https:// through a CONNECT tunnel, the proxy given or the one in the environment
// (NO_PROXY honoured). Each server has one keep-alive socket, one request at a time, and
// every socket comes from the connectors here. HTTP/1.1 is written and read here
// (answer-reader.ts) rather than by node:http: a probe is one HEAD and one head back, and
// node:http's request, agent and message streams cost 0.2-0.35 ms of the event loop per
// probe against 0.08-0.17 ms here (50 servers of one nginx on loopback, 3 probes each),
// loop time that made the last aimed second's checks go out late at N = 50.
//
// Timing, the same for every socket: the send time is read just before the request's
// bytes are written, on a socket already connected (the connector calls back after
// connect, the tunnel or the TLS handshake). The receive time is that of the read that
// brought the answer's first byte (CR and LF alone do not count: blank lines before an
// answer are skipped); after an informational (1xx) answer, the read that brought the
// final answer's first byte. TLS trust travels with the socket: the connector hands each
// TLS socket over with how its certificates were trusted (tls.ts), and every answer
// carries its socket's.
import { createRequire } from 'node:module';
import { isIP, type Socket } from 'node:net';
import type * as Tls from 'node:tls';
import type { Clock } from '../../clock.js';
import { codedError, invalidArgType, invalidArgValue } from '../../errors.js';
import type { Timespec } from '../../time.js';
import {
  caOption,
  DEFAULT_MAX_HEADER_SIZE,
  defaultPort,
  hostOf,
  KEEP_ALIVE_MS,
  parseProxy,
  serverName,
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
} from './connection.js';
import type { TlsConnection } from './tls.js';
import { AnswerReader, isLineEnd, type ReadProgress } from './answer-reader.js';

const require = createRequire(import.meta.url);

/**
 * The proxy setting that applies to a server, as given: the one given, else the environment's (HTTPS_PROXY for
 * https://, falling back to HTTP_PROXY; lower case first) unless NO_PROXY exempts the server.
 */
function proxySetting(url: URL, proxy: string | undefined): { name: string; value: string } | undefined {
  if (proxy !== undefined) return { name: 'proxy', value: proxy };
  const names = [...(url.protocol === 'https:' ? ['https_proxy', 'HTTPS_PROXY'] : []), 'http_proxy', 'HTTP_PROXY'];
  const name = names.find((candidate) => process.env[candidate] !== undefined);
  const value = name === undefined ? '' : (process.env[name] ?? '');
  if (name === undefined || value === '' || exemptFromProxy(url, process.env.no_proxy ?? process.env.NO_PROXY ?? ''))
    return undefined;
  return { name, value };
}

/** The proxy a server is reached through: the one given, else the environment's unless NO_PROXY exempts the server. */
export function proxyFor(url: URL, proxy: string | undefined): URL | undefined {
  const setting = proxySetting(url, proxy);
  return setting && parseProxy(setting.value);
}

/** A proxy setting URL parsing refused: all before its last `@` may be a password with `#`, `/` or `?` in it. */
const redactUnparsed = (value: string): string =>
  value.includes('@') ? value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/is, '$1***@') : value;

/**
 * Refuses a proxy that applies to one of `servers` (given, or from the environment) and is not a URL (a space in the
 * host, a port over 65535): it would otherwise be passed over and the server asked directly.
 */
export function checkProxy(servers: readonly URL[], proxy: string | undefined): void {
  if (proxy !== undefined && typeof proxy !== 'string') throw invalidArgType('proxy', 'a string', proxy);
  if (proxy === '') throw invalidArgValue('proxy is empty: give host:port or http://host:port');
  for (const url of servers) {
    const setting = proxySetting(url, proxy);
    if (setting !== undefined && parseProxy(setting.value) === undefined)
      throw invalidArgValue(`${setting.name} is not a proxy URL: ${JSON.stringify(redactUnparsed(setting.value))}`);
  }
}

/**
 * Whether NO_PROXY (`*`, or names and addresses with an optional port; `.a.org` and `*.a.org` match below a.org)
 * exempts `url`.
 */
function exemptFromProxy(url: URL, noProxy: string): boolean {
  const host = hostOf(url.hostname).toLowerCase();
  const port = defaultPort(url);
  return noProxy
    .split(/[,\s]+/)
    .filter(Boolean)
    .some((entry) => {
      if (entry === '*') return true;
      // A bare IPv6 address (`::1`) has colons but no port; `[::1]:8080` has one.
      const [, name = entry, entryPort] = isIP(entry) === 6 ? [] : (/^(.+?)(?::(\d+))?$/.exec(entry) ?? []);
      if (entryPort !== undefined && entryPort !== port) return false;
      const bare = hostOf(name).toLowerCase();
      return /^[.*]/.test(bare) ? host.endsWith(bare.replace(/^\*/, '')) : host === bare;
    });
}

/** Proxy-Authorization for a proxy URL's credentials. */
function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === '' && proxy.password === '') return {};
  // A `%` that starts no escape stands for itself: a throw here would be in a socket's callback.
  const decode = (part: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  const credentials = `${decode(proxy.username)}:${decode(proxy.password)}`;
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
      ? (given, callback) => {
          const host = hostOf(proxy.hostname);
          const tls = require('node:tls') as typeof Tls;
          const socket = tls.connect({ host, port: Number(target.port), ...caOption(options.ca), ...serverName(host) });
          const what = 'connect and TLS handshake to the proxy';
          whenReady(socket, 'secureConnect', what, options.timeoutMs, callback, given.signal);
        }
      : (given, callback) => tcp(given, callback);
  return (given, callback) =>
    open({ ...target, signal: given.signal }, (error, socket) => {
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
      const abandon = (): void => done(codedError('CONNECT abandoned', 'ABORT_ERR'));
      target.signal?.addEventListener('abort', abandon, { once: true });
      const done = (failure: Error | null, rest?: Buffer): void => {
        clearTimeout(timer);
        target.signal?.removeEventListener('abort', abandon);
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

/** A connection's socket and how its certificates were trusted (null for plain http). */
interface OpenSocket {
  socket: Socket;
  tls: TlsConnection | null;
}

/** What ends a kept socket between requests: the other side ending or writing anything, an error, the idle limit. */
const IDLE_ENDS = ['data', 'end', 'error', 'close', 'timeout'] as const;

/** One keep-alive connection to one server, direct or through a proxy: one request at a time, timed on its socket. */
export class ServerConnection implements ProbeConnection {
  readonly #connector: Connector;
  readonly #target: ConnectTarget;
  readonly #timeoutMs: number;
  readonly #maxHeaderSize: number;
  /** The proxy that answers this server's plain http:// requests (absolute form). */
  readonly #httpProxy: URL | undefined;
  /** How to fail each probe not yet settled, queued ones included. */
  readonly #pending = new Set<(error: Error) => void>();
  /** The socket kept open between requests, with what closes it. */
  #idle: { open: OpenSocket; drop: () => void } | undefined;
  /** The request before the next: requests go one at a time. */
  #turn: Promise<unknown> = Promise.resolve();
  #destroyed: Error | undefined;
  /** The last request's bytes: a server is asked the same every time. */
  #lastRequest: { key: string; bytes: string } | undefined;

  constructor(url: URL, options: ConnectionOptions) {
    const proxy = proxyFor(url, options.proxy);
    const https = url.protocol === 'https:';
    this.#httpProxy = proxy !== undefined && !https ? proxy : undefined;
    this.#target = { hostname: url.hostname, protocol: url.protocol, port: defaultPort(url) };
    this.#connector = serverConnector(https, proxy, options);
    this.#timeoutMs = options.timeoutMs;
    this.#maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  }

  httpProxy(): URL | undefined {
    return this.#httpProxy;
  }

  async destroy(reason?: Error): Promise<void> {
    this.#destroyed ??= reason ?? codedError('connection closed', 'ERR_HTTP_CONNECTION_CLOSED');
    // At once, whether a probe waits for its answer, its connection or its turn.
    for (const fail of this.#pending) fail(this.#destroyed);
    this.#idle?.drop();
  }

  send(url: URL, clock: Clock, method: ProbeMethod): Promise<Answer> {
    if (this.#destroyed) return Promise.reject(this.#destroyed);
    const answer = new Promise<Answer>((resolve, reject) => {
      const fail = (error: Error): void => {
        this.#pending.delete(fail);
        reject(error);
      };
      this.#pending.add(fail);
      void this.#turn.then(() => {
        if (!this.#pending.delete(fail)) return;
        this.#exchange(url, clock, method).then(resolve, reject);
      });
    });
    this.#turn = answer.catch(() => undefined);
    return answer;
  }

  /** The request's bytes: origin form, or absolute form to a proxy (credentials never sent on). */
  #requestBytes(url: URL, method: ProbeMethod): string {
    const key = `${method} ${url.href}`;
    if (this.#lastRequest?.key !== key) this.#lastRequest = { key, bytes: this.#writeRequest(url, method) };
    return this.#lastRequest.bytes;
  }

  #writeRequest(url: URL, method: ProbeMethod): string {
    const proxy = this.#httpProxy;
    const target = proxy ? `${url.protocol}//${url.host}${url.pathname}${url.search}` : `${url.pathname}${url.search}`;
    const fields = { host: url.host, connection: 'keep-alive', ...requestHeaders(method) };
    const lines = Object.entries({ ...fields, ...(proxy ? proxyAuthorization(proxy) : {}) });
    return `${method} ${target} HTTP/1.1\r\n${lines.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
  }

  /** The kept socket, or a new one from the connector; what abandons the connecting, if it connects. */
  #open(callback: (error: Error | null, open?: OpenSocket) => void): (() => void) | undefined {
    const idle = this.#idle;
    this.#idle = undefined;
    if (idle !== undefined) {
      const { socket } = idle.open;
      for (const event of IDLE_ENDS) socket.off(event, idle.drop);
      // Closed by the other side in the turn that kept it: its close event is already past.
      if (socket.destroyed || !socket.writable || socket.readableEnded) socket.destroy();
      else {
        socket.setTimeout(0).ref();
        callback(null, idle.open);
        return undefined;
      }
    }
    const connecting = new AbortController();
    this.#connector({ ...this.#target, signal: connecting.signal }, (error, socket, tls) => {
      if (error !== null || socket === null) callback(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'));
      else callback(null, { socket, tls: tls ?? null });
    });
    return () => connecting.abort();
  }

  /** Keeps `open` for the next request: closed when idle too long, or when anything but the end comes on it. */
  #keep(open: OpenSocket): void {
    const { socket } = open;
    const drop = (): void => {
      if (this.#idle?.open === open) this.#idle = undefined;
      socket.destroy();
    };
    this.#idle = { open, drop };
    for (const event of IDLE_ENDS) socket.on(event, drop);
    socket.setTimeout(KEEP_ALIVE_MS).unref();
  }

  /** One request and its answer, on the kept socket or a new one. */
  #exchange(url: URL, clock: Clock, method: ProbeMethod): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const reader = new AnswerReader(method, this.#maxHeaderSize);
      let open: OpenSocket | undefined;
      let timer: NodeJS.Timeout | undefined;
      let sendTime: Timespec | undefined;
      let firstByte: Timespec | undefined;
      let answer: Answer | undefined;
      let settled = false;
      // Ends a connection still being opened for this request.
      let abandon: (() => void) | undefined;
      const settle = (reuse: boolean): void => {
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(fail);
        if (open === undefined) {
          abandon?.();
          return;
        }
        open.socket.off('data', onData).off('error', fail).off('close', onClose);
        if (reuse && this.#destroyed === undefined) this.#keep(open);
        else open.socket.destroy();
      };
      const fail = (error: Error): void => {
        if (settled) return;
        settle(false);
        reject(error);
      };
      const succeed = (whole: Answer): void => {
        if (settled) return;
        settle(reader.reusable);
        resolve(whole);
      };
      const limit = (what: string, code: string): NodeJS.Timeout =>
        setTimeout(() => fail(codedError(`${what} took longer than ${this.#timeoutMs} ms`, code)), this.#timeoutMs);
      const onData = (chunk: Buffer): void => {
        const readAt = clock.realtime();
        if (firstByte === undefined && !chunk.every(isLineEnd)) firstByte = readAt;
        let progress: ReadProgress;
        try {
          progress = reader.push(chunk);
        } catch (error) {
          fail(error as Error);
          return;
        }
        // An informational answer: the final one is timed by the read it began in.
        if (progress.informational) firstByte = progress.finalBegun ? readAt : undefined;
        if (progress.head !== undefined) {
          // The socket flows only from the turn of the send (resume() defers); a guard: no send time, no upper bound.
          if (sendTime === undefined) {
            fail(codedError('an answer came before the request was sent: no upper bound', 'ERR_HTTP_NO_SEND_TIME'));
            return;
          }
          const { statusCode, statusText, headers } = progress.head;
          const tls = open?.tls ?? null;
          const receiveTime = firstByte ?? readAt;
          const response = {
            sendTime,
            receiveTime,
            headTime: readAt,
            statusCode,
            date: headers.date,
            age: headers.age,
            tls,
          };
          answer = { response, statusCode, statusText, headers };
          clearTimeout(timer);
          if (!progress.complete) timer = limit('the response body', 'ERR_HTTP_BODY_TIMEOUT');
        }
        if (progress.complete && answer !== undefined) succeed(answer);
      };
      // The peer closed: the end of a body framed by the close, or an answer cut short.
      const onClose = (): void => {
        if (answer !== undefined && reader.end()) succeed(answer);
        else if (firstByte === undefined) fail(codedError('socket hang up: closed before any answer', 'ECONNRESET'));
        else fail(codedError('the connection closed in the middle of the answer', 'ECONNRESET'));
      };
      this.#pending.add(fail);
      abandon = this.#open((error, opened) => {
        if (settled) opened?.socket.destroy();
        else if (error !== null || opened === undefined)
          fail(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'));
        else {
          open = opened;
          open.socket.on('data', onData).on('error', fail).on('close', onClose).resume();
          const request = this.#requestBytes(url, method);
          sendTime = clock.realtime();
          open.socket.write(request);
          timer = limit('the response head', 'ERR_HTTP_HEADERS_TIMEOUT');
        }
      });
    });
  }
}
