// HTTPS with a wrong local clock: servers whose certificates fail only on time are measured
// (time-unverified) and bounded by their chains' validity; everything else is rejected as
// with a right clock. The servers' clocks and certificates are moved together by `shift`
// (seconds): for the measuring side that is its own clock `shift` behind (OpenSSL judges
// certificates on the process clock, which an injected Clock does not move; the last suite
// injects one to show the windows are judged at the agreed time).
import { describe, expect, it } from 'vitest';
import { monotonicRaw, realtime, systemClock, type Clock } from '../../../src/clock.js';
import { addSeconds } from '../../../src/time.js';
import { createLogger } from '../../../src/log.js';
import { waitFor } from '../../helpers/wait.js';
import { measureOffset } from '../../../src/sources/http/measure.js';
import { createConnection, probe } from '../../../src/sources/http/probe.js';
import { ServerClock } from '../../../src/server-clock/server-clock.js';
import type { CertificateSpec, TestCertificate } from '../../helpers/http/tls.js';
import { useTlsServers } from '../../helpers/http/tls-servers.js';
import { expectNear, UNSYNCHRONISED } from '../../helpers/http/kernel-clock.js';

const DAY = 86_400;
const now = realtime().sec;
const servers = useTlsServers();
const { serve } = servers;

const CA_EXTENSIONS = [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier=hash',
];
const leafExtensions = (hosts = 'IP:127.0.0.1,DNS:localhost'): string[] => [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  `subjectAltName=${hosts}`,
  'authorityKeyIdentifier=keyid',
];

/** A self-signed CA valid from `notBefore` to `notAfter` (seconds). */
const rootCa = (subject: string, notBefore: number, notAfter: number): TestCertificate =>
  servers.authority.issue({ subject, notBefore, notAfter, extensions: CA_EXTENSIONS });

/** A server certificate for 127.0.0.1 and localhost valid from `notBefore` to `notAfter`, signed by `issuer`. */
const serverCertificate = (notBefore: number, notAfter: number, issuer: TestCertificate): TestCertificate =>
  servers.authority.issue({ subject: '127.0.0.1', notBefore, notAfter, extensions: leafExtensions() }, issuer);

/** A root, an intermediate and a server certificate valid around `center` (days around it). */
function pkiAround(
  center: number,
  leaf: Partial<CertificateSpec> = {},
): { root: TestCertificate; server: TestCertificate } {
  const root = rootCa('htntp test root', center - 400 * DAY, center + 400 * DAY);
  const intermediate = servers.authority.issue(
    {
      subject: 'htntp test intermediate',
      notBefore: center - 300 * DAY,
      notAfter: center + 300 * DAY,
      extensions: [...CA_EXTENSIONS, 'authorityKeyIdentifier=keyid'],
    },
    root,
  );
  const server = servers.authority.issue(
    {
      subject: '127.0.0.1',
      notBefore: center - 30 * DAY,
      notAfter: center + 60 * DAY,
      extensions: leafExtensions(),
      ...leaf,
    },
    intermediate,
  );
  return { root, server };
}

describe('local clock 400 days behind', () => {
  const shift = 400 * DAY;

  it("publishes the servers' time, marked time-unverified, with the chains' windows", async () => {
    const { root, server } = pkiAround(now + shift);
    const urls = await serve(shift, server, 3);
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', write: (line) => lines.push(line) });
    const result = await measureOffset(urls, { ...UNSYNCHRONISED, probes: 3, ca: root.cert, logger });
    expectNear(result, shift);
    expect(result.timeUnverified).toBe(true);
    expect(result.survivors).toBe(3);
    for (const entry of result.servers) {
      expect(entry.status).toBe('ok');
      expect(entry.tls).toBe('time-unverified');
      expect(entry.certificates?.map((window) => window.subject)).toEqual([
        'CN=127.0.0.1',
        'CN=htntp test intermediate',
        'CN=htntp test root',
      ]);
    }
    const warnings = lines.filter((line) => /local clock is (behind|ahead) by about/.test(line));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('behind by about 400 days');
  });

  it('is a TLS failure for a caller that does not judge connections: no second tunnel', async () => {
    const { root, server } = pkiAround(now + shift);
    const url = new URL((await serve(shift, server))[0] as string);
    const connection = createConnection(url, { timeoutMs: 10_000, ca: root.cert, proxy: servers.proxy.uri });
    const connects = servers.proxy.connects;
    try {
      await expect(probe(connection, url, systemClock)).rejects.toMatchObject({ code: 'CERT_NOT_YET_VALID' });
      expect(servers.proxy.connects - connects).toBe(1);
    } finally {
      await connection.destroy();
    }
  });
});

describe('local clock 3 years ahead', () => {
  const shift = -3 * 365 * DAY;

  it("publishes nothing: the servers agree on a time before the floor (the package's build)", async () => {
    const { root, server } = pkiAround(now + shift);
    const urls = await serve(shift, server, 3);
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', write: (line) => lines.push(line) });
    const result = await measureOffset(urls, { ...UNSYNCHRONISED, clockFile: null, probes: 2, ca: root.cert, logger });
    expect(result.offset).toBeNull();
    expect(result.error).toBeNull();
    expect(result.reason).toMatch(/before the floor .*\(the package build time\): not published/);
    // Their chains verified at their own Date: it is the floor alone that refuses.
    expect(result.servers.map((entry) => [entry.status, entry.tls])).toEqual([
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
    ]);
    expect(lines.filter((line) => /http time before the floor/.test(line))).toHaveLength(1);
  });
});

describe('local clock 400 days behind: what is still rejected', () => {
  const shift = 400 * DAY;

  it('rejects a wrong host name', async () => {
    const { root, server } = pkiAround(now + shift, { extensions: leafExtensions('DNS:wrong.example') });
    const result = await measureOffset(await serve(shift, server), { ...UNSYNCHRONISED, probes: 1, ca: root.cert });
    expect(result.offset).toBeNull();
    expect(result.servers[0]?.status).toBe('failed');
    expect(result.servers[0]?.reason).toMatch(/^tls: IP_ADDRESS_MISMATCH .*nor at the server's own Date/);
  });

  it('rejects an unknown CA (the handshake reports only the time error for it)', async () => {
    const { server } = pkiAround(now + shift);
    const { root: other } = pkiAround(now + shift);
    const result = await measureOffset(await serve(shift, server), { ...UNSYNCHRONISED, probes: 1, ca: other.cert });
    expect(result.offset).toBeNull();
    expect(result.servers[0]?.reason).toMatch(/^tls: UNABLE_TO_GET_ISSUER_CERT_LOCALLY /);
  });

  it('rejects a server whose chain is not valid at its own Date, and still publishes the majority', async () => {
    const { root, server } = pkiAround(now + shift);
    // Not yet valid at the local clock either, so it is checked the same way; valid long before the truth.
    const expired = servers.authority.issue(
      {
        subject: '127.0.0.1',
        notBefore: now + shift - 200 * DAY,
        notAfter: now + shift - 100 * DAY,
        extensions: leafExtensions(),
      },
      root,
    );
    const urls = [...(await serve(shift, server, 3)), ...(await serve(shift, expired))];
    const result = await measureOffset(urls, { ...UNSYNCHRONISED, probes: 3, ca: root.cert });
    expectNear(result, shift);
    expect(result.survivors).toBe(3);
    expect(result.servers.map((entry) => entry.status)).toEqual(['ok', 'ok', 'ok', 'failed']);
    expect(result.servers[3]?.tls).toBeNull();
    expect(result.servers[3]?.reason).toMatch(/^tls: CERT_HAS_EXPIRED .*nor at the server's own Date/);
    expect(result.servers[3]?.low).toBeNull();
  });

  it("rejects a chain valid at the wrong local clock but expired at its server's own Date", async () => {
    const { root, server } = pkiAround(now + shift);
    // The root too must be valid at the local clock for OpenSSL to accept the chain.
    const localRoot = rootCa('htntp test local root', now - 10 * DAY, now + 100 * DAY);
    const local = serverCertificate(now - 10 * DAY, now + 100 * DAY, localRoot);
    const urls = [...(await serve(shift, server, 3)), ...(await serve(shift, local))];
    const result = await measureOffset(urls, { ...UNSYNCHRONISED, probes: 3, ca: `${root.cert}${localRoot.cert}` });
    expectNear(result, shift);
    expect(result.servers.map((entry) => [entry.status, entry.tls])).toEqual([
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
      ['failed', null],
    ]);
    // Valid at the local clock gives no weight while that clock is not known to be right: judged at its own Date like
    // the rest.
    expect(result.servers[3]?.reason).toMatch(
      new RegExp(
        String.raw`^tls: CERT_HAS_EXPIRED certificate valid at the local clock \(not known to be right\) ` +
          "but not at the server's own Date",
      ),
    );
    expect(result.servers[3]?.low).toBeNull();
  });

  it("rejects an expired key's claim of a time inside its old window (a falseticker and outside)", async () => {
    const { root, server } = pkiAround(now + shift);
    const old = now + shift - 150 * DAY;
    const stolen = serverCertificate(old - 50 * DAY, old + 50 * DAY, root);
    const urls = [...(await serve(shift, server, 2)), ...(await serve(old - now, stolen))];
    const result = await measureOffset(urls, { ...UNSYNCHRONISED, probes: 3, ca: root.cert });
    expectNear(result, shift);
    expect(result.servers.map((entry) => entry.status)).toEqual(['ok', 'ok', 'falseticker']);
  });

  it('publishes nothing when all servers are time-unverified and disagree', async () => {
    const { root, server } = pkiAround(now + shift);
    const urls = [
      ...(await serve(shift, server)),
      ...(await serve(shift + 30, server)),
      ...(await serve(shift + 60, server)),
    ];
    const lines: string[] = [];
    const result = await measureOffset(urls, {
      ...UNSYNCHRONISED,
      probes: 2,
      ca: root.cert,
      logger: createLogger({ level: 'warn', write: (line) => lines.push(line) }),
    });
    expect(result.offset).toBeNull();
    expect(result.reason).toMatch(/^no majority/);
    expect(result.servers.every((entry) => entry.tls === 'time-unverified')).toBe(true);
    expect(lines.filter((line) => /checked against the servers' time: no estimate/.test(line))).toHaveLength(1);
  });

  it("works through a proxy's CONNECT tunnel", async () => {
    const { root, server } = pkiAround(now + shift);
    const urls = await serve(shift, server, 3);
    const connects = servers.proxy.connects;
    const result = await measureOffset(urls, { ...UNSYNCHRONISED, probes: 2, ca: root.cert, proxy: servers.proxy.uri });
    expectNear(result, shift);
    expect(result.servers.every((entry) => entry.tls === 'time-unverified')).toBe(true);
    // Per server: the strict attempt's tunnel, then the one kept.
    expect(servers.proxy.connects - connects).toBe(6);
  });
});

describe('local clock right', () => {
  it('verifies normally: no retry, no warning, verified', async () => {
    const { root, server } = pkiAround(now);
    const urls = await serve(0.25, server, 3);
    const lines: string[] = [];
    const connects = servers.proxy.connects;
    const result = await measureOffset(urls, {
      ...UNSYNCHRONISED,
      probes: 2,
      ca: root.cert,
      proxy: servers.proxy.uri,
      logger: createLogger({ level: 'warn', write: (line) => lines.push(line) }),
    });
    expectNear(result, 0.25);
    expect(result.timeUnverified).toBe(false);
    expect(result.servers.map((entry) => entry.tls)).toEqual(['verified', 'verified', 'verified']);
    expect(servers.proxy.connects - connects).toBe(3);
    expect(lines.join('\n')).not.toMatch(/certificates/);
  });

  it('still rejects a wrong host name without trying again', async () => {
    const { root, server } = pkiAround(now, { extensions: leafExtensions('DNS:wrong.example') });
    const connects = servers.proxy.connects;
    const result = await measureOffset(await serve(0, server), { probes: 1, ca: root.cert, proxy: servers.proxy.uri });
    expect(result.servers[0]?.reason).toMatch(/^tls: ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(servers.proxy.connects - connects).toBe(1);
  });
});

describe("the measurement's own clock (injected) 400 days behind, servers and OpenSSL on the right time", () => {
  const shift = 400 * DAY;
  const behind: Clock = { realtime: () => addSeconds(realtime(), -shift), monotonicRaw };

  it("judges a chain at its server's Date, not the injected clock: a chain valid only then is rejected", async () => {
    const { root, server } = pkiAround(now);
    // Valid around the injected clock's time only: OpenSSL (right clock) finds it expired; the check ignoring time
    // passes it.
    const stale = pkiAround(now - shift);
    const urls = [...(await serve(0, server, 3)), ...(await serve(0, stale.server))];
    const result = await measureOffset(urls, {
      ...UNSYNCHRONISED,
      probes: 3,
      ca: `${root.cert}${stale.root.cert}`,
      clock: behind,
    });
    expectNear(result, shift);
    expect(result.servers.map((entry) => [entry.status, entry.tls])).toEqual([
      ['ok', 'verified'],
      ['ok', 'verified'],
      ['ok', 'verified'],
      ['failed', null],
    ]);
    expect(result.servers[3]?.reason).toMatch(/^tls: CERT_HAS_EXPIRED .*nor at the server's own Date/);
    expect(result.timeUnverified).toBe(false);
  });
});

describe('ServerClock with the local clock 400 days behind', () => {
  const shift = 400 * DAY;

  it("is ready on the servers' time, warns once, drops a server whose time is outside its chain's window", async () => {
    const { root, server } = pkiAround(now + shift);
    const old = now + shift - 150 * DAY;
    const stolen = serverCertificate(old - 50 * DAY, old + 50 * DAY, root);
    // The fourth tells the true time with a chain valid only long before it.
    const urls = [...(await serve(shift, server, 3)), ...(await serve(shift, stolen))];
    const lines: string[] = [];
    const clock = new ServerClock({
      servers: urls,
      ca: root.cert,
      ...UNSYNCHRONISED,
      logger: createLogger({ level: 'warn', write: (line) => lines.push(line) }),
    });
    try {
      await clock.ready();
      expect(Math.abs(clock.offset - shift)).toBeLessThan(1);
      // ready() comes with the sweep; the warning, the measurement's as for measureOffset(), at its end.
      await waitFor(() => lines.some((line) => /the local clock is behind by about 400 days/.test(line)) || undefined, {
        what: 'the wrong-clock warning',
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      expect(lines.filter((line) => /the local clock is behind by about 400 days/.test(line))).toHaveLength(1);
      // The stolen chain is judged by the gate at its server's own Date, as measureOffset() judges it.
      expect(
        lines.some((line) => /server clock server failed.*CERT_HAS_EXPIRED.*nor at the server's own Date/.test(line)),
      ).toBe(true);
    } finally {
      clock.close();
    }
  });
});
