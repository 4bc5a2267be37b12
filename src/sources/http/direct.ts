// Probes straight to a server, on Node's own HTTP client: its parser is native (undici's is
// WebAssembly, and its client loads node:http2), which keeps a feeder about 7 MB lighter.
//
// Timing: the request gets its socket only once the connection is up (the connector calls
// back after connect or the TLS handshake), and Node writes the request's bytes right after
// the `socket` event: the send time is taken there. The receive time is taken by a `data`
// listener put before Node's parser, at the first bytes after the send (CR and LF alone do
// not count: the parser skips them). An informational (1xx) answer restarts it, so only the
// final answer is timed; `response` (head parsed) is the fallback when the final answer
// came in the same read as a 1xx.
import { Agent, request, type ClientRequestArgs, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../clock.js';
import type { Timespec } from '../../time.js';
import { codedError } from '../../errors.js';
import { bodyTooLarge, DEFAULT_MAX_HEADER_SIZE, defaultPort, hostOf, KEEP_ALIVE_MS, MAX_BODY, ProbeFault, requestHeaders, tcpConnector, type Answer, type ConnectionOptions, type ConnectTarget, type Connector, type ProbeConnection, type ProbeMethod } from './connection.js';

/**
 * https: TLS and the certificate checks (tls.ts, node:tls) load with the first connection,
 * so a feeder of plain http:// servers never loads them (about 2 MB).
 */
function tlsConnector(options: ConnectionOptions): Connector {
  let connector: Connector | undefined;
  return (target, callback) => {
    if (connector !== undefined) {
      connector(target, callback);
      return;
    }
    import('./tls.js').then(({ timeTolerantConnector }) => {
      try {
        connector ??= timeTolerantConnector({ timeoutMs: options.timeoutMs, ...(options.ca === undefined ? {} : { extraCa: options.ca }), ...(options.onTls ? { onConnection: options.onTls } : {}) });
        connector(target, callback);
      } catch (error) {
        callback(error as Error, null);
      }
    }, (error: Error) => callback(error, null));
  };
}

/** An agent with one keep-alive connection, opened by the time-tolerant connector. */
class ServerAgent extends Agent {
  /** Set by destroy(): a request still queued must not open a new connection. */
  closed: Error | undefined;

  constructor(
    private readonly connector: Connector,
    private readonly target: ConnectTarget,
  ) {
    super({ keepAlive: true, maxSockets: 1, timeout: KEEP_ALIVE_MS });
  }

  override createConnection(_options: ClientRequestArgs, callback?: (error: Error | null, socket: Duplex) => void): undefined {
    // Node's callback reads its socket argument only when there is no error.
    const oncreate = callback as ((error: Error | null, socket?: Duplex) => void) | undefined;
    if (this.closed) {
      oncreate?.(this.closed);
      return undefined;
    }
    this.connector(this.target, (error, socket) => {
      if (error !== null || socket === null) oncreate?.(error ?? codedError('no connection', 'ERR_HTTP_NO_CONNECTION'));
      else oncreate?.(null, socket);
    });
    return undefined;
  }
}

/** Header fields by lower-case name, repeats joined with ", " (Node would drop some repeats, such as a second Age). */
function headerFields(raw: readonly string[]): Record<string, string | undefined> {
  const fields: Record<string, string | undefined> = {};
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = (raw[index] ?? '').toLowerCase();
    const value = raw[index + 1] ?? '';
    const before = fields[name];
    fields[name] = before === undefined ? value : `${before}, ${value}`;
  }
  return fields;
}

export class DirectConnection implements ProbeConnection {
  readonly #agent: ServerAgent;
  readonly #timeoutMs: number;
  readonly #maxHeaderSize: number;
  /** How to fail each probe not yet settled. */
  readonly #pending = new Set<(error: Error) => void>();
  #destroyed: Error | undefined;

  constructor(url: URL, options: ConnectionOptions) {
    const connector = url.protocol === 'https:' ? tlsConnector(options) : tcpConnector(options.timeoutMs);
    this.#agent = new ServerAgent(connector, { hostname: url.hostname, protocol: url.protocol, port: defaultPort(url) });
    this.#timeoutMs = options.timeoutMs;
    this.#maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  }

  httpProxy(): undefined {
    return undefined;
  }

  async destroy(reason?: Error): Promise<void> {
    this.#destroyed ??= reason ?? codedError('connection closed', 'ERR_HTTP_CONNECTION_CLOSED');
    this.#agent.closed = this.#destroyed;
    // At once, whether a probe waits for its answer, its connection or its turn.
    for (const fail of this.#pending) fail(this.#destroyed);
    this.#agent.destroy();
  }

  send(url: URL, clock: Clock, method: ProbeMethod): Promise<Answer> {
    if (this.#destroyed) return Promise.reject(this.#destroyed);
    return new Promise((resolve, reject) => {
      let sendTime: Timespec | undefined;
      let firstByteTime: Timespec | undefined;
      let socket: Socket | undefined;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const onData = (chunk: Buffer): void => {
        // The parser skips CR and LF before a status line: they are no answer yet.
        if (firstByteTime === undefined && chunk.some((byte) => byte !== 0x0d && byte !== 0x0a)) firstByteTime = clock.realtime();
      };
      const outgoing = request({
        agent: this.#agent,
        method,
        host: hostOf(url.hostname),
        port: defaultPort(url),
        path: `${url.pathname}${url.search}`,
        headers: { host: url.host, ...requestHeaders(method) },
        maxHeaderSize: this.#maxHeaderSize,
      });
      const finish = (): void => {
        settled = true;
        clearTimeout(timer);
        socket?.off('data', onData);
        this.#pending.delete(fail);
      };
      const fail = (error: Error): void => {
        if (settled) return;
        finish();
        reject(error);
        outgoing.destroy(error);
      };
      this.#pending.add(fail);
      const limit = (what: string, code: string): NodeJS.Timeout =>
        setTimeout(() => fail(codedError(`${what} took longer than ${this.#timeoutMs} ms`, code)), this.#timeoutMs);
      // Connecting has its own limit (the connector's); the head's starts with the send.
      outgoing.once('socket', (assigned: Socket) => {
        socket = assigned;
        sendTime = clock.realtime();
        timer = limit('the response head', 'ERR_HTTP_HEADERS_TIMEOUT');
        assigned.prependListener('data', onData);
      });
      // Node emits it for every 1xx but 101, 100 Continue included.
      outgoing.on('information', () => {
        firstByteTime = undefined;
      });
      // A 101 (an upgrade never asked for) ends in 'close' alone; a settled probe ignores it.
      outgoing.once('close', () => fail(new ProbeFault('protocol', 'the connection closed without a final answer (such as an unasked-for 101 Switching Protocols)', 'ERR_HTTP_NO_RESPONSE')));
      outgoing.once('response', (incoming: IncomingMessage) => {
        const headTime = clock.realtime();
        const receiveTime = firstByteTime ?? headTime;
        socket?.off('data', onData);
        clearTimeout(timer);
        timer = limit('the response body', 'ERR_HTTP_BODY_TIMEOUT');
        const headers = headerFields(incoming.rawHeaders);
        const statusCode = incoming.statusCode ?? 0;
        // 'socket' comes before any answer; kept as a guard: without a send time there is no upper bound.
        if (sendTime === undefined) {
          fail(codedError('response came without a send time: no upper bound', 'ERR_HTTP_NO_SEND_TIME'));
          return;
        }
        const answer: Answer = {
          response: { sendTime, receiveTime, headTime, statusCode, date: headers.date, age: headers.age },
          statusCode,
          statusText: incoming.statusMessage ?? '',
          headers,
        };
        let bodyBytes = 0;
        incoming.on('data', (chunk: Buffer) => {
          bodyBytes += chunk.length;
          if (bodyBytes > MAX_BODY) fail(bodyTooLarge());
        });
        incoming.on('error', fail);
        incoming.once('end', () => {
          if (settled) return;
          finish();
          resolve(answer);
        });
      });
      outgoing.on('error', fail);
      outgoing.end();
    });
  }
}
