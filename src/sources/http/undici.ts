// undici's parts that direct probes use, each loaded from its own file: the package's index
// also loads fetch, WebSocket, caches, mocks and the SOCKS agent, about 6 MB of a feeder's
// memory. The file paths are undici 7's (package.json keeps it to 7.30.x); the types are
// the package's own.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const Client = require('undici/lib/dispatcher/client.js') as typeof Undici.Client;
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
/** How a dispatcher opens its connections. */
export type Connector = Undici.buildConnector.connector;

/**
 * The proxy agents, loaded only by a run that goes through a proxy: from the index, which
 * gives dispatchers the `connect()` the agents' CONNECT tunnels call.
 */
export function proxyAgents(): Pick<typeof Undici, 'ProxyAgent' | 'EnvHttpProxyAgent'> {
  return require('undici') as typeof Undici;
}
