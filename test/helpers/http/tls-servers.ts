// A test file's HTTPS time servers: a throwaway authority and a CONNECT proxy made before its
// tests, and every server it starts closed with them after its tests.
import { afterAll, beforeAll } from 'vitest';
import { startProxy, type TestProxy } from './proxy.js';
import { closeAll, startTimeServers, type TimeServer } from './servers.js';
import { makeTestAuthority, type TestAuthority, type TestCertificate } from './tls.js';

export interface TlsServers {
  /** Made before the file's tests: use within tests and hooks. */
  readonly authority: TestAuthority;
  readonly proxy: TestProxy;
  /** `count` time servers `offset` seconds off, presenting `certificate`'s chain: their URLs. */
  serve: (offset: number, certificate: TestCertificate, count?: number) => Promise<string[]>;
}

/** Registers the file's beforeAll/afterAll for its authority, proxy and time servers. */
export function useTlsServers(): TlsServers {
  let authority: TestAuthority | undefined;
  let proxy: TestProxy | undefined;
  const started: TimeServer[] = [];
  beforeAll(async () => {
    authority = makeTestAuthority();
    proxy = await startProxy();
  });
  afterAll(async () => {
    await closeAll(started);
    await proxy?.close();
    authority?.cleanup();
  });
  const made = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the TLS fixture is made in beforeAll: use it within tests and hooks');
    return value;
  };
  return {
    get authority() {
      return made(authority);
    },
    get proxy() {
      return made(proxy);
    },
    serve: async (offset, certificate, count = 1) => {
      const servers = await startTimeServers(
        Array.from({ length: count }, () => ({ offset, tls: { key: certificate.key, cert: certificate.chain } })),
      );
      started.push(...servers);
      return servers.map((server) => server.url);
    },
  };
}
