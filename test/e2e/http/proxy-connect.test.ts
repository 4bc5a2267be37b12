// A default-port https URL through forward proxies, on the time-tolerant path: the tunnel
// opened after the time error must ask CONNECT for host:443, not the host alone (a request
// line some proxies answer with 400; squid and tinyproxy here take 443 for it, so the
// recording proxy is what tells). The server listens on 127.0.0.1:443 (the proxies' Debian
// default allows CONNECT to 443 only) with a certificate valid only 206 days from now,
// telling that time; the kernel's word is injected as unsynchronised, so the server is
// judged at its own Date.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { realtime } from '../../../src/clock.js';
import { measureOffset } from '../../../src/sources/http/measure.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';
import { makeTestAuthority, type TestAuthority, type TestCertificate } from '../../helpers/http/tls.js';
import { describeE2e } from '../../helpers/tools.js';
import { startProxy as startTestProxy } from '../../helpers/http/proxy.js';
import { startProxy, stopAll, type RealProxy } from '../../helpers/webservers.js';
import { UNSYNCHRONISED } from '../../helpers/http/kernel-clock.js';

const DAY = 86_400;
const AHEAD = 206 * DAY;

let authority: TestAuthority;
let root: TestCertificate;
let servers: TimeServer[] = [];
const proxies: RealProxy[] = [];

beforeAll(async () => {
  const now = realtime().sec;
  authority = makeTestAuthority();
  root = authority.issue({
    subject: 'htntp connect root',
    notBefore: now - DAY,
    notAfter: now + 400 * DAY,
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign'],
  });
  const server = authority.issue(
    {
      subject: '127.0.0.1',
      notBefore: now + AHEAD - 10 * DAY,
      notAfter: now + AHEAD + 10 * DAY,
      extensions: ['extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1'],
    },
    root,
  );
  servers = await startTimeServers([{ offset: AHEAD, port: 443, tls: { key: server.key, cert: server.chain } }]);
});

afterAll(async () => {
  await stopAll(proxies);
  await closeAll(servers);
  authority.cleanup();
});

describeE2e('CONNECT to the default https port on the time-tolerant path', ['squid', 'tinyproxy'], () => {
  it.each(['squid', 'tinyproxy'] as const)(
    '%s tunnels to host:443 and the server is measured, time-unverified',
    { timeout: 60_000 },
    async (kind) => {
      const proxy = await startProxy(kind);
      proxies.push(proxy);
      const url = 'https://127.0.0.1/';
      expect(new URL(servers[0]?.url ?? '').port).toBe('');
      const result = await measureOffset([url], {
        ...UNSYNCHRONISED,
        clockFile: null,
        probes: 2,
        ca: root.cert,
        proxy: proxy.uri,
      });
      expect(result.servers[0]?.reason ?? null, JSON.stringify(result.servers[0])).toBeNull();
      expect(result.servers[0]?.tls).toBe('time-unverified');
      expect(Math.abs((result.offset ?? NaN) - AHEAD)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-3);
    },
  );

  it('asks CONNECT for 127.0.0.1:443 on both tunnels, the strict one and the one after the time error', async () => {
    const recorder = await startTestProxy();
    try {
      const result = await measureOffset(['https://127.0.0.1/'], {
        ...UNSYNCHRONISED,
        clockFile: null,
        probes: 1,
        ca: root.cert,
        proxy: recorder.uri,
      });
      expect(result.servers[0]?.tls).toBe('time-unverified');
      expect(recorder.targets).toEqual(['127.0.0.1:443', '127.0.0.1:443']);
    } finally {
      await recorder.close();
    }
  });
});
