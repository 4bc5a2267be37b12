// Certificates are verified (a throwaway CA trusted only when asked), and proxies work:
// --proxy (CONNECT for https, absolute-form requests for http) and HTTPS_PROXY/HTTP_PROXY
// with credentials that never appear in a result or a log line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { proxyFor } from '../../../src/sources/http/client.js';
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
  it('tunnels https and sends http in absolute form through --proxy host:port', async () => {
    const connectsBefore = proxy.connects;
    const forwardsBefore = proxy.forwards;
    const result = await measureOffset([httpsUrl(), httpUrl()], { probes: 4, ca: pki.ca, proxy: proxy.uri });
    expect(result.servers.map((server) => server.status)).toEqual(['ok', 'ok']);
    expect(Math.abs((result.offset ?? NaN) - TRUTH)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-6);
    // One keep-alive tunnel for the https server, not one per probe; plain http is forwarded per request.
    expect(proxy.connects - connectsBefore).toBe(1);
    const plain = result.servers[1];
    expect(proxy.forwards - forwardsBefore).toBe((plain?.probes ?? NaN) + (plain?.verifications ?? NaN));
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

  it("fails a refused tunnel and an unreachable proxy as the proxy's fault, on http and https alike", async () => {
    const refusedTunnel = await measureOffset([httpsUrl()], {
      probes: 1,
      ca: pki.ca,
      proxy: `http://htntp:wrong@${authProxy.uri}`,
    });
    expect(refusedTunnel.servers[0]?.reason).toMatch(
      new RegExp(`^proxy: 127\\.0\\.0\\.1:${authProxy.port}: CONNECT 127\\.0\\.0\\.1:\\d+: HTTP/1\\.1 407`),
    );
    const refusedForward = await measureOffset([httpUrl()], { probes: 1, proxy: authProxy.uri });
    expect(refusedForward.servers[0]?.reason).toMatch(/^proxy: .*407/);
    for (const url of [httpsUrl(), httpUrl()]) {
      const unreachable = await measureOffset([url], { probes: 1, ca: pki.ca, proxy: '127.0.0.1:1' });
      expect(unreachable.servers[0]?.reason).toMatch(/^proxy: 127\.0\.0\.1:1: ECONNREFUSED/);
    }
  });

  it('routes each server by the environment: the https proxy for https, NO_PROXY names, suffixes and ports', () => {
    const names = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'];
    const saved = names.map((name) => [name, process.env[name]] as const);
    try {
      for (const name of names) delete process.env[name];
      expect(proxyFor(new URL('http://a.example.org/'), undefined)).toBeUndefined();
      process.env.HTTP_PROXY = 'http://plain.proxy:3128';
      process.env.HTTPS_PROXY = 'http://secure.proxy:3129';
      process.env.NO_PROXY = 'localhost, .internal.org,*.corp.net ,10.0.0.1:8080,[::1]';
      const route = (url: string): string | undefined => proxyFor(new URL(url), undefined)?.host;
      expect(route('http://a.example.org/')).toBe('plain.proxy:3128');
      expect(route('https://a.example.org/')).toBe('secure.proxy:3129');
      expect(route('http://localhost:8080/')).toBeUndefined();
      expect(route('http://localhost.example.org/')).toBe('plain.proxy:3128');
      expect(route('https://time.internal.org/')).toBeUndefined();
      expect(route('https://internal.org/')).toBe('secure.proxy:3129');
      expect(route('http://a.b.corp.net/')).toBeUndefined();
      expect(route('http://10.0.0.1:8080/')).toBeUndefined();
      expect(route('http://10.0.0.1/')).toBe('plain.proxy:3128');
      expect(route('http://[::1]:8080/')).toBeUndefined();
      // A bare IPv6 address as curl and Go take it; with a port only in brackets.
      process.env.NO_PROXY = '::1, [fd00::2]:8080';
      expect(route('http://[::1]:8080/')).toBeUndefined();
      expect(route('http://[fd00::2]:8080/')).toBeUndefined();
      expect(route('http://[fd00::2]/')).toBe('plain.proxy:3128');
      process.env.NO_PROXY = 'localhost, .internal.org,*.corp.net ,10.0.0.1:8080,[::1]';
      delete process.env.HTTPS_PROXY;
      expect(route('https://a.example.org/')).toBe('plain.proxy:3128');
      process.env.NO_PROXY = '*';
      expect(route('https://a.example.org/')).toBeUndefined();
      // Given explicitly, the proxy takes every server.
      expect(proxyFor(new URL('http://localhost/'), '127.0.0.1:3128')?.host).toBe('127.0.0.1:3128');
    } finally {
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
