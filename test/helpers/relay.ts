// A userspace TCP relay on 127.0.0.1 that delays each direction of a path (the kernel
// here has no netem). Every chunk is held `ms ± jitter` (uniform) but never overtakes the
// one before it, as on a real path. In-process (startRelay) or in a process of its own
// (startRelayProcess: the measuring process's event loop then does not delay its timers):
//   node --import tsx test/helpers/relay.ts '{"targetPort":N,"up":{"ms":20,"jitterMs":5},...}'
// prints the relay's port on one line, and relays until SIGTERM.
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startProcess, type RunningProcess } from './process.js';

export interface LegDelay {
  /** Mean delay, ms. */
  ms: number;
  /** Each chunk gets a uniform extra in [-jitterMs, +jitterMs] (clamped at 0 total). */
  jitterMs?: number;
}

export interface RelayOptions {
  targetPort: number;
  targetHost?: string;
  /** client -> server */
  up?: LegDelay;
  /** server -> client */
  down?: LegDelay;
}

export interface Relay {
  readonly port: number;
  /** `http://127.0.0.1:PORT/` */
  readonly url: string;
  close(): Promise<void>;
}

function checkLeg(name: string, leg: LegDelay | undefined): void {
  if (leg === undefined) return;
  if (!Number.isFinite(leg.ms) || leg.ms < 0)
    throw new RangeError(`${name}.ms must be a finite number >= 0, got ${leg.ms}`);
  if (leg.jitterMs !== undefined && (!Number.isFinite(leg.jitterMs) || leg.jitterMs < 0)) {
    throw new RangeError(`${name}.jitterMs must be a finite number >= 0, got ${leg.jitterMs}`);
  }
}

/** Pipes `from` into `to`, each chunk delayed by the leg, in order; ends `to` after the last chunk. */
function delayedPipe(from: Socket, to: Socket, leg: LegDelay | undefined): void {
  const { ms = 0, jitterMs = 0 } = leg ?? {};
  let lastDue = 0;
  let pending = 0;
  let ended = false;
  const deliver = (action: () => void): void => {
    const due = Math.max(lastDue, performance.now() + Math.max(0, ms + (Math.random() * 2 - 1) * jitterMs));
    lastDue = due;
    pending += 1;
    setTimeout(
      () => {
        pending -= 1;
        if (!to.destroyed) action();
      },
      Math.max(0, due - performance.now()),
    );
  };
  from.on('data', (chunk: Buffer) => deliver(() => to.write(chunk)));
  from.on('end', () => {
    ended = true;
    deliver(() => to.end());
  });
  from.on('close', () => {
    // An abort (not a clean end) passes on at once, after what is still queued.
    if (!ended && pending === 0) to.destroy();
    else if (!ended) deliver(() => to.destroy());
  });
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { targetPort, targetHost = '127.0.0.1', up, down } = options;
  if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535)
    throw new RangeError(`targetPort must be 1..65535, got ${targetPort}`);
  checkLeg('up', up);
  checkLeg('down', down);
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    track(client);
    client.pause();
    const upstream = connect(targetPort, targetHost);
    track(upstream);
    upstream.once('connect', () => {
      delayedPipe(client, upstream, up);
      delayedPipe(upstream, client, down);
      client.resume();
    });
    upstream.once('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RelayProcess extends Relay {
  readonly process: RunningProcess;
}

/** The relay in a child process of its own (for benchmarks: its timers are not the measurer's). */
export async function startRelayProcess(options: RelayOptions): Promise<RelayProcess> {
  const child = startProcess(process.execPath, [
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    JSON.stringify(options),
  ]);
  const line = await child
    .waitForLine(/^\d+$/, { stream: 'stdout', timeoutMs: 20_000 })
    .catch(async (error: unknown) => {
      await child.stop('SIGKILL', 2_000);
      throw new Error(`relay did not start: ${(error as Error).message}`, { cause: error });
    });
  const port = Number(line);
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    process: child,
    close: async () => {
      await child.stop('SIGTERM', 3_000);
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const relay = await startRelay(JSON.parse(process.argv[2] ?? '{}') as RelayOptions);
  process.stdout.write(`${relay.port}\n`);
  process.on('SIGTERM', () => void relay.close().then(() => process.exit(0)));
}
