// One HEAD request on a server's own keep-alive connection, timed on the local clock:
// send time just before the request bytes are written (undici's onRequestStart), receive
// time when the parser meets the response's first byte (onResponseStarted, llhttp's
// message-begin, in the same socket read that brought the bytes), before header or
// body handling. onResponseStart (head complete) is the fallback. An informational (1xx)
// answer before the final one restarts the receive time: only the final answer's Date is
// read.
//
// Which answers count: a Date is taken from 2xx, 3xx and 4xx answers (RFC 9110 6.6.1: an
// origin with a clock MUST send it there, and a redirect or a 404 is stamped by the same
// clock as a 200), never from 5xx (often made by a gateway or an error handler with a
// clock of its own, or by a server in trouble) nor from 304 (never asked for: a cache
// answered). A server refusing HEAD (405, 501) is asked with GET for one byte from then
// on. Through a proxy, plain http:// goes in absolute form (proxies commonly refuse
// CONNECT to port 80) and https:// through a CONNECT tunnel; what fails at the proxy is
// reported as the proxy's fault.
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import { Client, proxyAgents, type Connector } from './undici.js';
import type { Clock } from '../../clock.js';
import type { Timespec } from '../../time.js';
import { codedError } from '../../errors.js';
import { timeTolerantConnector, type TlsConnection } from './tls.js';

export interface ConnectionOptions {
  /** `host:port` or `http://[user:pass@]host:port` of an HTTP proxy (CONNECT for https, absolute form for http). */
  proxy?: string;
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots. */
  ca?: string | Buffer;
  /** Limit for a response head (default 16 KiB). */
  maxHeaderSize?: number;
  /** Per-request limit on connect and on waiting for the response head, ms. */
  timeoutMs: number;
  /** Told how each new https connection was trusted (tls.ts). */
  onTls?: (connection: TlsConnection) => void;
}

/** Why a probe gave nothing usable, as `kind: detail` where kind says whose fault it is. */
export class ProbeFault extends Error {
  override name = 'ProbeFault';
  constructor(
    /** `proxy` (the proxy failed), `status` (an answer whose Date is not used), `protocol`. */
    readonly kind: 'proxy' | 'status' | 'protocol',
    message: string,
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface ProbeResponse {
  sendTime: Timespec;
  /** First byte of the response. */
  receiveTime: Timespec;
  /** Response head parsed (>= receiveTime; kept to show what the first-byte hook gains). */
  headTime: Timespec;
  statusCode: number;
  date: string | undefined;
  age: string | undefined;
}

export const PROXY_ENV = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'];

/** `host:port` becomes `http://host:port`; URLs pass unchanged. */
export function proxyUri(proxy: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
}

/** The proxies a dispatcher may go through; `only`: every connection it opens is to one of them. */
interface ProxyRoute {
  proxies: URL[];
  only: boolean;
}

const routes = new WeakMap<Dispatcher, ProxyRoute>();
/** Servers that refused HEAD: probed with GET for one byte from then on. */
const getInstead = new WeakSet<Dispatcher>();

/**
 * Errors of opening a connection: through a proxy, the connection is the proxy's. (A reset
 * later may be the server's, passed on through a tunnel: not counted.)
 */
const CONNECT_CODES = /^(ECONNREFUSED|ENOTFOUND|EAI_.*|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT)$/;

/** A body bigger than this (a server that ignores Range) ends the probe. */
const MAX_BODY = 64 * 1024;

function parseProxy(uri: string): URL | undefined {
  try {
    return new URL(proxyUri(uri));
  } catch {
    return undefined;
  }
}

/** One dispatcher per server, so each server gets its own connection. */
export function createDispatcher(url: URL, options: ConnectionOptions): Dispatcher {
  const tls = options.ca === undefined ? {} : { ca: [...rootCertificates, options.ca.toString()] };
  const common = {
    connectTimeout: options.timeoutMs,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    // HEAD probes follow each other about once a second: keep the connection that long.
    keepAliveTimeout: 10_000,
  };
  // Every https connection, direct or through a proxy's CONNECT tunnel, goes through the
  // connector that copes with a wrong local clock (tls.ts); below it, the tunnel or TCP.
  const connector = (base?: Connector): Connector =>
    timeTolerantConnector({ ...tls, ...(options.ca === undefined ? {} : { extraCa: options.ca }), timeoutMs: options.timeoutMs, ...(base ? { base } : {}), ...(options.onTls ? { onConnection: options.onTls } : {}) });
  // Through a proxy too: one keep-alive connection per server with the limits above, and
  // plain http:// in absolute form (proxyTunnel: false), https:// through CONNECT.
  const proxied = {
    ...common,
    proxyTunnel: false,
    requestTls: tls,
    proxyTls: tls,
    factory: (origin: string | URL, factoryOptions: { connect?: unknown }): Dispatcher =>
      new Client(origin, { ...common, ...factoryOptions, pipelining: 1, connect: connector(typeof factoryOptions.connect === 'function' ? (factoryOptions.connect as Connector) : undefined) }),
  };
  if (options.proxy !== undefined) {
    const { ProxyAgent } = proxyAgents();
    const dispatcher = new ProxyAgent({ ...proxied, uri: proxyUri(options.proxy) });
    const proxy = parseProxy(options.proxy);
    if (proxy) routes.set(dispatcher, { proxies: [proxy], only: true });
    return dispatcher;
  }
  if (PROXY_ENV.some((name) => process.env[name])) {
    const { EnvHttpProxyAgent } = proxyAgents();
    const dispatcher = new EnvHttpProxyAgent({ ...proxied, connect: tls });
    const proxies = PROXY_ENV.flatMap((name) => {
      const value = process.env[name];
      const proxy = value ? parseProxy(value) : undefined;
      return proxy ? [proxy] : [];
    });
    routes.set(dispatcher, { proxies, only: false });
    return dispatcher;
  }
  return new Client(url.origin, { ...common, pipelining: 1, connect: connector() });
}

/** The proxy plain http:// goes through (from the environment: HTTP_PROXY, unless NO_PROXY let the server bypass it). */
function httpProxy(route: ProxyRoute | undefined): URL | undefined {
  if (route === undefined) return undefined;
  if (route.only) return route.proxies[0];
  const value = process.env.HTTP_PROXY ?? process.env.http_proxy;
  return value ? parseProxy(value) : undefined;
}

const defaultPort = (url: URL): string => url.port || (url.protocol === 'https:' ? '443' : '80');

/** The proxy a failure happened at, if it happened there. */
function failingProxy(route: ProxyRoute | undefined, error: Error): URL | undefined {
  if (route === undefined) return undefined;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  // undici's own refusals of a tunnel or of proxy credentials.
  if (/proxy/i.test(error.message)) return route.proxies[0];
  if (!CONNECT_CODES.test(code)) return undefined;
  if (route.only) return route.proxies[0];
  // From the environment a server may bypass the proxy (NO_PROXY): only a failure at the proxy's address counts.
  const failed = error as NodeJS.ErrnoException & { port?: number; address?: string };
  return route.proxies.find((proxy) => String(failed.port) === defaultPort(proxy) && (failed.address === undefined || failed.address === proxy.hostname || !/^[\d.]+$|:/.test(proxy.hostname)));
}

/** The failure as a ProbeFault when the proxy, not the server, is at fault. */
function asProxyFault(route: ProxyRoute | undefined, error: Error): Error {
  const proxy = failingProxy(route, error);
  if (proxy === undefined) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'ERR_HTTP_PROXY';
  return new ProbeFault('proxy', `${proxy.host}: ${code} ${error.message}`, code, { cause: error });
}

/**
 * Whether an answer's Date is used (undefined) or why not. `viaProxy`: the answer came
 * through a proxy in absolute form, so a gateway error is the proxy's.
 */
export function statusProblem(statusCode: number, statusText: string, headers: Readonly<Record<string, string | undefined>>, viaProxy: URL | undefined): ProbeFault | undefined {
  const status = `${statusCode}${statusText ? ` ${statusText}` : ''}`;
  if (statusCode === 407) return new ProbeFault('proxy', `${viaProxy?.host ?? 'proxy'}: ${status}: the proxy wants (other) credentials`, 'ERR_HTTP_PROXY_AUTH');
  // A proxy adds Via to what it forwards (RFC 9110 7.6.3): a server error without one is its own.
  const proxyMade = statusCode === 502 || statusCode === 504 || headers.via === undefined || headers['x-squid-error'] !== undefined || headers['proxy-status'] !== undefined;
  if (viaProxy && statusCode >= 500 && proxyMade) {
    return new ProbeFault('proxy', `${viaProxy.host}: ${status}: the proxy could not get an answer from the server${headers['x-squid-error'] ? ` (${headers['x-squid-error']})` : ''}`, 'ERR_HTTP_PROXY_STATUS');
  }
  if (statusCode >= 500) {
    return new ProbeFault('status', `${status}: a Date in a server error is not used (a gateway or error handler may stamp it with another clock)`, 'ERR_HTTP_STATUS');
  }
  if (statusCode === 304) return new ProbeFault('status', `${status} to a request that asked for no revalidation: a cache answered`, 'ERR_HTTP_STATUS');
  if (statusCode < 200) return new ProbeFault('protocol', `${status} as a final answer`, 'ERR_HTTP_STATUS');
  return undefined;
}

/**
 * Sends one probe: HEAD, or GET for one byte to a server that refused HEAD. Rejects with a
 * ProbeFault (the proxy failed, or an answer whose Date is not used), with undici's error
 * (code, message) on other failures, and with ERR_HTTP_NO_SEND_TIME for an answer whose
 * send time was never taken.
 */
export async function probe(dispatcher: Dispatcher, url: URL, clock: Clock): Promise<ProbeResponse> {
  const route = routes.get(dispatcher);
  // Plain http:// through a proxy is answered by the proxy (absolute form): its errors are the proxy's.
  const viaProxy = url.protocol === 'http:' ? httpProxy(route) : undefined;
  const method = getInstead.has(dispatcher) ? 'GET' : 'HEAD';
  const answer = await send(dispatcher, url, clock, method).catch((error: unknown) => {
    throw error instanceof Error ? asProxyFault(route, error) : error;
  });
  if (method === 'HEAD' && (answer.statusCode === 405 || answer.statusCode === 501)) {
    getInstead.add(dispatcher);
    return probe(dispatcher, url, clock);
  }
  const problem = statusProblem(answer.statusCode, answer.statusText, answer.headers, viaProxy);
  if (problem) throw problem;
  return answer.response;
}

interface Answer {
  response: ProbeResponse;
  statusCode: number;
  statusText: string;
  headers: Record<string, string | undefined>;
}

function send(dispatcher: Dispatcher, url: URL, clock: Clock, method: 'HEAD' | 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let sendTime: Timespec | undefined;
    let firstByteTime: Timespec | undefined;
    let answer: Answer | undefined;
    let noSendTime = false;
    let bodyBytes = 0;
    let informational: number | undefined;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {
        // Called right before the request bytes are written (again on a retry).
        sendTime = clock.realtime();
      },
      onResponseStarted() {
        firstByteTime = clock.realtime();
      },
      onResponseStart(_controller, statusCode, headers, statusText) {
        const headTime = clock.realtime();
        const receiveTime = firstByteTime ?? headTime;
        firstByteTime = undefined;
        // An informational answer (103 Early Hints) comes before the final one: time that one.
        if (statusCode < 200) {
          informational = statusCode;
          return;
        }
        const header = (name: string): string | undefined => {
          const value = headers[name];
          return Array.isArray(value) ? value.join(', ') : value;
        };
        const all = Object.fromEntries(Object.keys(headers).map((name) => [name.toLowerCase(), header(name)]));
        // Without a send time there is no upper bound: borrowing the receive time would make
        // one tighter than the truth.
        if (sendTime !== undefined) {
          answer = { response: { sendTime, receiveTime, headTime, statusCode, date: header('date'), age: header('age') }, statusCode, statusText: statusText ?? '', headers: all };
        } else noSendTime = true;
      },
      onResponseData(controller, chunk) {
        bodyBytes += chunk.length;
        if (bodyBytes > MAX_BODY) controller.abort(new ProbeFault('protocol', `GET for one byte (Range: bytes=0-0) brought more than ${MAX_BODY} bytes of body`, 'ERR_HTTP_BODY_TOO_LARGE'));
      },
      onResponseEnd() {
        if (answer) resolve(answer);
        else if (noSendTime) reject(codedError('response came without a send time (onRequestStart never ran): no upper bound', 'ERR_HTTP_NO_SEND_TIME'));
        else reject(codedError('response ended without a head', 'ERR_HTTP_NO_RESPONSE'));
      },
      onResponseError(_controller, error) {
        // undici drops the connection on a 100 Continue it never asked for (no Expect header).
        if (answer === undefined && (error as NodeJS.ErrnoException).code === 'UND_ERR_SOCKET' && /bad response/.test(error.message) && firstByteTime !== undefined) {
          reject(new ProbeFault('protocol', `an informational answer${informational ? ` (${informational})` : ''} such as 100 Continue that was never asked for: connection dropped`, 'ERR_HTTP_UNEXPECTED_1XX', { cause: error }));
          return;
        }
        reject(error);
      },
    };
    const path = `${url.pathname}${url.search}`;
    dispatcher.dispatch(
      { origin: url.origin, path, method,
        // undici closes after HEAD by default; keep-alive is what makes probes cheap and timely.
        reset: false,
        headers: { 'cache-control': 'no-cache', 'user-agent': 'htntp', ...(method === 'GET' ? { range: 'bytes=0-0' } : {}) } },
      handler,
    );
  });
}
