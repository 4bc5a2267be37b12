// A throwaway CA and a server certificate for 127.0.0.1, made with openssl in a temp dir.
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

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'htntp-pki-'));
  const path = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=htntp test CA', '-keyout', path('ca.key'), '-out', path('ca.pem'));
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', path('server.key'), '-out', path('server.csr'));
  writeFileSync(path('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', path('server.csr'), '-CA', path('ca.pem'), '-CAkey', path('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', path('ext.cnf'), '-out', path('server.pem'));
  return {
    dir,
    caPath: path('ca.pem'),
    ca: readFileSync(path('ca.pem'), 'utf8'),
    key: readFileSync(path('server.key'), 'utf8'),
    cert: readFileSync(path('server.pem'), 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
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
}

/**
 * A throwaway PKI with exact validity windows (openssl ca -startdate/-enddate), EC P-256
 * keys. issue(spec, issuer) signs with `issuer` (undefined: self-signed).
 */
export interface TestAuthority {
  dir: string;
  issue(spec: CertificateSpec, issuer?: TestCertificate): TestCertificate;
  cleanup(): void;
}

const opensslTime = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');

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
    ['[ca]', 'default_ca = any', '[any]', `database = ${path('index.txt')}`, `new_certs_dir = ${dir}`, `serial = ${path('serial')}`,
      'default_md = sha256', 'policy = anything', 'unique_subject = no', 'copy_extensions = none', '[anything]', 'commonName = supplied', ''].join('\n'),
  );
  let count = 0;
  return {
    dir,
    issue(spec, issuer) {
      count += 1;
      const name = `cert${count}`;
      openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${spec.subject}`, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`));
      writeFileSync(path(`${name}.ext`), `[ext]\n${spec.extensions.join('\n')}\n`);
      const signer = issuer ? ['-cert', issuer.certPath, '-keyfile', issuer.keyPath] : ['-selfsign', '-keyfile', path(`${name}.key`)];
      openssl('ca', '-batch', '-notext', '-config', path('ca.cnf'), ...signer, '-in', path(`${name}.csr`), '-out', path(`${name}.pem`),
        '-startdate', opensslTime(spec.notBefore), '-enddate', opensslTime(spec.notAfter), '-extfile', path(`${name}.ext`), '-extensions', 'ext');
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
