// Probes through an HTTP proxy, on undici's proxy agents (loaded only by a run that uses a
// proxy): plain http:// goes in absolute form (proxies commonly refuse CONNECT to port 80)
// and https:// through a CONNECT tunnel; what fails at the proxy is reported as the proxy's
// fault.
//
// Timing: the send time just before the request bytes are written (undici's
// onRequestStart), the receive time when the parser meets the response's first byte
// (onResponseStarted, llhttp's message-begin, in the same socket read that brought the
// bytes). onResponseStart (head complete) is the fallback. An informational (1xx) answer
// restarts the receive time.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import type { Clock } from '../../clock.js';
import type { Timespec } from '../../time.js';
import { codedError } from '../../errors.js';
import { bodyTooLarge, DEFAULT_MAX_HEADER_SIZE, defaultPort, KEEP_ALIVE_MS, MAX_BODY, parseProxy, ProbeFault, PROXY_ENV, proxyUri, requestHeaders, type Answer, type ConnectionOptions, type Connector, type ProbeMethod } from './connection.js';
import { caOption, timeTolerantConnector } from './tls.js';

const require = createRequire(import.meta.url);

/**
 * Errors of opening a connection: through a proxy, the connection is the proxy's. (A reset
 * later may be the server's, passed on through a tunnel: not counted.)
 */
const CONNECT_CODES = /^(ECONNREFUSED|ENOTFOUND|EAI_.*|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|ERR_HTTP_CONNECT_TIMEOUT)$/;

/** undici's connect option, made of a connector (undici's callback takes an error or a socket, never both). */
const asUndiciConnect = (connector: Connector): Undici.buildConnector.connector =>
  (target, callback) =>
    connector(target, (error, socket) => {
      if (error === null && socket !== null) callback(null, socket);
      else callback(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'), null);
    });

/** A connector made of undici's connect option (the proxy agents' tunnel). */
const fromUndiciConnect = (connect: Undici.buildConnector.connector): Connector =>
  (target, callback) => connect(target, (...args) => (args[0] === null ? callback(null, args[1]) : callback(args[0], null)));

/** The proxied side of a ProbeConnection (probe.ts creates it with the first probe and answers httpProxy() itself). */
export class ProxiedConnection {
  readonly #dispatcher: Dispatcher;
  /** The proxies it may go through; `only`: every connection it opens is to one of them. */
  readonly #proxies: URL[];
  readonly #only: boolean;

  constructor(options: ConnectionOptions) {
    const tls = caOption(options.ca);
    const common = {
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      maxHeaderSize: options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
      keepAliveTimeout: KEEP_ALIVE_MS,
    };
    // Every https connection through a CONNECT tunnel goes through the connector that copes
    // with a wrong local clock (tls.ts).
    const connector = (base: Connector | undefined): Connector =>
      timeTolerantConnector({ ...(options.ca === undefined ? {} : { extraCa: options.ca }), timeoutMs: options.timeoutMs, ...(base ? { base } : {}), ...(options.onTls ? { onConnection: options.onTls } : {}) });
    const undici = require('undici') as typeof Undici;
    // One keep-alive connection per server with the limits above; plain http:// in absolute
    // form (proxyTunnel: false), https:// through CONNECT.
    const proxied = {
      ...common,
      proxyTunnel: false,
      requestTls: tls,
      proxyTls: tls,
      factory: (origin: string | URL, factoryOptions: { connect?: unknown }): Dispatcher => {
        // Below it, the agent's tunnel or connection to the proxy; a server NO_PROXY exempts gets TCP.
        const base = typeof factoryOptions.connect === 'function' ? fromUndiciConnect(factoryOptions.connect as Undici.buildConnector.connector) : undefined;
        return new undici.Client(origin, { ...common, ...factoryOptions, pipelining: 1, connect: asUndiciConnect(connector(base)) });
      },
    };
    if (options.proxy !== undefined) {
      this.#dispatcher = new undici.ProxyAgent({ ...proxied, uri: proxyUri(options.proxy) });
      const proxy = parseProxy(options.proxy);
      this.#proxies = proxy ? [proxy] : [];
      this.#only = true;
      return;
    }
    this.#dispatcher = new undici.EnvHttpProxyAgent({ ...proxied, connect: tls });
    this.#proxies = PROXY_ENV.flatMap((name) => {
      const value = process.env[name];
      const proxy = value ? parseProxy(value) : undefined;
      return proxy ? [proxy] : [];
    });
    this.#only = false;
  }

  async destroy(reason?: Error): Promise<void> {
    await this.#dispatcher.destroy(reason ?? null).catch(() => {});
  }

  async send(url: URL, clock: Clock, method: ProbeMethod): Promise<Answer> {
    return undiciSend(this.#dispatcher, url, clock, method).catch((error: unknown) => {
      throw error instanceof Error ? this.#asProxyFault(error) : error;
    });
  }

  /** The proxy a failure happened at, if it happened there. */
  #failingProxy(error: Error): URL | undefined {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    // undici's own refusals of a tunnel or of proxy credentials.
    if (/proxy/i.test(error.message)) return this.#proxies[0];
    if (!CONNECT_CODES.test(code)) return undefined;
    if (this.#only) return this.#proxies[0];
    // From the environment a server may bypass the proxy (NO_PROXY): only a failure at the proxy's address counts.
    const failed = error as NodeJS.ErrnoException & { port?: number; address?: string };
    return this.#proxies.find((proxy) => String(failed.port) === defaultPort(proxy) && (failed.address === undefined || failed.address === proxy.hostname || !/^[\d.]+$|:/.test(proxy.hostname)));
  }

  /** The failure as a ProbeFault when the proxy, not the server, is at fault. */
  #asProxyFault(error: Error): Error {
    const proxy = this.#failingProxy(error);
    if (proxy === undefined) return error;
    const code = (error as NodeJS.ErrnoException).code ?? 'ERR_HTTP_PROXY';
    return new ProbeFault('proxy', `${proxy.host}: ${code} ${error.message}`, code, { cause: error });
  }
}

/** One request on an undici dispatcher, timed by its hooks. */
export function undiciSend(dispatcher: Dispatcher, url: URL, clock: Clock, method: ProbeMethod): Promise<Answer> {
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
        if (bodyBytes > MAX_BODY) controller.abort(bodyTooLarge());
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
    dispatcher.dispatch(
      // undici closes after HEAD by default; keep-alive is what makes probes cheap and timely.
      { origin: url.origin, path: `${url.pathname}${url.search}`, method, reset: false, headers: requestHeaders(method) },
      handler,
    );
  });
}
