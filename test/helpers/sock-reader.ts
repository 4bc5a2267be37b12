// A SOCK refclock reader standing in for chronyd where the test needs to see the
// datagrams themselves: test/e2e/c/sock_recv.c binds the path and prints each datagram,
// decoded with the reference struct (test/c/sock_sample.h).
import { cBuild, type CBuild } from './cc.js';
import { startProcess, type RunningProcess } from './process.js';
import { waitFor } from './wait.js';

export interface SockDatagram {
  bytes: number;
  sec: number;
  usec: number;
  offset: number;
  pulse: number;
  leap: number;
  pad: number;
  magic: number;
  /** The datagram's bytes as received, in hex. */
  hex: string;
}

export interface SockReader {
  readonly process: RunningProcess;
  /** Every datagram received so far. */
  datagrams(): SockDatagram[];
  /** The datagrams once there are at least `count`. */
  waitForDatagrams(count: number, timeoutMs?: number): Promise<SockDatagram[]>;
  /** SIGTERM: the reader removes its socket file, as chronyd does. */
  stop(): Promise<void>;
}

let build: CBuild | undefined;
let binary: string | undefined;

/** Compiles the reader once per test file; `cleanupSockReaders` removes the build. */
function readerBinary(): string {
  build ??= cBuild('htntp-sock-');
  binary ??= build.compile('sock_recv.c');
  return binary;
}

export function cleanupSockReaders(): void {
  build?.cleanup();
  build = undefined;
  binary = undefined;
}

/** Binds `path` (mode `mode`) and resolves once the reader is listening. */
export async function startSockReader(path: string, mode = 0o600): Promise<SockReader> {
  const process = startProcess(readerBinary(), [path, mode.toString(8), '0']);
  await process.waitForLine(/^ready$/, { stream: 'stdout', timeoutMs: 5_000 });
  const datagrams = (): SockDatagram[] =>
    process.stdoutLines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as SockDatagram);
  return {
    process,
    datagrams,
    waitForDatagrams: (count, timeoutMs = 5_000) =>
      waitFor(() => (datagrams().length >= count ? datagrams() : undefined), {
        what: `${count} datagrams at ${path}`,
        timeoutMs,
        intervalMs: 10,
      }),
    stop: async () => {
      await process.stop('SIGTERM', 3_000);
    },
  };
}
