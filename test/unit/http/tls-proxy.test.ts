// Certificates are verified (a throwaway CA trusted only when asked), and proxies work:
// --proxy (CONNECT for https) and HTTPS_PROXY/HTTP_PROXY with credentials that never
// appear in a result or a log line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { measureOffset } from '../../../src/sources/http/measure.js';
import { startProxy, type TestProxy } from '../../helpers/http/proxy.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';
import { makeTestPki, type TestPki } from '../../helpers/http/tls.js';

const TRUTH = -0.4321;
let pki: TestPki;
let servers: TimeServer[];
let proxy: TestProxy;
let authProxy: TestProxy;

beforeAll(async () => {
  pki = makeTestPki();
  servers = await startTimeServers([{ offset: TRUTH, tls: { key: pki.key, cert: pki.cert } }, { offset: TRUTH }]);
  proxy = await startProxy();
  authProxy = await startProxy({ credentials: 'htntp:s3cret-pass' });
});

afterAll(async () => {
  await closeAll(servers);
  await proxy.close();
  await authProxy.close();
  pki.cleanup();
});

const httpsUrl = (): string => servers[0]?.url ?? '';
const httpUrl = (): string => servers[1]?.url ?? '';

describe('TLS', () => {
  it('refuses a certificate from an untrusted CA, with a tls reason', async () => {
    const result = await measureOffset([httpsUrl()], { probes: 1 });
    expect(result.offset).toBeNull();
    expect(result.servers[0]?.reason).toMatch(/^tls: .*(SELF_SIGNED|UNABLE_TO|certificate)/i);
  });

  it('measures over https once the CA is trusted', async () => {
    const result = await measureOffset([httpsUrl()], { probes: 4, ca: pki.ca });
    expect(result.servers[0]?.status).toBe('ok');
    expect(Math.abs((result.offset ?? NaN) - TRUTH)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-6);
  });
});

describe('proxy', () => {
  it('tunnels https and http through --proxy host:port', async () => {
    const connectsBefore = proxy.connects;
    const result = await measureOffset([httpsUrl(), httpUrl()], { probes: 4, ca: pki.ca, proxy: proxy.uri });
    expect(result.servers.map((server) => server.status)).toEqual(['ok', 'ok']);
    expect(Math.abs((result.offset ?? NaN) - TRUTH)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-6);
    // One keep-alive tunnel per server, not one per probe.
    expect(proxy.connects - connectsBefore).toBe(2);
  });

  it('takes HTTPS_PROXY with credentials and never shows them', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', write: (line) => lines.push(line) });
    process.env.HTTPS_PROXY = `http://htntp:s3cret-pass@${authProxy.uri}`;
    try {
      const result = await measureOffset([httpsUrl()], { probes: 3, ca: pki.ca, logger });
      expect(result.servers[0]?.status).toBe('ok');
      expect(authProxy.connects).toBeGreaterThan(0);
      process.env.HTTPS_PROXY = `http://htntp:wrong-pass@${authProxy.uri}`;
      const refused = await measureOffset([httpsUrl()], { probes: 1, ca: pki.ca, logger });
      expect(refused.servers[0]?.reason).toMatch(/407/);
      const everything = JSON.stringify([result, refused]) + lines.join('\n');
      expect(everything).not.toMatch(/s3cret|wrong-pass/);
      expect(lines.length).toBeGreaterThan(0);
    } finally {
      delete process.env.HTTPS_PROXY;
    }
  });

  it('honours NO_PROXY', async () => {
    process.env.HTTP_PROXY = `http://${proxy.uri}`;
    process.env.NO_PROXY = '127.0.0.1';
    const before = proxy.connects + proxy.forwards;
    try {
      const result = await measureOffset([httpUrl()], { probes: 2 });
      expect(result.servers[0]?.status).toBe('ok');
      expect(proxy.connects + proxy.forwards).toBe(before);
    } finally {
      delete process.env.HTTP_PROXY;
      delete process.env.NO_PROXY;
    }
  });
});
