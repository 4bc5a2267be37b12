// HTTPS when the local clock is wrong. Every connection is first made with Node's normal,
// strict verification. Only when that fails with a time error (not yet valid / expired at
// the local clock) is a second connection made that OpenSSL does not reject, and it is kept
// only if OpenSSL's one remaining error is a time error AND the presented chain verifies
// here, ignoring time alone: a path to a trusted root, every signature, CA flags, key
// usage, path length, serverAuth, no unknown critical extension, the host name. OpenSSL
// keeps only one error per chain (Node's verify callback goes on after each, the last one
// sticks), so a time error may hide others: hence the full check here. Such a server is
// `time-unverified`; its chain's validity windows go with its result, and the measurement
// publishes only a time that lies inside them (validity.ts).
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, rootCertificates, type PeerCertificate, type TLSSocket } from 'node:tls';
import { codedError } from '../../errors.js';
import { caOption, hostOf, tcpConnector, whenReady, type Connector } from './connection.js';
import { basicConstraints, certificateFields, extendedKeyUsage, KEY_USAGE, keyUsage, type CertificateFields } from './der.js';

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
  trust: TlsTrust;
  /** The chain from the server's certificate to the trusted root. */
  windows: CertificateWindow[];
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** Extensions whose meaning this check (or OpenSSL, for the strict connection) knows; an unknown critical one rejects. */
const KNOWN_EXTENSIONS = new Set([
  '2.5.29.14', // subject key identifier
  '2.5.29.35', // authority key identifier
  '2.5.29.15', // key usage
  '2.5.29.37', // extended key usage
  '2.5.29.19', // basic constraints
  '2.5.29.17', // subject alternative name
  '2.5.29.18', // issuer alternative name
  '2.5.29.31', // CRL distribution points
  '2.5.29.32', // certificate policies
  '1.3.6.1.5.5.7.1.1', // authority information access
  '1.3.6.1.4.1.11129.2.4.2', // certificate transparency SCTs
]);

/** Name constraints: not evaluated here, so a chain carrying them is not taken without the local clock. */
const NAME_CONSTRAINTS = '2.5.29.30';

/** Signatures no longer trusted (MD2, MD5, SHA-1 with RSA, ECDSA or DSA). */
const WEAK_SIGNATURES = new Set(['1.2.840.113549.1.1.2', '1.2.840.113549.1.1.4', '1.2.840.113549.1.1.5', '1.2.840.10045.4.1', '1.2.840.10040.4.3']);

const MAX_DEPTH = 10;

const rejected = (message: string, code: string): Error => codedError(`${message} (and its certificates are outside their validity at the local clock)`, code);

function keyStrong(key: KeyObject): boolean {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return (details?.modulusLength ?? 0) >= 2048;
    case 'ec':
      return ['prime256v1', 'secp384r1', 'secp521r1'].includes(details?.namedCurve ?? '');
    case 'ed25519':
    case 'ed448':
      return true;
    default:
      return false;
  }
}

interface Link {
  certificate: X509Certificate;
  fields: CertificateFields;
}

const link = (certificate: X509Certificate): Link => ({ certificate, fields: certificateFields(certificate.raw) });

const extension = (fields: CertificateFields, oid: string): Buffer | undefined => fields.extensions.find((candidate) => candidate.oid === oid)?.value;

const isoSeconds = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

/** The validity window of each certificate of a chain. */
export function chainWindows(chain: readonly X509Certificate[]): CertificateWindow[] {
  return chain.map((certificate) => {
    const { notBefore, notAfter } = certificateFields(certificate.raw);
    return { subject: certificate.subject.replace(/\n/g, ', '), notBefore: isoSeconds(notBefore), notAfter: isoSeconds(notAfter) };
  });
}

const parsePems = (pems: readonly string[]): X509Certificate[] =>
  pems.flatMap((pem) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).flatMap((block) => {
    try {
      return [new X509Certificate(block)];
    } catch {
      return [];
    }
  });

/** Node's bundled roots and NODE_EXTRA_CA_CERTS (read once, as Node does): ~60 ms of parsing, done once per process. */
let defaultAnchors: X509Certificate[] | undefined;

/** The trusted roots: Node's bundled ones, NODE_EXTRA_CA_CERTS, and `ca`. */
export function trustAnchors(ca?: string | Buffer): X509Certificate[] {
  if (defaultAnchors === undefined) {
    const pems = [...rootCertificates];
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    if (extra) {
      try {
        pems.push(readFileSync(extra, 'utf8'));
      } catch {
        // Node itself only warns about an unreadable file; its roots then stand alone.
      }
    }
    defaultAnchors = parsePems(pems);
  }
  return ca === undefined ? defaultAnchors : [...defaultAnchors, ...parsePems([ca.toString()])];
}

/** Whether `issuer` issued `subject`: names (and key identifiers), then the signature. */
const issued = (issuer: X509Certificate, subject: X509Certificate): boolean => subject.checkIssued(issuer) && subject.verify(issuer.publicKey);

/**
 * Verifies a presented chain (`presented[0]` is the server's certificate) for `host`
 * against `anchors` as OpenSSL would for a TLS server, except for the certificates'
 * validity periods. Returns the path, server certificate first, trusted root last; throws
 * an Error with an OpenSSL-like `code` naming the first problem.
 */
export function verifyIgnoringTime(presented: readonly X509Certificate[], host: string, anchors: readonly X509Certificate[], peer: PeerCertificate): X509Certificate[] {
  const [leaf] = presented;
  if (leaf === undefined) throw rejected('the server presented no certificate', 'UNABLE_TO_GET_ISSUER_CERT');
  const isAnchor = (certificate: X509Certificate): boolean => anchors.some((anchor) => anchor.fingerprint256 === certificate.fingerprint256);
  const path: X509Certificate[] = [leaf];
  for (let current = leaf; !isAnchor(current); ) {
    if (path.length > MAX_DEPTH) throw rejected('certificate chain too long', 'CERT_CHAIN_TOO_LONG');
    const issuer = anchors.find((anchor) => issued(anchor, current)) ?? presented.find((candidate) => !path.includes(candidate) && issued(candidate, current));
    if (issuer === undefined) throw rejected(`no trusted issuer for "${current.issuer.replace(/\n/g, ', ')}"`, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    path.push(issuer);
    current = issuer;
  }
  const links = path.map(link);
  links.forEach(({ certificate, fields }, depth) => {
    const anchor = depth === links.length - 1;
    const name = `"${certificate.subject.replace(/\n/g, ', ')}"`;
    for (const { oid, critical } of fields.extensions) {
      if (oid === NAME_CONSTRAINTS) throw rejected(`${name} carries name constraints, which are checked only with a valid local clock`, 'UNSUPPORTED_CONSTRAINT_TYPE');
      if (critical && !KNOWN_EXTENSIONS.has(oid)) throw rejected(`${name} has an unknown critical extension ${oid}`, 'UNHANDLED_CRITICAL_EXTENSION');
    }
    if (!anchor) {
      if (WEAK_SIGNATURES.has(fields.signatureAlgorithm)) throw rejected(`${name} is signed with a weak algorithm (${fields.signatureAlgorithm})`, 'CA_MD_TOO_WEAK');
      if (!keyStrong(certificate.publicKey)) throw rejected(`${name} has a weak or unknown key`, 'EE_KEY_TOO_SMALL');
    }
    const usageValue = extension(fields, '2.5.29.15');
    const usage = usageValue && keyUsage(usageValue);
    const purposesValue = extension(fields, '2.5.29.37');
    const purposes = purposesValue && extendedKeyUsage(purposesValue);
    // A purpose list, where present, must allow serving TLS (OpenSSL checks it on CAs too).
    if (purposes && !purposes.includes(SERVER_AUTH)) throw rejected(`${name} is not for TLS servers (extended key usage)`, 'INVALID_PURPOSE');
    if (depth === 0) {
      if (usage && ![KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment, KEY_USAGE.keyAgreement].some((bit) => usage.has(bit))) {
        throw rejected(`${name} may not be used for TLS (key usage)`, 'INVALID_PURPOSE');
      }
      return;
    }
    const constraintsValue = extension(fields, '2.5.29.19');
    const constraints = constraintsValue && basicConstraints(constraintsValue);
    // An issuer must be a CA (a root without extensions in the trust store is its own exception, as in OpenSSL).
    if (!constraints?.ca && !(anchor && fields.extensions.length === 0)) throw rejected(`${name} is not a CA (basic constraints)`, 'INVALID_CA');
    if (usage && !usage.has(KEY_USAGE.keyCertSign)) throw rejected(`${name} may not sign certificates (key usage)`, 'KEYUSAGE_NO_CERTSIGN');
    // CAs below it, not counting the server's certificate.
    const below = depth - 1;
    if (constraints?.pathLength !== undefined && below > constraints.pathLength) throw rejected(`${name} allows ${constraints.pathLength} CA(s) below it, the chain has ${below}`, 'PATH_LENGTH_EXCEEDED');
  });
  const identity = checkServerIdentity(host, peer);
  if (identity) throw Object.assign(identity, { message: `${identity.message} (and its certificates are outside their validity at the local clock)` });
  return path;
}

/** The certificates a TLS socket's peer presented (as Node links them, each once). */
function peerChain(socket: TLSSocket): { peer: PeerCertificate; chain: X509Certificate[] } {
  const peer = socket.getPeerCertificate(true);
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let current: PeerCertificate | undefined = peer; current?.raw !== undefined && !seen.has(current.fingerprint256); current = (current as { issuerCertificate?: PeerCertificate }).issuerCertificate) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
  }
  return { peer, chain };
}

export interface ConnectorOptions {
  /** A CA (PEM) trusted besides Node's bundled roots. */
  extraCa?: string | Buffer;
  /** Connect and handshake limit, ms. */
  timeoutMs: number;
  /** How the raw stream below TLS is made: a proxy's tunnel (default: TCP). */
  base?: Connector;
}

/** TLS over TCP with Node's normal verification (`tls`: its CA option). */
function strictTlsConnector(tls: { ca?: string[] }, timeoutMs: number): Connector {
  return (target, callback) => {
    const host = hostOf(target.hostname);
    const socket = tlsConnect({ host, port: Number(target.port || 443), ...tls, ...(isIP(host) ? {} : { servername: target.servername ?? host }), ALPNProtocols: ['http/1.1'] });
    whenReady(socket, 'secureConnect', 'connect and TLS handshake', timeoutMs, callback);
  };
}

/** TLS with Node's normal verification over the raw stream `base` opens (a proxy's tunnel). */
function strictTlsOver(base: Connector, tls: { ca?: string[] }, timeoutMs: number): Connector {
  return (target, callback) => {
    base({ ...target, protocol: 'http:', port: target.port || '443' }, (error, raw) => {
      if (error !== null || raw === null) {
        callback(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'), null);
        return;
      }
      const host = hostOf(target.hostname);
      const socket = tlsConnect({ socket: raw, host, ...tls, ...(isIP(host) ? {} : { servername: target.servername ?? host }), ALPNProtocols: ['http/1.1'] });
      whenReady(socket, 'secureConnect', 'TLS handshake', timeoutMs, callback);
    });
  };
}

/**
 * A connector: https with normal verification, and after a time error a second
 * connection taken only when the chain verifies ignoring time (see above); each TLS socket
 * comes with how it was trusted. Plain http passes to the base connector unchanged.
 */
export function timeTolerantConnector(options: ConnectorOptions): Connector {
  const tls = caOption(options.extraCa);
  const base = options.base;
  const plain = base ?? tcpConnector(options.timeoutMs);
  const strict = base ? strictTlsOver(base, tls, options.timeoutMs) : strictTlsConnector(tls, options.timeoutMs);
  let anchors: X509Certificate[] | undefined;
  const verified = (socket: TLSSocket): TlsConnection => {
    let windows: CertificateWindow[] = [];
    try {
      windows = chainWindows(peerChain(socket).chain);
    } catch {
      // Verified by OpenSSL at the local clock: without readable windows it adds no bound.
    }
    return { trust: 'verified', windows };
  };
  /**
   * The verdict on a connection OpenSSL did not reject: undefined when it verified after all
   * (the clock was corrected meanwhile), time-unverified when only time failed and the chain
   * verifies ignoring it; throws otherwise.
   */
  const judge = (secure: TLSSocket, host: string): TlsConnection | undefined => {
    if (secure.authorized) return undefined;
    const why = String(secure.authorizationError ?? '');
    if (!TIME_ERRORS.has(why)) throw codedError(`certificate verification failed: ${why}`, why || 'ERR_TLS_CERT_UNVERIFIED');
    const { peer, chain } = peerChain(secure);
    anchors ??= trustAnchors(options.extraCa);
    // Without its windows such a server could not be bounded: a failure here rejects it.
    return { trust: 'time-unverified', windows: chainWindows(verifyIgnoringTime(chain, host, anchors, peer)) };
  };
  return (connectOptions, callback) => {
    if (connectOptions.protocol !== 'https:') {
      plain(connectOptions, callback);
      return;
    }
    strict(connectOptions, (error, socket) => {
      if (error === null) {
        callback(null, socket, verified(socket as TLSSocket));
        return;
      }
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!TIME_ERRORS.has(code)) {
        callback(error, null);
        return;
      }
      // The raw stream again (TCP, or a new tunnel), then TLS that leaves the verdict to us.
      const port = connectOptions.port || '443';
      plain({ ...connectOptions, protocol: 'http:', port }, (rawError, raw) => {
        if (rawError !== null || raw === null) {
          callback(rawError ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'), null);
          return;
        }
        const host = hostOf(connectOptions.hostname);
        const secure = tlsConnect({
          socket: raw,
          // The name Node checks the certificate against should the clock be right by now.
          host,
          ...tls,
          ...(isIP(host) ? {} : { servername: connectOptions.servername ?? host }),
          ALPNProtocols: ['http/1.1'],
          rejectUnauthorized: false,
        });
        whenReady(secure, 'secureConnect', 'TLS handshake', options.timeoutMs, (failure) => {
          if (failure !== null) {
            callback(failure, null);
            return;
          }
          let trust: TlsConnection | undefined;
          try {
            trust = judge(secure, host);
          } catch (rejection) {
            secure.destroy();
            callback(rejection as Error, null);
            return;
          }
          callback(null, secure, trust ?? verified(secure));
        });
      });
    });
  };
}
