// A loopback TCP server speaking just enough HTTP/1.1 to misbehave on purpose: each request
// head (up to its blank line) is handed, in arrival order, to the test's `answer`, which
// writes whatever bytes it likes and records when.
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../../../src/clock.js';
import type { Timespec } from '../../../src/time.js';

export interface RawRequest {
  /** Which request this is, and on which connection (both counted from 0 in arrival order). */
  index: number;
  connection: number;
  method: string;
  head: string;
  /** When the request's last byte arrived. */
  arrived: Timespec;
  /** Set by the answer: when it began writing its timed part, and when it finished. */
  answerStart?: Timespec;
  answerEnd?: Timespec;
}

export interface RawServer {
  url: URL;
  requests: RawRequest[];
  /** The server's side of every connection accepted, in order. */
  connections: Socket[];
  /** Resolves once the server's socket of connection `index` has closed. */
  closed: (index: number) => Promise<void>;
  close: () => Promise<void>;
}

export async function rawServer(answer: (socket: Socket, request: RawRequest) => Promise<void>): Promise<RawServer> {
  const requests: RawRequest[] = [];
  const connections: Socket[] = [];
  const closings: Promise<void>[] = [];
  const server: Server = createServer((socket) => {
    const connection = connections.length;
    connections.push(socket);
    closings.push(new Promise((resolve) => socket.on('close', () => resolve())));
    socket.setNoDelay(true);
    socket.on('error', () => {});
    let buffered = '';
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      const arrived = systemClock.realtime();
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const request = { index: requests.length, connection, method: head.split(' ')[0] ?? '', head, arrived };
        requests.push(request);
        queue = queue
          .then(() => answer(socket, request))
          .catch(() => {
            socket.destroy();
          });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: new URL(`http://127.0.0.1:${port}/`),
    requests,
    connections,
    closed: async (index) => {
      while (closings[index] === undefined) await sleep(5);
      await closings[index];
    },
    close: async () => {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
