// Throwaway CAs and server certificates, made with openssl in a temp dir.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caPath: string;
  ca: string;
  key: string;
  cert: string;
  cleanup(): void;
}

const LOOPBACK_SERVER = { subject: '127.0.0.1', subjectAltName: 'IP:127.0.0.1,DNS:localhost' };

/**
 * A CA and a server certificate valid from an hour ago for two days, for 127.0.0.1 and localhost unless `server`
 * names another subject and alternative names (`DNS:wrong.example`).
 */
export function makeTestPki(server: { subject: string; subjectAltName: string } = LOOPBACK_SERVER): TestPki {
  const authority = makeTestAuthority();
  const now = Math.floor(Date.now() / 1000);
  const window = { notBefore: now - 3600, notAfter: now + 2 * 86_400 };
  const ca = authority.issue({
    subject: 'htntp test CA',
    ...window,
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  });
  const leaf = authority.issue(
    {
      subject: server.subject,
      ...window,
      extensions: [`subjectAltName=${server.subjectAltName}`, 'basicConstraints=CA:FALSE'],
    },
    ca,
  );
  return {
    dir: authority.dir,
    caPath: ca.certPath,
    ca: ca.cert,
    key: leaf.key,
    cert: leaf.cert,
    cleanup: authority.cleanup,
  };
}

/** A certificate and its key (PEM); `chain` is the certificate followed by the intermediates to present. */
export interface TestCertificate {
  key: string;
  cert: string;
  chain: string;
  /** Self-signed. */
  root: boolean;
  keyPath: string;
  certPath: string;
}

export interface CertificateSpec {
  subject: string;
  /** Validity, both ends (seconds since the epoch). */
  notBefore: number;
  notAfter: number;
  /** Extension lines (openssl x509v3 config), e.g. `basicConstraints=critical,CA:TRUE`. */
  extensions: string[];
  /** The certificate's own key (default EC P-256). */
  key?: 'ec' | 'rsa' | 'rsa1024' | 'ed25519';
  /** How its issuer signs it: the digest (default sha256) and openssl -sigopt values (e.g. rsa_padding_mode:pss). */
  md?: string;
  sigopts?: string[];
}

/**
 * A throwaway PKI with exact validity windows (openssl ca -startdate/-enddate), EC P-256
 * keys. issue(spec, issuer) signs with `issuer` (undefined: self-signed).
 */
export interface TestAuthority {
  dir: string;
  issue(spec: CertificateSpec, issuer?: TestCertificate): TestCertificate;
  /** A plain function: callers hand it on as a cleanup. */
  cleanup: () => void;
}

const opensslTime = (seconds: number): string =>
  new Date(seconds * 1000)
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');

export function makeTestAuthority(): TestAuthority {
  const dir = mkdtempSync(join(tmpdir(), 'htntp-ca-'));
  const path = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  writeFileSync(path('index.txt'), '');
  writeFileSync(path('serial'), '1000\n');
  writeFileSync(
    path('ca.cnf'),
    [
      '[ca]',
      'default_ca = any',
      '[any]',
      `database = ${path('index.txt')}`,
      `new_certs_dir = ${dir}`,
      `serial = ${path('serial')}`,
      'default_md = sha256',
      'policy = anything',
      'unique_subject = no',
      'copy_extensions = none',
      '[anything]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  let count = 0;
  return {
    dir,
    issue(spec, issuer) {
      count += 1;
      const name = `cert${count}`;
      const newKey = {
        ec: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
        rsa: ['-newkey', 'rsa:2048'],
        rsa1024: ['-newkey', 'rsa:1024'],
        ed25519: ['-newkey', 'ed25519'],
      }[spec.key ?? 'ec'];
      openssl(
        'req',
        '-new',
        ...newKey,
        '-nodes',
        '-subj',
        `/CN=${spec.subject}`,
        '-keyout',
        path(`${name}.key`),
        '-out',
        path(`${name}.csr`),
      );
      writeFileSync(path(`${name}.ext`), `[ext]\n${spec.extensions.join('\n')}\n`);
      const signer = issuer
        ? ['-cert', issuer.certPath, '-keyfile', issuer.keyPath]
        : ['-selfsign', '-keyfile', path(`${name}.key`)];
      openssl(
        'ca',
        '-batch',
        '-notext',
        '-config',
        path('ca.cnf'),
        ...signer,
        '-in',
        path(`${name}.csr`),
        '-out',
        path(`${name}.pem`),
        '-startdate',
        opensslTime(spec.notBefore),
        '-enddate',
        opensslTime(spec.notAfter),
        '-extfile',
        path(`${name}.ext`),
        '-extensions',
        'ext',
        ...(spec.md === undefined ? [] : ['-md', spec.md]),
        ...(spec.sigopts ?? []).flatMap((option) => ['-sigopt', option]),
      );
      const cert = readFileSync(path(`${name}.pem`), 'utf8');
      return {
        key: readFileSync(path(`${name}.key`), 'utf8'),
        cert,
        // A server presents its certificate and the intermediates above it, not the root.
        chain: issuer && !issuer.root ? `${cert}${issuer.chain}` : cert,
        root: issuer === undefined,
        keyPath: path(`${name}.key`),
        certPath: path(`${name}.pem`),
      };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
