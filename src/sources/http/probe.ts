// One probe of a server's Date: HEAD on the server's own keep-alive connection (client.ts,
// direct or through a proxy), timed on the local clock.
//
// Which answers count: a Date is taken from 2xx, 3xx and 4xx answers (RFC 9110 6.6.1: an
// origin with a clock MUST send it there, and a redirect or a 404 is stamped by the same
// clock as a 200), never from 5xx (often made by a gateway or an error handler with a
// clock of its own, or by a server in trouble) nor from 304 (never asked for: a cache
// answered). A server refusing HEAD (405, 501) is asked with GET for one byte from then
// on.
import type { Clock } from '../../clock.js';
import { codedError } from '../../errors.js';
import { ServerConnection } from './client.js';
import { ProbeFault, type ConnectionOptions, type ProbeConnection, type ProbeResponse } from './connection.js';

export { checkProxy } from './client.js';
export {
  ProbeFault,
  PROXY_ENV,
  proxyUri,
  usesProxy,
  type ConnectionOptions,
  type ProbeConnection,
  type ProbeResponse,
} from './connection.js';

/** Servers that refused HEAD: probed with GET for one byte from then on. */
const getInstead = new WeakSet<ProbeConnection>();

/** One connection per server, straight or through the proxy given or in the environment. */
export function createConnection(url: URL, options: ConnectionOptions): ProbeConnection {
  return new ServerConnection(url, options);
}

/**
 * Whether an answer's Date is used (undefined) or why not. `viaProxy`: the answer came
 * through a proxy in absolute form, so a gateway error is the proxy's.
 */
export function statusProblem(
  statusCode: number,
  statusText: string,
  headers: Readonly<Record<string, string | undefined>>,
  viaProxy: URL | undefined,
): ProbeFault | undefined {
  const status = `${statusCode}${statusText ? ` ${statusText}` : ''}`;
  if (statusCode === 407)
    return new ProbeFault(
      'proxy',
      `${viaProxy?.host ?? 'proxy'}: ${status}: the proxy wants (other) credentials`,
      'ERR_HTTP_PROXY_AUTH',
    );
  // A proxy adds Via to what it forwards (RFC 9110 7.6.3): a server error without one is its own.
  const proxyMade =
    statusCode === 502 ||
    statusCode === 504 ||
    headers.via === undefined ||
    headers['x-squid-error'] !== undefined ||
    headers['proxy-status'] !== undefined;
  if (viaProxy && statusCode >= 500 && proxyMade) {
    return new ProbeFault(
      'proxy',
      `${viaProxy.host}: ${status}: the proxy could not get an answer from the ` +
        `server${headers['x-squid-error'] ? ` (${headers['x-squid-error']})` : ''}`,
      'ERR_HTTP_PROXY_STATUS',
    );
  }
  if (statusCode >= 500) {
    return new ProbeFault(
      'status',
      `${status}: a Date in a server error is not used (a gateway or error handler may stamp it with another clock)`,
      'ERR_HTTP_STATUS',
    );
  }
  if (statusCode === 304)
    return new ProbeFault(
      'status',
      `${status} to a request that asked for no revalidation: a cache answered`,
      'ERR_HTTP_STATUS',
    );
  if (statusCode < 200) return new ProbeFault('protocol', `${status} as a final answer`, 'ERR_HTTP_STATUS');
  return undefined;
}

/**
 * Sends one probe: HEAD, or GET for one byte to a server that refused HEAD. Rejects with a
 * ProbeFault (the proxy failed, or an answer whose Date is not used), with the client's
 * error (code, message) on other failures, and with ERR_HTTP_NO_SEND_TIME for an answer
 * whose send time was never taken.
 */
export async function probe(connection: ProbeConnection, url: URL, clock: Clock): Promise<ProbeResponse> {
  // Plain http:// through a proxy is answered by the proxy (absolute form): its errors are the proxy's.
  const viaProxy = url.protocol === 'http:' ? connection.httpProxy() : undefined;
  const method = getInstead.has(connection) ? 'GET' : 'HEAD';
  const answer = await connection.send(url, clock, method);
  if (method === 'HEAD' && (answer.statusCode === 405 || answer.statusCode === 501)) {
    getInstead.add(connection);
    return probe(connection, url, clock);
  }
  // RFC 9110 15.5.9: a server may send 408 on an idle connection with no request in
  // progress; on a kept socket it can cross the request and be stamped before its send time.
  if (answer.statusCode === 408)
    throw codedError('408 Request Timeout: the server timed the connection out, not an answer', 'ERR_HTTP_IDLE_408');
  const problem = statusProblem(answer.statusCode, answer.statusText, answer.headers, viaProxy);
  if (problem) throw problem;
  return answer.response;
}
