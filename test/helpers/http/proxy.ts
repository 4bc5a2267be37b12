// A minimal HTTP proxy on 127.0.0.1: CONNECT tunnels (https and http) and absolute-form
// requests, optionally demanding Basic credentials. Counts what it saw.
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface TestProxy {
  uri: string;
  port: number;
  connects: number;
  /** The CONNECT targets asked for, as sent (`host:port`, or a host alone). */
  targets: readonly string[];
  forwards: number;
  close(): Promise<void>;
}

export async function startProxy(options: { credentials?: string } = {}): Promise<TestProxy> {
  const expected =
    options.credentials === undefined ? undefined : `Basic ${Buffer.from(options.credentials).toString('base64')}`;
  const sockets = new Set<Socket>();
  const state = { connects: 0, forwards: 0, targets: [] as string[] };
  const allowed = (request: IncomingMessage): boolean =>
    expected === undefined || request.headers['proxy-authorization'] === expected;
  const server = createServer((request, response) => {
    if (!allowed(request)) {
      response.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    state.forwards += 1;
    const target = new URL(request.url ?? '/');
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: request.method,
        headers: request.headers,
      },
      (reply) => {
        response.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(response);
      },
    );
    upstream.on('error', () => response.writeHead(502).end());
    request.pipe(upstream);
  });
  server.on('connect', (request: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('error', () => {});
    if (!allowed(request)) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n');
      return;
    }
    state.connects += 1;
    state.targets.push(request.url ?? '');
    const [host = '', port = '443'] = (request.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    uri: `127.0.0.1:${port}`,
    port,
    get connects() {
      return state.connects;
    },
    get forwards() {
      return state.forwards;
    },
    targets: state.targets,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
