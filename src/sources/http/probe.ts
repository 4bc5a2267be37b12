// One HEAD request on a server's own keep-alive connection, timed on the local clock:
// send time just before the request bytes are written (undici's onRequestStart), receive
// time when the parser meets the response's first byte (onResponseStarted, llhttp's
// message-begin, in the same socket read that brought the bytes), before header or
// body handling. onResponseStart (head complete) is the fallback.
import { rootCertificates } from 'node:tls';
import { Client, EnvHttpProxyAgent, ProxyAgent, type Dispatcher } from 'undici';
import type { Clock } from '../../clock.js';
import type { Timespec } from '../../time.js';
import { codedError } from '../../errors.js';

export interface ConnectionOptions {
  /** `host:port` or `http://[user:pass@]host:port` of an HTTP proxy (CONNECT for https). */
  proxy?: string;
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots. */
  ca?: string | Buffer;
  /** Limit for a response head (default 16 KiB). */
  maxHeaderSize?: number;
  /** Per-request limit on connect and on waiting for the response head, ms. */
  timeoutMs: number;
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
  if (options.proxy !== undefined) {
    return new ProxyAgent({ ...common, uri: proxyUri(options.proxy), requestTls: tls, proxyTls: tls });
  }
  if (PROXY_ENV.some((name) => process.env[name])) {
    return new EnvHttpProxyAgent({ ...common, connect: tls, requestTls: tls, proxyTls: tls });
  }
  return new Client(url.origin, { ...common, pipelining: 1, connect: tls });
}

/**
 * Sends one HEAD probe. Rejects with undici's error (code, message) on any failure, and
 * with ERR_HTTP_NO_SEND_TIME for an answer whose send time was never taken.
 */
export function probe(dispatcher: Dispatcher, url: URL, clock: Clock): Promise<ProbeResponse> {
  return new Promise((resolve, reject) => {
    let sendTime: Timespec | undefined;
    let firstByteTime: Timespec | undefined;
    let response: ProbeResponse | undefined;
    let noSendTime = false;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {
        // Called right before the request bytes are written (again on a retry).
        sendTime = clock.realtime();
      },
      onResponseStarted() {
        firstByteTime = clock.realtime();
      },
      onResponseStart(_controller, statusCode, headers) {
        const headTime = clock.realtime();
        const receiveTime = firstByteTime ?? headTime;
        firstByteTime = undefined;
        const header = (name: string): string | undefined => {
          const value = headers[name];
          return Array.isArray(value) ? value.join(', ') : value;
        };
        // Without a send time there is no upper bound: borrowing the receive time would make
        // one tighter than the truth.
        if (sendTime !== undefined) response = { sendTime, receiveTime, headTime, statusCode, date: header('date'), age: header('age') };
        else noSendTime = true;
      },
      onResponseData() {},
      onResponseEnd() {
        if (response) resolve(response);
        else if (noSendTime) reject(codedError('response came without a send time (onRequestStart never ran): no upper bound', 'ERR_HTTP_NO_SEND_TIME'));
        else reject(codedError('response ended without a head', 'ERR_HTTP_NO_RESPONSE'));
      },
      onResponseError(_controller, error) {
        reject(error);
      },
    };
    const path = `${url.pathname}${url.search}`;
    dispatcher.dispatch(
      { origin: url.origin, path, method: 'HEAD',
        // undici closes after HEAD by default; keep-alive is what makes probes cheap and timely.
        reset: false,
        headers: { 'cache-control': 'no-cache', 'user-agent': 'htntp' } },
      handler,
    );
  });
}
