// HTTPS when the local clock may be wrong. Every connection is first made with Node's normal,
// strict verification. Only when that fails with a time error (not yet valid / expired at
// the local clock) and the caller judges connections (timeUnverified) is a second connection
// made that OpenSSL does not reject at handshake: it is `time-unverified`, and counts only
// once the caller's gate (gate.ts) has verified its chain with OpenSSL's X509_verify_cert
// at the time the server itself claims (verifyChainAt), and only while the local clock is
// not known to be right. Its chain's validity windows then go with its result, and the
// measurement publishes only a time that lies inside them (validity.ts).
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  connect as tlsConnect,
  type ConnectionOptions as TlsConnectionOptions,
  type PeerCertificate,
  type TLSSocket,
} from 'node:tls';
import { codedError } from '../../errors.js';
import { nativeAddon, type NativeTrustStore } from '../../native.js';
import { formatUtc, fromSeconds } from '../../time.js';
import {
  caOption,
  hostOf,
  tcpConnector,
  trustedCertificates,
  whenReady,
  type ConnectCallback,
  type Connector,
  type ConnectTarget,
  serverName,
} from './connection.js';

/** OpenSSL's verify results that say only "not at this time". */
export const TIME_ERRORS: ReadonlySet<string> = new Set(['CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED']);

export type TlsTrust = 'verified' | 'time-unverified';

/** One certificate of a verified chain and when it is valid (ISO 8601, UTC, both ends included). */
export interface CertificateWindow {
  subject: string;
  notBefore: string;
  notAfter: string;
}

/** What a TLS connection to a server was trusted on. */
export interface TlsConnection {
  /**
   * `verified`: by Node at the local clock; `time-unverified`: only time failed there, the chain is still to be judged.
   */
  trust: TlsTrust;
  /** verified: the chain from the server's certificate to the trusted root (time-unverified: none until judged). */
  windows: CertificateWindow[];
  /** The certificates the server presented (DER, its own first) and the name they are checked against. */
  chain: Buffer[];
  host: string;
  /** time-unverified: the local clock's verdict (CERT_HAS_EXPIRED or CERT_NOT_YET_VALID). */
  timeError?: string;
}

const isoSeconds = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

/** The validity window of each certificate of a chain. */
export function chainWindows(chain: readonly X509Certificate[]): CertificateWindow[] {
  return chain.map((certificate) => ({
    subject: certificate.subject.replace(/\n/g, ', '),
    notBefore: isoSeconds(Date.parse(certificate.validFrom) / 1000),
    notAfter: isoSeconds(Date.parse(certificate.validTo) / 1000),
  }));
}

/** OpenSSL stores by trusted set, made once each (Node's roots take ~60 ms to parse). */
const stores = new Map<string, NativeTrustStore>();

function trustStore(extraCa: string | Buffer | undefined): NativeTrustStore {
  const key = extraCa === undefined ? '' : extraCa.toString();
  let store = stores.get(key);
  if (store === undefined) {
    store = new (nativeAddon().TrustStore)(trustedCertificates(extraCa).join('\n'));
    stores.set(key, store);
  }
  return store;
}

/** A chain judged at a time: its path's windows when it verifies, else OpenSSL's error. */
export type ChainJudgement = { ok: true; windows: CertificateWindow[] } | { ok: false; code: string; reason: string };

/**
 * Judges a presented chain (`chain[0]` the server's certificate, DER) for `host` as a TLS
 * client would, with OpenSSL's X509_verify_cert: the trusted CAs of trustedCertificates,
 * purpose ssl_server, security level 1, the host name or IP address, and the verification
 * time `atSeconds` (the time the server claims) in place of the local clock. Any error
 * rejects, a time error at `atSeconds` included.
 */
export function verifyChainAt(
  chain: readonly Buffer[],
  host: string,
  atSeconds: number,
  extraCa?: string | Buffer,
): ChainJudgement {
  const at = Math.floor(atSeconds);
  const verdict = trustStore(extraCa).verify(chain, hostOf(host), at);
  if (!verdict.ok) {
    const depth = verdict.depth >= 0 ? ` (certificate ${verdict.depth} of the chain)` : '';
    return {
      ok: false,
      code: verdict.code,
      reason: `${verdict.code}: ${verdict.message}${depth} at ${formatUtc(fromSeconds(at))}`,
    };
  }
  const windows = verdict.path.map(({ subject, notBefore, notAfter }) => ({
    subject,
    notBefore: isoSeconds(notBefore),
    notAfter: isoSeconds(notAfter),
  }));
  return { ok: true, windows };
}

/** The certificates a TLS socket's peer presented (as Node links them, each once). */
function peerChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: PeerCertificate | undefined = socket.getPeerCertificate(true);
  while (current?.raw !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = (current as { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return chain;
}

export interface ConnectorOptions {
  /** A CA (PEM) trusted besides Node's bundled roots. */
  extraCa?: string | Buffer;
  /** Connect and handshake limit, ms. */
  timeoutMs: number;
  /** How the raw stream below TLS is made: a proxy's tunnel (default: TCP). */
  base?: Connector;
  /**
   * Hand on a connection whose certificates failed only for time at the local clock, as
   * `time-unverified`, for the caller to judge (gate.ts) before it uses an answer from it.
   * Without it the time error fails the connection as any other.
   */
  timeUnverified?: boolean;
}

/** What every TLS connection here asks for: the CA option, SNI for a name (never an IP literal), HTTP/1.1. */
function tlsOptions(target: ConnectTarget, host: string, tls: { ca?: string[] }): TlsConnectionOptions {
  return {
    host,
    ...tls,
    ...serverName(host, target.servername),
    ALPNProtocols: ['http/1.1'],
  };
}

/** Opens the raw stream below TLS with `base` (TCP, or a proxy's tunnel) and hands it on; failures go to `callback`. */
function openRaw(base: Connector, target: ConnectTarget, callback: ConnectCallback, then: (raw: Socket) => void): void {
  base({ ...target, protocol: 'http:', port: target.port || '443' }, (error, raw) => {
    if (error !== null || raw === null) {
      callback(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'), null);
      return;
    }
    then(raw);
  });
}

/** TLS over TCP with Node's normal verification (`tls`: its CA option). */
function strictTlsConnector(tls: { ca?: string[] }, timeoutMs: number): Connector {
  return (target, callback) => {
    const host = hostOf(target.hostname);
    const socket = tlsConnect({ ...tlsOptions(target, host, tls), port: Number(target.port || 443) });
    whenReady(socket, 'secureConnect', 'connect and TLS handshake', timeoutMs, callback, target.signal);
  };
}

/** TLS with Node's normal verification over the raw stream `base` opens (a proxy's tunnel). */
function strictTlsOver(base: Connector, tls: { ca?: string[] }, timeoutMs: number): Connector {
  return (target, callback) => {
    openRaw(base, target, callback, (raw) => {
      const socket = tlsConnect({ socket: raw, ...tlsOptions(target, hostOf(target.hostname), tls) });
      whenReady(socket, 'secureConnect', 'TLS handshake', timeoutMs, callback, target.signal);
    });
  };
}

/**
 * A connector: https with normal verification, and after a time error a second connection
 * handed on as `time-unverified` for the caller's gate to judge (see above), only when the
 * caller asked for it (timeUnverified); each TLS socket comes with how it was trusted. Plain
 * http passes to the base connector unchanged.
 */
export function timeTolerantConnector(options: ConnectorOptions): Connector {
  const tls = caOption(options.extraCa);
  const base = options.base;
  const plain = base ?? tcpConnector(options.timeoutMs);
  const strict = base ? strictTlsOver(base, tls, options.timeoutMs) : strictTlsConnector(tls, options.timeoutMs);
  type Presented = Pick<TlsConnection, 'chain' | 'host' | 'windows'>;
  const presented = (socket: TLSSocket, host: string): Presented => {
    const chain = peerChain(socket);
    return { chain: chain.map((certificate) => certificate.raw), host, windows: chainWindows(chain) };
  };
  const verified = (socket: TLSSocket, host: string): TlsConnection => {
    try {
      return { trust: 'verified', ...presented(socket, host) };
    } catch {
      // Verified by OpenSSL at the local clock: without readable certificates it adds no bound.
      return { trust: 'verified', windows: [], chain: [], host };
    }
  };
  return (connectOptions, callback) => {
    if (connectOptions.protocol !== 'https:') {
      plain(connectOptions, callback);
      return;
    }
    const host = hostOf(connectOptions.hostname);
    strict(connectOptions, (error, socket) => {
      if (error === null) {
        callback(null, socket, verified(socket as TLSSocket, host));
        return;
      }
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!TIME_ERRORS.has(code) || options.timeUnverified !== true) {
        callback(error, null);
        return;
      }
      // The raw stream again (TCP, or a new tunnel to the port named: CONNECT host:port),
      // then TLS that leaves the verdict to the gate.
      openRaw(plain, connectOptions, callback, (raw) => {
        // `host` stays the name Node checks the certificate against should the clock be right by now.
        const secure = tlsConnect({ socket: raw, ...tlsOptions(connectOptions, host, tls), rejectUnauthorized: false });
        const ready = (failure: Error | null): void => {
          if (failure !== null) {
            callback(failure, null);
            return;
          }
          if (secure.authorized) {
            // The clock was corrected meanwhile.
            callback(null, secure, verified(secure, host));
            return;
          }
          const why = String(secure.authorizationError ?? '');
          let connection: TlsConnection;
          try {
            if (!TIME_ERRORS.has(why))
              throw codedError(`certificate verification failed: ${why}`, why || 'ERR_TLS_CERT_UNVERIFIED');
            connection = { trust: 'time-unverified', ...presented(secure, host), windows: [], timeError: why };
          } catch (rejection) {
            secure.destroy();
            callback(rejection as Error, null);
            return;
          }
          callback(null, secure, connection);
        };
        whenReady(secure, 'secureConnect', 'TLS handshake', options.timeoutMs, ready, connectOptions.signal);
      });
    });
  };
}
