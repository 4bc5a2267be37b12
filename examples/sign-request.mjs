// Signing requests for a server that rejects timestamps outside a 100 ms window of its own
// clock, here one running 2.5 s ahead of this machine's (SHIFT_MS to change it). The
// server is started in this process to keep the example self-contained; ServerClock only
// sees its Date headers. Run after `npm run build`: node examples/sign-request.mjs
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { ServerClock } from 'htntp';

const SHIFT_MS = Number(process.env.SHIFT_MS ?? 2500);
const WINDOW_MS = 100;
const SECRET = 'example-secret';

const sign = (timestamp, method, path) =>
  createHmac('sha256', SECRET).update(`${timestamp}\n${method}\n${path}`).digest('hex');

// The server: its clock is Date.now() + SHIFT_MS, and it says so in every Date header.
const serverNow = () => Date.now() + SHIFT_MS;
const server = createServer((request, response) => {
  response.sendDate = false;
  response.setHeader('date', new Date(serverNow()).toUTCString());
  if (request.method === 'HEAD') return response.end();
  const timestamp = Number(request.headers['x-timestamp']);
  const signature = Buffer.from(String(request.headers['x-signature'] ?? ''), 'hex');
  const expected = Buffer.from(sign(timestamp, request.method, request.url), 'hex');
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    return response.writeHead(401).end('bad signature');
  }
  const skew = timestamp - serverNow();
  if (Math.abs(skew) > WINDOW_MS)
    return response.writeHead(401).end(`timestamp outside the ${WINDOW_MS} ms window (${skew} ms)`);
  response.writeHead(200).end(`ok (${skew} ms)`);
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const base = `http://127.0.0.1:${server.address().port}`;

// The client: one ServerClock for the app's lifetime. This server stamps every answer's Date
// (Node's http, as nginx and apache2 do), so no allowance for a Date cache that lags.
const clock = new ServerClock({ servers: [`${base}/`], dateLag: 0 });
await clock.ready();
// A bound wider than the server's window could sign outside it: wait for refinement.
const width = () => clock.bounds().latest - clock.bounds().earliest;
while (width() > WINDOW_MS) await once(clock, 'update', { signal: AbortSignal.timeout(10_000) });
console.log(`ServerClock: offset ${clock.offset.toFixed(3)} s, bounds ±${(width() / 2).toFixed(1)} ms`);

async function signedRequest(timestamp) {
  const path = '/orders';
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'x-timestamp': String(timestamp), 'x-signature': sign(timestamp, 'POST', path) },
  });
  return `${response.status} ${await response.text()}`;
}

// An app talks to its server all the time; here the first fetch() (undici's start-up, the
// connection) would otherwise eat into the window.
await fetch(`${base}/`, { method: 'HEAD' });
const withServerClock = await signedRequest(clock.now());
const withDateNow = await signedRequest(Date.now());
console.log(`signed with clock.now(): ${withServerClock}`);
console.log(`signed with Date.now():  ${withDateNow}`);

clock.close();
server.close();
process.exitCode = withServerClock.startsWith('200') && withDateNow.startsWith('401') ? 0 : 1;
