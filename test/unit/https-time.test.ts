// HTTPS with a wrong local clock: servers whose certificates fail only on time are measured
// (time-unverified) and bounded by their chains' validity; everything else is rejected as
// with a right clock. The servers' clocks and certificates are moved together by `shift`
// (seconds): for the measuring side that is its own clock `shift` behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realtime } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { measureOffset, type MeasurementResult } from '../../src/sources/http/measure.js';
import { startProxy, type TestProxy } from '../http/proxy.js';
import { closeAll, startTimeServers, type TimeServer } from '../http/servers.js';
import { makeTestAuthority, type CertificateSpec, type TestAuthority, type TestCertificate } from '../http/tls.js';

const DAY = 86_400;
const now = realtime().sec;
let authority: TestAuthority;
const started: TimeServer[] = [];
let proxy: TestProxy;

const CA_EXTENSIONS = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];
const leafExtensions = (hosts = 'IP:127.0.0.1,DNS:localhost'): string[] => [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  `subjectAltName=${hosts}`,
  'authorityKeyIdentifier=keyid',
];

/** A root, an intermediate and a server certificate valid around `center` (days around it). */
function pkiAround(center: number, leaf: Partial<CertificateSpec> = {}): { root: TestCertificate; server: TestCertificate } {
  const root = authority.issue({ subject: 'htntp test root', notBefore: center - 400 * DAY, notAfter: center + 400 * DAY, extensions: CA_EXTENSIONS });
  const intermediate = authority.issue({ subject: 'htntp test intermediate', notBefore: center - 300 * DAY, notAfter: center + 300 * DAY, extensions: [...CA_EXTENSIONS, 'authorityKeyIdentifier=keyid'] }, root);
  const server = authority.issue({ subject: '127.0.0.1', notBefore: center - 30 * DAY, notAfter: center + 60 * DAY, extensions: leafExtensions(), ...leaf }, intermediate);
  return { root, server };
}

async function serve(offset: number, certificate: TestCertificate, count = 1): Promise<string[]> {
  const servers = await startTimeServers(Array.from({ length: count }, () => ({ offset, tls: { key: certificate.key, cert: certificate.chain } })));
  started.push(...servers);
  return servers.map((server) => server.url);
}

function expectNear(result: MeasurementResult, truth: number): void {
  expect(result.offset).not.toBeNull();
  expect(Math.abs((result.offset ?? NaN) - truth)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-3);
}

beforeAll(async () => {
  authority = makeTestAuthority();
  proxy = await startProxy();
});

afterAll(async () => {
  await closeAll(started);
  await proxy.close();
  authority.cleanup();
});

describe.each([
  { what: 'local clock 400 days behind', shift: 400 * DAY },
  { what: 'local clock 3 years ahead', shift: -3 * 365 * DAY },
])('$what', ({ shift }) => {
  it('publishes the servers\' time, marked time-unverified, with the chains\' windows', async () => {
    const { root, server } = pkiAround(now + shift);
    const urls = await serve(shift, server, 3);
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', write: (line) => lines.push(line) });
    const result = await measureOffset(urls, { probes: 3, ca: root.cert, logger });
    expectNear(result, shift);
    expect(result.timeUnverified).toBe(true);
    expect(result.survivors).toBe(3);
    for (const entry of result.servers) {
      expect(entry.status).toBe('ok');
      expect(entry.tls).toBe('time-unverified');
      expect(entry.certificates?.map((window) => window.subject)).toEqual(['CN=127.0.0.1', 'CN=htntp test intermediate', 'CN=htntp test root']);
    }
    const warnings = lines.filter((line) => /local clock is (behind|ahead) by about/.test(line));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(shift > 0 ? 'behind by about 400 days' : 'ahead by about 1095 days');
  });
});
