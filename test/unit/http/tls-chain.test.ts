// The chain check at a server's claimed time (verifyChainAt) against the openssl command:
// chains from a throwaway PKI, each varying one property, judged by both at the same
// instant with the same trusted set. The verdicts (accept/reject) must be equal on every
// chain; a few of them are also pinned to what they must be, so that agreeing on a wrong
// answer (both accepting everything) cannot pass.
import { execFileSync, spawnSync } from 'node:child_process';
import { sign, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realtime } from '../../../src/clock.js';
import { trustedCertificates } from '../../../src/sources/http/connection.js';
import { verifyChainAt } from '../../../src/sources/http/tls.js';
import {
  makeTestAuthority,
  type CertificateSpec,
  type TestAuthority,
  type TestCertificate,
} from '../../helpers/http/tls.js';

const DAY = 86_400;
// Years from the local clock: only the claimed time may play a part.
const claimed = realtime().sec - 3 * 365 * DAY;
const HOST = 'www.htntp.test';

const CA = [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
];
const LEAF = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  `subjectAltName=DNS:${HOST},IP:127.0.0.1`,
];

let authority: TestAuthority;
let root: TestCertificate;
let intermediate: TestCertificate;
let rsaRoot: TestCertificate;
/** Trusted only through NODE_EXTRA_CA_CERTS. */
let extraRoot: TestCertificate;

type Spec = Partial<CertificateSpec> & { extensions: string[] };

const issue = (subject: string, spec: Spec, issuer?: TestCertificate): TestCertificate =>
  authority.issue({ subject, notBefore: claimed - 30 * DAY, notAfter: claimed + 30 * DAY, ...spec }, issuer);
const leaf = (
  extensions: string[] = LEAF,
  issuer: TestCertificate = intermediate,
  spec: Partial<Spec> = {},
): TestCertificate => issue('server', { extensions, ...spec }, issuer);
const without = (list: string[], prefix: string): string[] => list.filter((line) => !line.startsWith(prefix));

interface Case {
  /** The presented chain, the server's certificate first (PEM). */
  presented: string;
  host?: string;
  at?: number;
  /** --ca: PEM trusted besides Node's roots and NODE_EXTRA_CA_CERTS (default: the test root). */
  ca?: string;
  /** Where the verdict is known beforehand. */
  expected?: 'accept' | 'reject';
}

// --- DER surgery for the one signature openssl will not make: sha1WithRSA under the OIW OID.
function tlv(der: Buffer, offset: number): { tag: number; header: number; end: number } {
  const first = der[offset + 1] as number;
  if (first < 0x80) return { tag: der[offset] as number, header: 2, end: offset + 2 + first };
  const bytes = first & 0x7f;
  return { tag: der[offset] as number, header: 2 + bytes, end: offset + 2 + bytes + der.readUIntBE(offset + 2, bytes) };
}
const children = (der: Buffer): Buffer[] => {
  const { header, end } = tlv(der, 0);
  const parts: Buffer[] = [];
  for (let offset = header; offset < end; offset = tlv(der, offset).end)
    parts.push(der.subarray(offset, tlv(der, offset).end));
  return parts;
};
const encode = (tag: number, content: Buffer): Buffer => {
  const length =
    content.length < 0x80
      ? Buffer.from([content.length])
      : ((bytes) => Buffer.concat([Buffer.from([0x80 | bytes.length]), bytes]))(
          Buffer.from(content.length.toString(16).padStart(content.length > 0xff ? 4 : 2, '0'), 'hex'),
        );
  return Buffer.concat([Buffer.from([tag]), length, content]);
};
/** `certificate` re-signed by `issuer` with sha1WithRSA named by OIW's 1.3.14.3.2.29. */
function oiwSha1(certificate: TestCertificate, issuer: TestCertificate): string {
  const [tbs] = children(new X509Certificate(certificate.cert).raw);
  const fields = children(tbs as Buffer);
  const algorithm = encode(0x30, Buffer.concat([Buffer.from('06052b0e03021d', 'hex'), Buffer.from('0500', 'hex')]));
  fields[fields[0]?.[0] === 0xa0 ? 2 : 1] = algorithm;
  const newTbs = encode(0x30, Buffer.concat(fields));
  const signature = sign('sha1', newTbs, readFileSync(issuer.keyPath, 'utf8'));
  const der = encode(
    0x30,
    Buffer.concat([newTbs, algorithm, encode(0x03, Buffer.concat([Buffer.from([0]), signature]))]),
  );
  return (
    `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ` +
    `CERTIFICATE-----\n`
  );
}

const pems = (text: string): string[] =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
const ders = (text: string): Buffer[] => pems(text).map((pem) => new X509Certificate(pem).raw);

/** openssl verify's verdict with the trusted set htntp uses (`trustedCertificates`). */
function opensslVerdict(name: string, test: Case): 'accept' | 'reject' {
  const dir = authority.dir;
  const [server, ...rest] = pems(test.presented);
  writeFileSync(join(dir, `${name}.trusted.pem`), trustedCertificates(test.ca ?? root.cert).join('\n'));
  writeFileSync(join(dir, `${name}.leaf.pem`), `${server ?? ''}\n`);
  writeFileSync(join(dir, `${name}.untrusted.pem`), `${rest.join('\n')}\n`);
  const host = test.host ?? HOST;
  const name_ = /^[\d.]+$|:/.test(host) ? ['-verify_ip', host] : ['-verify_hostname', host];
  const result = spawnSync(
    'openssl',
    [
      'verify',
      '-attime',
      String(test.at ?? claimed),
      '-auth_level',
      '1',
      '-purpose',
      'sslserver',
      ...name_,
      '-CAfile',
      join(dir, `${name}.trusted.pem`),
      ...(rest.length > 0 ? ['-untrusted', join(dir, `${name}.untrusted.pem`)] : []),
      join(dir, `${name}.leaf.pem`),
    ],
    { encoding: 'utf8' },
  );
  return result.status === 0 && /: OK\s*$/.test(result.stdout) ? 'accept' : 'reject';
}

const htntpVerdict = (test: Case): 'accept' | 'reject' =>
  verifyChainAt(ders(test.presented), test.host ?? HOST, test.at ?? claimed, test.ca ?? root.cert).ok
    ? 'accept'
    : 'reject';

const cases = new Map<string, () => Case>();
const add = (name: string, make: () => Case): void => void cases.set(name, make);
const chainOf = (server: TestCertificate): string => server.chain;

// The baseline and the name checks.
add('a good chain through an intermediate', () => ({ presented: chainOf(leaf()), expected: 'accept' }));
add('the intermediate not presented', () => ({ presented: leaf().cert, expected: 'reject' }));
add('the root presented before the intermediate', () => ({
  presented: `${leaf().cert}${root.cert}${intermediate.cert}`,
  expected: 'accept',
}));
add('the server certificate signed by the root itself', () => ({
  presented: leaf(LEAF, root).cert,
  expected: 'accept',
}));
add('a wrong host', () => ({ presented: chainOf(leaf()), host: 'other.htntp.test', expected: 'reject' }));
add('the host in capitals', () => ({ presented: chainOf(leaf()), host: HOST.toUpperCase() }));
add('an IP SAN and its address', () => ({ presented: chainOf(leaf()), host: '127.0.0.1', expected: 'accept' }));
add('an IP SAN and another address', () => ({ presented: chainOf(leaf()), host: '127.0.0.2', expected: 'reject' }));
add('an IPv6 SAN', () => ({
  presented: chainOf(leaf([...without(LEAF, 'subjectAltName'), 'subjectAltName=IP:::1'])),
  host: '::1',
  expected: 'accept',
}));
add('a DNS SAN and an address', () => ({
  presented: chainOf(leaf([...without(LEAF, 'subjectAltName'), `subjectAltName=DNS:${HOST}`])),
  host: '127.0.0.1',
  expected: 'reject',
}));
add('a wildcard SAN, one label', () => ({
  presented: chainOf(leaf([...without(LEAF, 'subjectAltName'), 'subjectAltName=DNS:*.htntp.test'])),
}));
add('a wildcard SAN, two labels', () => ({
  presented: chainOf(leaf([...without(LEAF, 'subjectAltName'), 'subjectAltName=DNS:*.test'])),
  host: 'a.htntp.test',
}));
add('the name in the CN only', () => ({
  presented: issue(HOST, { extensions: without(LEAF, 'subjectAltName') }, intermediate).chain,
}));

// Time, judged at the claimed instant.
add('expired at the claimed time', () => ({ presented: chainOf(leaf()), at: claimed + 31 * DAY, expected: 'reject' }));
add('not yet valid at the claimed time', () => ({
  presented: chainOf(leaf()),
  at: claimed - 31 * DAY,
  expected: 'reject',
}));
add('the claimed time at notAfter', () => ({ presented: chainOf(leaf(LEAF, intermediate, { notAfter: claimed })) }));
add('the claimed time a second after notAfter', () => ({
  presented: chainOf(leaf(LEAF, intermediate, { notAfter: claimed - 1 })),
  expected: 'reject',
}));
add('an intermediate expired at the claimed time', () => ({
  presented: chainOf(leaf(LEAF, issue('old intermediate', { extensions: CA, notAfter: claimed - DAY }, root))),
  expected: 'reject',
}));
add('a root expired at the claimed time', () => {
  const old = issue('old root', { extensions: CA, notAfter: claimed - DAY });
  return { presented: leaf(LEAF, old).cert, ca: old.cert, expected: 'reject' };
});

// Purpose and constraints. First the server's certificate with one of its extensions given another value; each row:
// the case, the extension, its value, the verdict where it is known beforehand.
const REPLACED_EXTENSIONS: [name: string, extension: string, value: string, expected?: Case['expected']][] = [
  ['extended key usage clientAuth only', 'extendedKeyUsage', 'clientAuth', 'reject'],
  ['extended key usage serverAuth and clientAuth', 'extendedKeyUsage', 'serverAuth,clientAuth', 'accept'],
  ['extended key usage OCSPSigning', 'extendedKeyUsage', 'OCSPSigning', 'reject'],
  ['a server key usage of keyCertSign only', 'keyUsage', 'critical,keyCertSign', 'reject'],
  ['a server key usage of digitalSignature only', 'keyUsage', 'critical,digitalSignature', 'accept'],
  ['a server certificate that is a CA', 'basicConstraints', 'critical,CA:TRUE'],
];
for (const [name, extension, value, expected] of REPLACED_EXTENSIONS) {
  add(name, () => ({ presented: chainOf(leaf([...without(LEAF, extension), `${extension}=${value}`])), expected }));
}
add('no extended key usage', () => ({ presented: chainOf(leaf(without(LEAF, 'extendedKeyUsage'))) }));
add('an intermediate for client authentication only', () => ({
  presented: chainOf(leaf(LEAF, issue('client CA', { extensions: [...CA, 'extendedKeyUsage=clientAuth'] }, root))),
  expected: 'reject',
}));
add('an issuer with CA:FALSE', () => ({
  presented: chainOf(
    leaf(
      LEAF,
      issue('not a CA', { extensions: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyCertSign'] }, root),
    ),
  ),
  expected: 'reject',
}));
add('an issuer without basic constraints', () => ({
  presented: chainOf(leaf(LEAF, issue('no constraints', { extensions: ['keyUsage=critical,keyCertSign'] }, root))),
  expected: 'reject',
}));
add('an issuer without keyCertSign', () => ({
  presented: chainOf(
    leaf(
      LEAF,
      issue(
        'no certsign',
        { extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature'] },
        root,
      ),
    ),
  ),
  expected: 'reject',
}));
/** A CA under the root whose basic constraints allow `pathlen` CAs below it. */
const pathlenCa = (pathlen: number, subject = `pathlen ${pathlen}`): TestCertificate =>
  issue(
    subject,
    { extensions: [`basicConstraints=critical,CA:TRUE,pathlen:${pathlen}`, 'keyUsage=critical,keyCertSign'] },
    root,
  );
add('pathlen:0 with a CA below it', () => ({
  presented: chainOf(leaf(LEAF, issue('sub CA', { extensions: CA }, pathlenCa(0)))),
  expected: 'reject',
}));
add('pathlen:1 with a CA below it', () => ({
  presented: chainOf(leaf(LEAF, issue('sub CA', { extensions: CA }, pathlenCa(1)))),
  expected: 'accept',
}));
add('pathlen:0 with the server below it', () => ({
  presented: chainOf(leaf(LEAF, pathlenCa(0, 'pathlen 0 direct'))),
  expected: 'accept',
}));
add('name constraints that permit the name', () => ({
  presented: chainOf(
    leaf(
      LEAF,
      issue(
        'constrained',
        { extensions: [...CA, 'nameConstraints=critical,permitted;DNS:htntp.test,permitted;IP:127.0.0.0/255.0.0.0'] },
        root,
      ),
    ),
  ),
  expected: 'accept',
}));
add('name constraints that exclude the name', () => ({
  presented: chainOf(
    leaf(LEAF, issue('excluding', { extensions: [...CA, 'nameConstraints=critical,excluded;DNS:htntp.test'] }, root)),
  ),
  expected: 'reject',
}));

// Critical extensions: those OpenSSL does not process reject when critical. Each row: the case, the extension the
// server's certificate adds, the verdict where it is known beforehand.
const ADDED_EXTENSIONS: [name: string, extension: string, expected?: Case['expected']][] = [
  ['an unknown critical extension', '1.2.3.4.5=critical,ASN1:NULL', 'reject'],
  ['an unknown extension, not critical', '1.2.3.4.5=ASN1:NULL', 'accept'],
  ['a critical authority information access', 'authorityInfoAccess=critical,OCSP;URI:http://ocsp.htntp.test', 'reject'],
  ['authority information access, not critical', 'authorityInfoAccess=OCSP;URI:http://ocsp.htntp.test', 'accept'],
  ['a critical issuer alternative name', 'issuerAltName=critical,DNS:ca.htntp.test', 'reject'],
  ['a critical SCT list', '1.3.6.1.4.1.11129.2.4.2=critical,DER:0402000a', 'reject'],
  ['a critical subject key identifier', 'subjectKeyIdentifier=critical,hash', 'reject'],
  ['a critical authority key identifier', 'authorityKeyIdentifier=critical,keyid', 'reject'],
  ['critical CRL distribution points', 'crlDistributionPoints=critical,URI:http://crl.htntp.test/ca.crl'],
  ['critical certificate policies', 'certificatePolicies=critical,2.23.140.1.2.1'],
];
for (const [name, extension, expected] of ADDED_EXTENSIONS) {
  add(name, () => ({ presented: chainOf(leaf([...LEAF, extension])), expected }));
}

// Keys and signatures.
add('an RSA 2048 chain signed with SHA-256', () => ({
  presented: chainOf(leaf(LEAF, rsaRoot, { key: 'rsa' })),
  ca: rsaRoot.cert,
  expected: 'accept',
}));
add('an RSA 1024 server key', () => ({
  presented: chainOf(leaf(LEAF, rsaRoot, { key: 'rsa1024' })),
  ca: rsaRoot.cert,
}));
add('an Ed25519 server key', () => ({
  presented: chainOf(leaf(LEAF, intermediate, { key: 'ed25519' })),
  expected: 'accept',
}));
add('sha1WithRSAEncryption', () => ({
  presented: chainOf(leaf(LEAF, rsaRoot, { key: 'rsa', md: 'sha1' })),
  ca: rsaRoot.cert,
  expected: 'reject',
}));
add('sha1WithRSA under the OIW OID 1.3.14.3.2.29', () => ({
  presented: oiwSha1(leaf(LEAF, rsaRoot, { key: 'rsa' }), rsaRoot),
  ca: rsaRoot.cert,
  expected: 'reject',
}));
add('RSASSA-PSS with SHA-1', () => ({
  presented: chainOf(
    leaf(LEAF, rsaRoot, { key: 'rsa', md: 'sha1', sigopts: ['rsa_padding_mode:pss', 'rsa_pss_saltlen:20'] }),
  ),
  ca: rsaRoot.cert,
  expected: 'reject',
}));
add('RSASSA-PSS with SHA-256', () => ({
  presented: chainOf(leaf(LEAF, rsaRoot, { key: 'rsa', sigopts: ['rsa_padding_mode:pss', 'rsa_pss_saltlen:32'] })),
  ca: rsaRoot.cert,
  expected: 'accept',
}));
add('a forged signature: the trusted intermediate named, another key signing', () => {
  const impostor = issue('intermediate', { extensions: CA }, issue('impostor root', { extensions: CA }));
  return { presented: `${leaf(LEAF, impostor).cert}${intermediate.cert}`, expected: 'reject' };
});

// Trust anchors.
add('an untrusted root', () => ({
  presented: chainOf(leaf(LEAF, issue('stranger', { extensions: CA }))),
  expected: 'reject',
}));
add('an intermediate alone as the trust anchor', () => ({
  presented: chainOf(leaf()),
  ca: intermediate.cert,
  expected: 'reject',
}));
add('a self-signed server certificate, not trusted', () => ({
  presented: issue(HOST, { extensions: LEAF }).cert,
  expected: 'reject',
}));
add('a self-signed server certificate given as the CA', () => {
  const self = issue(HOST, { extensions: LEAF });
  return { presented: self.cert, ca: self.cert };
});
add('a root in NODE_EXTRA_CA_CERTS, with --ca', () => ({
  presented: chainOf(leaf(LEAF, extraRoot)),
  expected: 'accept',
}));
add('a root in NODE_EXTRA_CA_CERTS, --ca another root', () => ({
  presented: chainOf(leaf(LEAF, extraRoot)),
  ca: rsaRoot.cert,
  expected: 'accept',
}));

beforeAll(() => {
  authority = makeTestAuthority();
  root = issue('root', { extensions: CA });
  intermediate = issue('intermediate', { extensions: CA }, root);
  rsaRoot = issue('rsa root', { extensions: CA, key: 'rsa' });
  extraRoot = issue('extra root', { extensions: CA });
  // Read once per process, at the first check: set before any.
  const extraFile = join(authority.dir, 'extra-ca.pem');
  writeFileSync(extraFile, extraRoot.cert);
  process.env.NODE_EXTRA_CA_CERTS = extraFile;
  expect(execFileSync('openssl', ['version'], { encoding: 'utf8' })).toMatch(/^OpenSSL 3\./);
});

afterAll(() => authority.cleanup());

describe('verifyChainAt agrees with openssl verify at the claimed time', () => {
  it(`has at least 40 chains (${cases.size})`, () => expect(cases.size).toBeGreaterThanOrEqual(40));

  it.each([...cases.keys()])('%s', (name) => {
    const test = (cases.get(name) as () => Case)();
    const openssl = opensslVerdict(name.replace(/\W+/g, '-'), test);
    expect(htntpVerdict(test)).toBe(openssl);
    if (test.expected !== undefined) expect(openssl).toBe(test.expected);
  });
});

describe('verifyChainAt', () => {
  it('returns the path OpenSSL built, server first, with each validity window', () => {
    const server = leaf();
    const judged = verifyChainAt(ders(server.chain), HOST, claimed, root.cert);
    expect(judged.ok).toBe(true);
    if (!judged.ok) return;
    expect(judged.windows.map((window) => window.subject)).toEqual(['CN=server', 'CN=intermediate', 'CN=root']);
    expect(Date.parse(judged.windows[0]?.notBefore ?? '') / 1000).toBe(claimed - 30 * DAY);
    expect(Date.parse(judged.windows[0]?.notAfter ?? '') / 1000).toBe(claimed + 30 * DAY);
  });

  it("names OpenSSL's error and the time judged at", () => {
    const judged = verifyChainAt(ders(leaf().chain), HOST, claimed + 31 * DAY, root.cert);
    expect(judged).toMatchObject({ ok: false, code: 'CERT_HAS_EXPIRED' });
    if (!judged.ok) expect(judged.reason).toContain(new Date((claimed + 31 * DAY) * 1000).toISOString().slice(0, 10));
  });

  it('rejects bytes that are no certificate', () => {
    expect(verifyChainAt([Buffer.from('not DER')], HOST, claimed, root.cert).ok).toBe(false);
    expect(verifyChainAt([], HOST, claimed, root.cert).ok).toBe(false);
  });
});
