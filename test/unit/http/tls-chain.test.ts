// The chain check that stands in for OpenSSL's when only time failed: each thing OpenSSL
// verifies besides time is still verified. Certificates from a throwaway openssl CA.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realtime } from '../../../src/clock.js';
import { certificateFields } from '../../../src/sources/http/der.js';
import { chainWindows, verifyIgnoringTime } from '../../../src/sources/http/tls.js';
import { makeTestAuthority, type TestAuthority, type TestCertificate } from '../../helpers/http/tls.js';

const DAY = 86_400;
const now = realtime().sec;
// Far from now, as with a clock years off: time must play no part here.
const center = now - 5 * 365 * DAY;
let authority: TestAuthority;
let root: TestCertificate;

const CA = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];
const LEAF = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1'];

const issue = (subject: string, extensions: string[], issuer?: TestCertificate): TestCertificate =>
  authority.issue({ subject, notBefore: center - 10 * DAY, notAfter: center + 10 * DAY, extensions }, issuer);

const x509 = (pem: string): X509Certificate[] => (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));

function check(server: TestCertificate, host = '127.0.0.1', anchor: TestCertificate = root): X509Certificate[] {
  const presented = x509(server.chain);
  const leaf = presented[0] as X509Certificate;
  return verifyIgnoringTime(presented, host, x509(anchor.cert), leaf.toLegacyObject());
}

beforeAll(() => {
  authority = makeTestAuthority();
  root = issue('root', CA);
});

afterAll(() => authority.cleanup());

describe('verifyIgnoringTime', () => {
  it('takes a good chain years outside its validity and returns its path to the root', () => {
    const intermediate = issue('intermediate', CA, root);
    const path = check(issue('server', LEAF, intermediate));
    expect(path.map((certificate) => certificate.subject)).toEqual(['CN=server', 'CN=intermediate', 'CN=root']);
    const windows = chainWindows(path);
    expect(Date.parse(windows[0]?.notBefore ?? '') / 1000).toBe(center - 10 * DAY);
    expect(Date.parse(windows[0]?.notAfter ?? '') / 1000).toBe(center + 10 * DAY);
  });

  it.each([
    ['an intermediate that is not a CA', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyCertSign'], LEAF, 'INVALID_CA'],
    ['a CA without keyCertSign', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature'], LEAF, /KEYUSAGE_NO_CERTSIGN|UNABLE_TO_GET_ISSUER/],
    ['a path length exceeded', ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'], null, 'PATH_LENGTH_EXCEEDED'],
    ['a server certificate for clients only', CA, ['basicConstraints=critical,CA:FALSE', 'extendedKeyUsage=clientAuth', 'subjectAltName=IP:127.0.0.1'], 'INVALID_PURPOSE'],
    ['a server certificate whose key may only sign certificates', CA, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyCertSign', 'subjectAltName=IP:127.0.0.1'], 'INVALID_PURPOSE'],
    ['an unknown critical extension', CA, [...LEAF, '1.2.3.4.5=critical,ASN1:NULL'], 'UNHANDLED_CRITICAL_EXTENSION'],
    ['name constraints', [...CA, 'nameConstraints=critical,permitted;IP:127.0.0.0/255.0.0.0'], LEAF, 'UNSUPPORTED_CONSTRAINT_TYPE'],
  ])('rejects %s', (_what, intermediateExtensions, leafExtensions, code) => {
    const intermediate = issue('intermediate', intermediateExtensions, root);
    // pathlen:0 allows no CA below: put one there.
    const issuer = leafExtensions === null ? issue('sub-CA', CA, intermediate) : intermediate;
    const server = issue('server', leafExtensions ?? LEAF, issuer);
    let error: NodeJS.ErrnoException | undefined;
    try {
      check(server);
    } catch (caught) {
      error = caught as NodeJS.ErrnoException;
    }
    expect(error?.code).toMatch(code);
  });

  it('rejects a forged signature: a certificate naming the trusted intermediate, signed by another key', () => {
    const intermediate = issue('intermediate', CA, root);
    const impostor = issue('intermediate', CA, issue('root', CA));
    const forged = issue('server', LEAF, impostor);
    // The server presents the real intermediate above a certificate the impostor signed.
    const presented = [...x509(forged.cert), ...x509(intermediate.cert)];
    expect(() => verifyIgnoringTime(presented, '127.0.0.1', x509(root.cert), (presented[0] as X509Certificate).toLegacyObject())).toThrow(/no trusted issuer/);
  });

  it('rejects an untrusted root and a wrong host', () => {
    const server = issue('server', LEAF, root);
    expect(() => check(server, '127.0.0.1', issue('other root', CA))).toThrow(expect.objectContaining({ code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }));
    expect(() => check(server, '127.0.0.2')).toThrow(expect.objectContaining({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' }));
  });
});

describe('certificateFields', () => {
  it('reads validity, signature algorithm and extensions as openssl wrote them', () => {
    const fields = certificateFields(new X509Certificate(issue('server', LEAF, root).cert).raw);
    expect(fields.notBefore).toBe(center - 10 * DAY);
    expect(fields.signatureAlgorithm).toBe('1.2.840.10045.4.3.2'); // ecdsa-with-SHA256
    expect(fields.extensions.map((extension) => [extension.oid, extension.critical])).toEqual(
      expect.arrayContaining([['2.5.29.19', true], ['2.5.29.15', true], ['2.5.29.37', false], ['2.5.29.17', false]]),
    );
  });

  it('throws a coded error on a malformed certificate', () => {
    const der = Buffer.from(new X509Certificate(issue('server', LEAF, root).cert).raw);
    expect(() => certificateFields(der.subarray(0, 40))).toThrow(expect.objectContaining({ code: 'ERR_TLS_CERT_MALFORMED' }));
  });
});
