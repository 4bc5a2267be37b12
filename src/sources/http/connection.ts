// What a probe needs of a connection to one server (client.ts carries it, direct or
// through a proxy), and the connectors below it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, isIP, type Socket } from 'node:net';
import type * as Tls from 'node:tls';
import type { Clock } from '../../clock.js';
import { codedError } from '../../errors.js';
import type { Timespec } from '../../time.js';
import type { TlsConnection } from './tls.js';

const require = createRequire(import.meta.url);

export interface ConnectionOptions {
  /** `host:port` or `http://[user:pass@]host:port` of an HTTP proxy (CONNECT for https, absolute form for http). */
  proxy?: string;
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots. */
  ca?: string | Buffer;
  /** Limit for a response head (default 16 KiB). */
  maxHeaderSize?: number;
  /** Per-request limit on connect and on waiting for the response head, ms. */
  timeoutMs: number;
  /**
   * The caller judges the TLS connection of every answer (gate.ts): a server whose
   * certificates fail only for time at the local clock is then connected to anyway, its
   * answers marked `time-unverified` (tls.ts). Without it that is a TLS failure.
   */
  timeUnverified?: boolean;
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
  /** Response head parsed (>= receiveTime, which falls back to it when no first byte was seen). */
  headTime: Timespec;
  statusCode: number;
  date: string | undefined;
  age: string | undefined;
  /** How the https connection the answer came on was trusted (tls.ts); null for plain http. */
  tls: TlsConnection | null;
}

/** A timed answer with what judging its status needs. */
export interface Answer {
  response: ProbeResponse;
  statusCode: number;
  statusText: string;
  /** Lower-case names; repeated fields joined with ", " (RFC 9110 5.3). */
  headers: Record<string, string | undefined>;
}

export type ProbeMethod = 'HEAD' | 'GET';

/** One keep-alive connection to one server, one request at a time. */
export interface ProbeConnection {
  /**
   * One request, timed on `clock`: the send time just before its bytes are written, the
   * receive time at the final answer's first byte.
   */
  send(url: URL, clock: Clock, method: ProbeMethod): Promise<Answer>;
  /** The proxy that answers plain http:// requests (absolute form), if one does: its errors are its own. */
  httpProxy(): URL | undefined;
  /** Closes the connection; a pending request fails with `reason`. */
  destroy(reason?: Error): Promise<void>;
}

/** A body bigger than this (a server that ignores Range) ends the probe. */
export const MAX_BODY = 64 * 1024;

export const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;

/** HEAD probes follow each other about once a second: an idle connection is kept this long. */
export const KEEP_ALIVE_MS = 10_000;

/** The request's own fields: no cache may answer, and GET (for servers refusing HEAD) asks for one byte. */
export function requestHeaders(method: ProbeMethod): Record<string, string> {
  return { 'cache-control': 'no-cache', 'user-agent': 'htntp', ...(method === 'GET' ? { range: 'bytes=0-0' } : {}) };
}

export const bodyTooLarge = (): ProbeFault =>
  new ProbeFault(
    'protocol',
    `GET for one byte (Range: bytes=0-0) brought more than ${MAX_BODY} bytes of body`,
    'ERR_HTTP_BODY_TOO_LARGE',
  );

/** TLS's server name for `host` (`name` if another is asked for): SNI names a host, never an address (RFC 6066 3). */
export const serverName = (host: string, name = host): { servername?: string } =>
  isIP(host) ? {} : { servername: name };

/** A host name as sockets take it: an IPv6 literal without its brackets. */
export const hostOf = (hostname: string): string => hostname.replace(/^\[|\]$/g, '');

export const defaultPort = (url: URL): string => url.port || (url.protocol === 'https:' ? '443' : '80');

/** Where a connector connects. */
export interface ConnectTarget {
  hostname: string;
  protocol: string;
  port: string;
  servername?: string;
  /** Ends the connecting at once (the probe that wanted it is gone): the socket is closed, the callback fails. */
  signal?: AbortSignal;
}

/** `tls`: how a TLS connection's certificates were trusted (none for plain TCP or a tunnel below TLS). */
export type ConnectCallback = (error: Error | null, socket: Socket | null, tls?: TlsConnection) => void;

/** Opens a connection and calls back once it is usable: connected, or its TLS handshake done. */
export type Connector = (target: ConnectTarget, callback: ConnectCallback) => void;

/** Calls back once `socket` emits `ready` (or fails, takes longer than `timeoutMs`, or `signal` aborts). */
export function whenReady(
  socket: Socket,
  ready: 'connect' | 'secureConnect',
  what: string,
  timeoutMs: number,
  callback: ConnectCallback,
  signal: AbortSignal | undefined,
): void {
  const timer = setTimeout(
    () => socket.destroy(codedError(`${what} took longer than ${timeoutMs} ms`, 'ERR_HTTP_CONNECT_TIMEOUT')),
    timeoutMs,
  );
  const abort = (): void => {
    socket.destroy(codedError(`${what} abandoned`, 'ABORT_ERR'));
  };
  const done = (): void => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  };
  const fail = (error: Error): void => {
    done();
    socket.destroy();
    callback(error, null);
  };
  socket.once('error', fail);
  socket.once(ready, () => {
    done();
    socket.off('error', fail);
    socket.setNoDelay(true);
    callback(null, socket);
  });
  if (signal?.aborted) abort();
  else signal?.addEventListener('abort', abort, { once: true });
}

/** Node's bundled roots and NODE_EXTRA_CA_CERTS as Node reads them (once per process). */
let defaultPems: string[] | undefined;

/**
 * The trusted CAs, PEM: Node's bundled roots, NODE_EXTRA_CA_CERTS, and `extraCa` (--ca).
 * The strict connection (caOption) and OpenSSL's check at a claimed time (tls.ts
 * verifyChainAt) both trust exactly these. node:tls loads only when they are asked for.
 */
export function trustedCertificates(extraCa?: string | Buffer): string[] {
  if (defaultPems === undefined) {
    defaultPems = [...(require('node:tls') as typeof Tls).rootCertificates];
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    if (extra) {
      try {
        defaultPems.push(readFileSync(extra, 'utf8'));
      } catch {
        // Node itself only warns about an unreadable file; its roots then stand alone.
      }
    }
  }
  return extraCa === undefined ? defaultPems : [...defaultPems, extraCa.toString()];
}

/**
 * tls.connect's `ca`: the trusted CAs with `extraCa` (none: Node's default store, the same roots and
 * NODE_EXTRA_CA_CERTS).
 */
export const caOption = (extraCa: string | Buffer | undefined): { ca?: string[] } =>
  extraCa === undefined ? {} : { ca: trustedCertificates(extraCa) };

/** Plain TCP. */
export const tcpConnector =
  (timeoutMs: number): Connector =>
  (target, callback) => {
    whenReady(
      connect({ host: hostOf(target.hostname), port: Number(target.port || 80) }),
      'connect',
      'connect',
      timeoutMs,
      callback,
      target.signal,
    );
  };

export const PROXY_ENV = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'];

/** `host:port` becomes `http://host:port`; URLs pass unchanged. */
export function proxyUri(proxy: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
}

/** Whether probes go through a proxy: one given, or one in the environment. */
export const usesProxy = (proxy: string | undefined): boolean =>
  proxy !== undefined || PROXY_ENV.some((name) => process.env[name]);

export function parseProxy(uri: string): URL | undefined {
  try {
    return new URL(proxyUri(uri));
  } catch {
    return undefined;
  }
}
