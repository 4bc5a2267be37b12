// The one HTTP client of the probes, on undici, for every server: straight to it, or
// through an HTTP proxy (plain http:// in absolute form, as proxies commonly refuse CONNECT
// to port 80; https:// through a CONNECT tunnel; NO_PROXY from the environment honoured).
// Each server has its own undici Client, one request at a time on one keep-alive socket,
// and every socket comes from the connector here, which times it.
//
// Timing, the same for every socket: the send time is taken as undici is about to write
// the request's bytes (onRequestStart, called right before the write); the receive time by
// a `data` listener on the socket undici reads, at the first bytes after the send (CR and
// LF alone do not count: the parser skips them). An informational (1xx) answer restarts
// it, so only the final answer is timed; the parsed head's time is the fallback when the
// final answer came in the same read as a 1xx. TLS trust travels the same way: the
// connector hands each TLS socket over with how its certificates were trusted (tls.ts),
// and every answer carries its socket's.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import type { Clock } from '../../clock.js';
import { codedError } from '../../errors.js';
import type { Timespec } from '../../time.js';
import { bodyTooLarge, caOption, DEFAULT_MAX_HEADER_SIZE, defaultPort, httpProxy, KEEP_ALIVE_MS, MAX_BODY, parseProxy, ProbeFault, PROXY_ENV, proxyUri, requestHeaders, tcpConnector, usesProxy, type Answer, type ConnectionOptions, type Connector, type ProbeConnection, type ProbeMethod } from './connection.js';
import type { TlsConnection } from './tls.js';

const require = createRequire(import.meta.url);

// undici's entry point loads all of undici (fetch, WebSocket, caches: about 7 MB more): a
// direct server's Client is loaded alone. The proxy agents need the entry point (it gives
// dispatchers the connect() their CONNECT tunnels are made with).
const undiciClient = (): typeof Undici.Client => require('undici/lib/dispatcher/client.js') as typeof Undici.Client;
const undici = (): typeof Undici => require('undici') as typeof Undici;

/**
 * Errors of opening a connection: through a proxy, the connection is the proxy's. (A reset
 * later may be the server's, passed on through a tunnel: not counted.)
 */
const CONNECT_CODES = /^(ECONNREFUSED|ENOTFOUND|EAI_.*|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|ERR_HTTP_CONNECT_TIMEOUT)$/;

/** One socket of a server's connection: the first byte answering the request on it, and its TLS trust. */
export class SocketTiming {
  /** The clock of the request waiting for its answer on this socket. */
  #clock: Clock | undefined;
  #firstByte: Timespec | undefined;

  constructor(
    socket: Socket,
    readonly tls: TlsConnection | null,
  ) {
    // undici reads the socket on `readable`: each chunk it reads comes here first, before its parser.
    socket.on('data', (chunk: Buffer) => {
      if (this.#clock !== undefined && this.#firstByte === undefined && chunk.some((byte) => byte !== 0x0d && byte !== 0x0a)) this.#firstByte = this.#clock.realtime();
    });
  }

  /** The request's bytes go out now: its send time. */
  send(clock: Clock): Timespec {
    this.#clock = clock;
    this.#firstByte = undefined;
    return clock.realtime();
  }

  /** A head was parsed at `headTime`: its first byte's time; what comes next is timed afresh. */
  answerStart(headTime: Timespec): Timespec {
    const firstByte = this.#firstByte ?? headTime;
    this.#firstByte = undefined;
    return firstByte;
  }

  /** No request waits on the socket. */
  idle(): void {
    this.#clock = undefined;
  }
}

/**
 * A connector for the server's (or tunnel's) sockets: plain ones from `plain`; https with
 * the time-tolerant connector (tls.ts), loaded with the first https connection so that a
 * feeder of http:// servers never loads node:tls and the certificate checks.
 */
function serverConnector(options: ConnectionOptions, plain: Connector, base: Connector | undefined): Connector {
  let secure: Connector | undefined;
  return (target, callback) => {
    if (target.protocol !== 'https:') {
      plain(target, callback);
      return;
    }
    if (secure !== undefined) {
      secure(target, callback);
      return;
    }
    import('./tls.js').then(({ timeTolerantConnector }) => {
      try {
        secure ??= timeTolerantConnector({ timeoutMs: options.timeoutMs, ...(options.ca === undefined ? {} : { extraCa: options.ca }), ...(base ? { base } : {}) });
        secure(target, callback);
      } catch (error) {
        callback(error as Error, null);
      }
    }, (error: Error) => callback(error, null));
  };
}

/** A connector made of undici's connect option (a proxy agent's tunnel, or its connection to the proxy). */
const fromUndiciConnect = (connect: Undici.buildConnector.connector): Connector =>
  (target, callback) => connect(target, (...args) => (args[0] === null ? callback(null, args[1]) : callback(args[0], null)));

/** The proxies a connection may go through; `only`: every connection it opens is to one of them. */
interface ProxyRoute {
  proxies: URL[];
  only: boolean;
}

/** One keep-alive connection to one server, direct or through a proxy, timed by its sockets. */
export class ServerConnection implements ProbeConnection {
  readonly #dispatcher: Dispatcher;
  readonly #timeoutMs: number;
  readonly #route: ProxyRoute | undefined;
  readonly #httpProxy: URL | undefined;
  /** The socket undici has (one at a time: one Client, one request at a time). */
  #socket: SocketTiming | undefined;
  /** How to fail each probe not yet settled. */
  readonly #pending = new Set<(error: Error) => void>();
  #destroyed: Error | undefined;

  constructor(url: URL, options: ConnectionOptions) {
    this.#timeoutMs = options.timeoutMs;
    // The limits are this class's own (the head's from the send, the body's from the head).
    const limits = { headersTimeout: 0, bodyTimeout: 0, maxHeaderSize: options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE, keepAliveTimeout: KEEP_ALIVE_MS };
    const connect = (connector: Connector): Undici.buildConnector.connector => (target, callback) =>
      connector(target, (error, socket, tls) => {
        if (error !== null || socket === null) {
          callback(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'), null);
          return;
        }
        this.#socket = new SocketTiming(socket, tls ?? null);
        callback(null, socket);
      });
    if (!usesProxy(options.proxy)) {
      const Client = undiciClient();
      this.#dispatcher = new Client(url.origin, { ...limits, pipelining: 1, connect: connect(serverConnector(options, tcpConnector(options.timeoutMs), undefined)) });
      this.#route = undefined;
      this.#httpProxy = undefined;
      return;
    }
    const { dispatcher, route } = proxyDispatcher(options, limits, (base) => connect(serverConnector(options, base ?? tcpConnector(options.timeoutMs), base)));
    this.#dispatcher = dispatcher;
    this.#route = route;
    this.#httpProxy = httpProxy(options.proxy);
  }

  httpProxy(): URL | undefined {
    return this.#httpProxy;
  }

  async destroy(reason?: Error): Promise<void> {
    this.#destroyed ??= reason ?? codedError('connection closed', 'ERR_HTTP_CONNECTION_CLOSED');
    // At once, whether a probe waits for its answer, its connection or its turn.
    for (const fail of this.#pending) fail(this.#destroyed);
    // Its sockets are destroyed now; their closing is not waited for.
    this.#dispatcher.destroy(this.#destroyed).catch(() => {});
  }

  send(url: URL, clock: Clock, method: ProbeMethod): Promise<Answer> {
    if (this.#destroyed) return Promise.reject(this.#destroyed);
    const { answer, fail } = exchange(this.#dispatcher, url, clock, method, { timeoutMs: this.#timeoutMs, socket: () => this.#socket });
    this.#pending.add(fail);
    return answer.then(
      (value) => {
        this.#pending.delete(fail);
        return value;
      },
      (error: unknown) => {
        this.#pending.delete(fail);
        throw error instanceof Error && !(error instanceof ProbeFault) && error !== this.#destroyed ? this.#asProxyFault(error) : error;
      },
    );
  }

  /** The proxy a failure happened at, if it happened there. */
  #failingProxy(error: Error): URL | undefined {
    if (this.#route === undefined) return undefined;
    const { proxies, only } = this.#route;
    const code = (error as NodeJS.ErrnoException).code ?? '';
    // undici's own refusals of a tunnel or of proxy credentials.
    if (/proxy/i.test(error.message)) return proxies[0];
    if (!CONNECT_CODES.test(code)) return undefined;
    if (only) return proxies[0];
    // From the environment a server may bypass the proxy (NO_PROXY): only a failure at the proxy's address counts.
    const failed = error as NodeJS.ErrnoException & { port?: number; address?: string };
    return proxies.find((proxy) => String(failed.port) === defaultPort(proxy) && (failed.address === undefined || failed.address === proxy.hostname || !/^[\d.]+$|:/.test(proxy.hostname)));
  }

  /** The failure as a ProbeFault when the proxy, not the server, is at fault. */
  #asProxyFault(error: Error): Error {
    const proxy = this.#failingProxy(error);
    if (proxy === undefined) return error;
    const code = (error as NodeJS.ErrnoException).code ?? 'ERR_HTTP_PROXY';
    return new ProbeFault('proxy', `${proxy.host}: ${code} ${error.message}`, code, { cause: error });
  }
}

type Limits = Pick<Undici.Client.Options, 'headersTimeout' | 'bodyTimeout' | 'maxHeaderSize' | 'keepAliveTimeout'>;

/**
 * undici's proxy agents with one Client per server below them, whose sockets come from
 * `connect` over `base` (the agent's tunnel, its connection to the proxy, or for a server
 * NO_PROXY exempts a plain connection).
 */
function proxyDispatcher(options: ConnectionOptions, limits: Limits, connect: (base: Connector | undefined) => Undici.buildConnector.connector): { dispatcher: Dispatcher; route: ProxyRoute } {
  const ca = caOption(options.ca);
  const proxied = {
    ...limits,
    connectTimeout: options.timeoutMs,
    proxyTunnel: false,
    requestTls: ca,
    proxyTls: ca,
    factory: (origin: string | URL, factoryOptions: { connect?: unknown }): Dispatcher => {
      const { Client } = undici();
      const base = typeof factoryOptions.connect === 'function' ? fromUndiciConnect(factoryOptions.connect as Undici.buildConnector.connector) : undefined;
      return new Client(origin, { ...limits, ...factoryOptions, pipelining: 1, connect: connect(base) });
    },
  };
  if (options.proxy !== undefined) {
    const { ProxyAgent } = undici();
    const proxy = parseProxy(options.proxy);
    return { dispatcher: new ProxyAgent({ ...proxied, uri: proxyUri(options.proxy) }), route: { proxies: proxy ? [proxy] : [], only: true } };
  }
  const { EnvHttpProxyAgent } = undici();
  const proxies = PROXY_ENV.flatMap((name) => {
    const value = process.env[name];
    const proxy = value ? parseProxy(value) : undefined;
    return proxy ? [proxy] : [];
  });
  return { dispatcher: new EnvHttpProxyAgent({ ...proxied, connect: ca }), route: { proxies, only: false } };
}

interface ExchangeOptions {
  timeoutMs: number;
  /** The socket the request goes out on, once undici is about to write it. */
  socket: () => SocketTiming | undefined;
}

/**
 * One request on `dispatcher`, timed by its socket. `fail` settles it at once with an error
 * (the connection is being destroyed) and aborts the request if it was sent.
 */
export function exchange(dispatcher: Dispatcher, url: URL, clock: Clock, method: ProbeMethod, options: ExchangeOptions): { answer: Promise<Answer>; fail: (error: Error) => void } {
  let fail: (error: Error) => void = () => {};
  const answer = new Promise<Answer>((resolve, reject) => {
    let socket: SocketTiming | undefined;
    let sendTime: Timespec | undefined;
    let response: Answer | undefined;
    let noSendTime = false;
    let informational: number | undefined;
    let bodyBytes = 0;
    let controller: Dispatcher.DispatchController | undefined;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      socket?.idle();
      return true;
    };
    fail = (error: Error): void => {
      if (!settle()) return;
      reject(error);
      controller?.abort(error);
    };
    const limit = (what: string, code: string): NodeJS.Timeout =>
      setTimeout(() => fail(codedError(`${what} took longer than ${options.timeoutMs} ms`, code)), options.timeoutMs);
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(requestController) {
        controller = requestController;
        if (settled) {
          requestController.abort(codedError('request settled before it was sent', 'ERR_HTTP_CONNECTION_CLOSED'));
          return;
        }
        // Called right before the request's bytes are written, on the socket undici has now.
        socket = options.socket();
        sendTime = socket?.send(clock) ?? clock.realtime();
        // Connecting has its own limit (the connector's); the head's starts with the send.
        timer = limit('the response head', 'ERR_HTTP_HEADERS_TIMEOUT');
      },
      onResponseStart(_controller, statusCode, headers, statusText) {
        const headTime = clock.realtime();
        const receiveTime = socket?.answerStart(headTime) ?? headTime;
        // An informational answer (103 Early Hints) comes before the final one: time that one.
        if (statusCode < 200) {
          informational = statusCode;
          return;
        }
        clearTimeout(timer);
        timer = limit('the response body', 'ERR_HTTP_BODY_TIMEOUT');
        const fields = headerFields(headers);
        // Without a send time there is no upper bound: borrowing the receive time would make
        // one tighter than the truth.
        if (sendTime === undefined) {
          noSendTime = true;
          return;
        }
        response = {
          response: { sendTime, receiveTime, headTime, statusCode, date: fields.date, age: fields.age, tls: socket?.tls ?? null },
          statusCode,
          statusText: statusText ?? '',
          headers: fields,
        };
      },
      onResponseData(_controller, chunk) {
        bodyBytes += chunk.length;
        if (bodyBytes > MAX_BODY) fail(bodyTooLarge());
      },
      onResponseEnd() {
        if (!settle()) return;
        if (response) resolve(response);
        else if (noSendTime) reject(codedError('response came without a send time (onRequestStart never ran): no upper bound', 'ERR_HTTP_NO_SEND_TIME'));
        else reject(codedError('response ended without a head', 'ERR_HTTP_NO_RESPONSE'));
      },
      onResponseError(_controller, error) {
        if (!settle()) return;
        reject(responseError(error, response === undefined, informational));
      },
    };
    dispatcher.dispatch(
      // undici closes after HEAD by default; keep-alive is what makes probes cheap and timely.
      { origin: url.origin, path: `${url.pathname}${url.search}`, method, reset: false, headers: requestHeaders(method) },
      handler,
    );
  });
  return { answer, fail };
}

/** undici's error, named as a protocol fault where the server answered what was never asked for. */
function responseError(error: Error, beforeFinalHead: boolean, informational: number | undefined): Error {
  if (!beforeFinalHead || (error as NodeJS.ErrnoException).code !== 'UND_ERR_SOCKET') return error;
  // undici drops the connection on an upgrade (101) or a 100 Continue it never asked for.
  if (/bad upgrade/.test(error.message)) {
    return new ProbeFault('protocol', 'an unasked-for 101 Switching Protocols: no final answer', 'ERR_HTTP_NO_RESPONSE', { cause: error });
  }
  if (/bad response/.test(error.message)) {
    return new ProbeFault('protocol', `an informational answer${informational ? ` (${informational})` : ''} such as 100 Continue that was never asked for: connection dropped`, 'ERR_HTTP_UNEXPECTED_1XX', { cause: error });
  }
  return error;
}

/** Header fields by lower-case name, repeats joined with ", " (RFC 9110 5.3). */
function headerFields(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const fields: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) fields[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  return fields;
}
