// probe() on the client (client.ts), straight to a loopback server and through it as an
// HTTP proxy (absolute form): the send and receive stamps against what the server did and
// when, keep-alive, the GET fallback, the body limit and destroy().
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { formatHttpDate } from '../../../src/sources/http/date.js';
import { createConnection, probe, type ProbeConnection } from '../../../src/sources/http/probe.js';
import { diffSeconds, type Timespec } from '../../../src/time.js';
import { rawServer } from '../../helpers/http/raw-server.js';

const ns = (time: Timespec): bigint => BigInt(time.sec) * 1_000_000_000n + BigInt(time.nsec);

const head = (status: string, fields: string[] = []): string =>
  [
    `HTTP/1.1 ${status}`,
    `date: ${formatHttpDate(systemClock.realtime().sec)}`,
    'content-length: 0',
    ...fields,
    '',
    '',
  ].join('\r\n');

/** Through a proxy the raw server is the proxy, answering absolute-form requests for a server it never reaches. */
const PROXIED_SERVER = new URL('http://time.test:8080/');

describe.each([
  { route: 'straight to the server', proxied: false },
  { route: 'through a proxy (absolute form)', proxied: true },
])('the client, $route', ({ proxied }) => {
  const closers: (() => Promise<void>)[] = [];
  const connections: ProbeConnection[] = [];
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((connection) => connection.destroy()));
    await Promise.all(closers.splice(0).map((close) => close()));
  });
  /** The URL probed on a raw server's connection. */
  const at = (server: { url: URL }): URL => (proxied ? PROXIED_SERVER : server.url);
  const open = (server: { url: URL }, timeoutMs = 10_000): ProbeConnection => {
    const connection = createConnection(at(server), { timeoutMs, ...(proxied ? { proxy: server.url.host } : {}) });
    connections.push(connection);
    return connection;
  };

  it('stamps send before the request arrives, receive after the answer left, on one keep-alive socket', async () => {
    const server = await rawServer(async (socket, request) => {
      request.answerStart = systemClock.realtime();
      socket.write(head('200 OK'));
    });
    closers.push(server.close);
    const connection = open(server);
    const responses = [];
    for (let index = 0; index < 30; index += 1) responses.push(await probe(connection, at(server), systemClock));
    expect(server.connections.length).toBe(1);
    expect(server.requests).toHaveLength(30);
    responses.forEach((response, index) => {
      const request = server.requests[index];
      expect(request?.method).toBe('HEAD');
      expect(ns(response.sendTime)).toBeLessThanOrEqual(ns(request?.arrived ?? { sec: 0, nsec: 0 }));
      expect(ns(response.receiveTime)).toBeGreaterThanOrEqual(ns(request?.answerStart ?? { sec: Infinity, nsec: 0 }));
      expect(ns(response.headTime)).toBeGreaterThanOrEqual(ns(response.receiveTime));
      expect(response.date).toMatch(/GMT$/);
    });
    expect(server.requests[0]?.head).toMatch(
      proxied ? /^HEAD http:\/\/time\.test:8080\/ HTTP\/1\.1\r\n/ : /^HEAD \/ HTTP\/1\.1\r\n/,
    );
    expect(server.requests[0]?.head.toLowerCase()).toContain('cache-control: no-cache');
  });

  it('takes the receive time at the first byte: a head sent in two parts is timed by its first', async () => {
    const server = await rawServer(async (socket, request) => {
      const whole = head('200 OK');
      request.answerStart = systemClock.realtime();
      socket.write(whole.slice(0, 9));
      await sleep(300);
      request.answerEnd = systemClock.realtime();
      socket.write(whole.slice(9));
    });
    closers.push(server.close);
    const connection = open(server);
    for (let index = 0; index < 3; index += 1) {
      const response = await probe(connection, at(server), systemClock);
      const request = server.requests[index];
      expect(ns(response.receiveTime)).toBeGreaterThanOrEqual(ns(request?.answerStart ?? { sec: Infinity, nsec: 0 }));
      // The first part came before the second was written; the head was parsed after it.
      expect(ns(response.receiveTime)).toBeLessThan(ns(request?.answerEnd ?? { sec: 0, nsec: 0 }));
      expect(ns(response.headTime)).toBeGreaterThanOrEqual(ns(request?.answerEnd ?? { sec: Infinity, nsec: 0 }));
    }
  });

  it('times the final answer after an informational one (103, and an unasked-for 100)', async () => {
    for (const informational of ['103 Early Hints\r\nlink: </a.css>; rel=preload', '100 Continue']) {
      const server = await rawServer(async (socket, request) => {
        socket.write(`HTTP/1.1 ${informational}\r\n\r\n`);
        await sleep(200);
        request.answerStart = systemClock.realtime();
        socket.write(head('200 OK'));
      });
      closers.push(server.close);
      const response = await probe(open(server), at(server), systemClock);
      expect(response.statusCode).toBe(200);
      expect(ns(response.receiveTime)).toBeGreaterThanOrEqual(
        ns(server.requests[0]?.answerStart ?? { sec: Infinity, nsec: 0 }),
      );
    }
  });

  it('does not take stray CR LF before an answer for its first byte', async () => {
    const server = await rawServer(async (socket, request) => {
      socket.write('\r\n');
      await sleep(200);
      request.answerStart = systemClock.realtime();
      socket.write(head('200 OK'));
    });
    closers.push(server.close);
    const response = await probe(open(server), at(server), systemClock);
    expect(ns(response.receiveTime)).toBeGreaterThanOrEqual(
      ns(server.requests[0]?.answerStart ?? { sec: Infinity, nsec: 0 }),
    );
  });

  it("takes a whole HEAD answer whose connection closes with a body after it (a proxy's error page)", async () => {
    const server = await rawServer(async (socket, request) => {
      const status = request.method === 'HEAD' && server.requests.length > 1 ? '500 Internal Server Error' : '200 OK';
      socket.end(
        head(status, ['connection: close']).replace('content-length: 0', 'content-length: 24') +
          '<html>no such host</html>',
      );
    });
    closers.push(server.close);
    const connection = open(server);
    expect((await probe(connection, at(server), systemClock)).statusCode).toBe(200);
    // Its 500 is judged as such: the proxy's fault through a proxy, the server's own straight to it.
    await expect(probe(connection, at(server), systemClock)).rejects.toMatchObject({
      kind: proxied ? 'proxy' : 'status',
      message: expect.stringMatching(/500/),
    });
  });

  it('fails at once on a 101 never asked for, as a protocol fault', async () => {
    const server = await rawServer(async (socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
    });
    closers.push(server.close);
    await expect(probe(open(server), at(server), systemClock)).rejects.toMatchObject({
      kind: 'protocol',
      code: 'ERR_HTTP_NO_RESPONSE',
    });
  });

  it('asks a server that refuses HEAD with GET for one byte, from then on', async () => {
    const server = await rawServer(async (socket, request) => {
      socket.write(
        request.method === 'HEAD'
          ? head('405 Method Not Allowed')
          : head('206 Partial Content').replace('content-length: 0', 'content-length: 1') + 'x',
      );
    });
    closers.push(server.close);
    const connection = open(server);
    expect((await probe(connection, at(server), systemClock)).statusCode).toBe(206);
    expect((await probe(connection, at(server), systemClock)).statusCode).toBe(206);
    expect(server.requests.map((request) => request.method)).toEqual(['HEAD', 'GET', 'GET']);
    expect(server.requests[1]?.head.toLowerCase()).toContain('range: bytes=0-0');
  });

  it('ends a probe whose body runs past the limit, and joins repeated fields', async () => {
    const server = await rawServer(async (socket, request) => {
      if (request.method === 'HEAD') socket.write(head('405 Method Not Allowed'));
      else
        socket.write(
          head('200 OK', ['transfer-encoding: chunked']).replace('content-length: 0\r\n', '') +
            `10000\r\n${'x'.repeat(0x10000)}\r\n10000\r\n${'x'.repeat(0x10000)}\r\n0\r\n\r\n`,
        );
    });
    closers.push(server.close);
    await expect(probe(open(server), at(server), systemClock)).rejects.toMatchObject({
      code: 'ERR_HTTP_BODY_TOO_LARGE',
      kind: 'protocol',
    });
    const twice = await rawServer(async (socket) => {
      socket.write(head('200 OK', ['age: 1', 'age: 2']));
    });
    closers.push(twice.close);
    expect((await probe(open(twice), at(twice), systemClock)).age).toBe('1, 2');
  });

  it('fails a pending probe with the reason it was destroyed for; a head that never comes times out', async () => {
    const silent = await rawServer(() => new Promise(() => {}));
    closers.push(silent.close);
    const connection = open(silent);
    const pending = probe(connection, at(silent), systemClock);
    while (silent.requests.length === 0) await sleep(10);
    const reason = Object.assign(new Error('deadline'), { code: 'ERR_TEST_DEADLINE' });
    await connection.destroy(reason);
    await expect(pending).rejects.toBe(reason);
    await expect(probe(connection, at(silent), systemClock)).rejects.toBe(reason);
    // A probe waiting for its answer and one queued behind it (one connection): both fail
    // with the reason, and the queued one opens no connection of its own.
    const shared = open(silent);
    const requestsBefore = silent.requests.length;
    const answering = probe(shared, at(silent), systemClock);
    const queued = probe(shared, at(silent), systemClock);
    while (silent.requests.length === requestsBefore) await sleep(10);
    const connectionsBefore = silent.connections.length;
    await shared.destroy(reason);
    await expect(answering).rejects.toBe(reason);
    await expect(queued).rejects.toBe(reason);
    await sleep(100);
    expect(silent.connections.length).toBe(connectionsBefore);
    const quick = open(silent, 300);
    const started = systemClock.realtime();
    await expect(probe(quick, at(silent), systemClock)).rejects.toMatchObject({ code: 'ERR_HTTP_HEADERS_TIMEOUT' });
    expect(diffSeconds(systemClock.realtime(), started)).toBeGreaterThanOrEqual(0.29);
  });
});
