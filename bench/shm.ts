// `npm run bench`: NtpdShm#update() and #snapshot() calls per second next to gpsd's
// ntp_write loop in C (bench/c/, compiled here with cc -O2), in one run, with the ratio;
// then one SOCK send (ChronySock#send) next to the same send() in C, both to a reader
// draining the socket in another process.
// A feeder writes once a second: the figures show how far above that a plain N-API call
// is. The machine is shared: every loop, C and JavaScript alike, runs ROUNDS times
// interleaved and the best round counts.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { monotonicRaw } from '../src/clock.js';
import { NtpdShm } from '../src/shm.js';
import { ChronySock } from '../src/sock.js';
import { makeTempDir, startProcess } from '../test/helpers/process.js';
import { diffSeconds } from '../src/time.js';
import { cBuild, repoRoot } from '../test/helpers/cc.js';
import { units } from '../test/helpers/units.js';

const UNIT = units.benchShm; // the bench removes its segment when done
const SECONDS = Number(process.env.HTNTP_BENCH_SECONDS ?? 0.5);
const ROUNDS = Number(process.env.HTNTP_BENCH_ROUNDS ?? 3);
const BATCH = 10_000;
/** Sends per timed batch: below Linux's default queue of 10 datagrams (net.unix.max_dgram_qlen). */
const SOCK_BATCH = 8;

/** Runs `body` in batches for about SECONDS; returns nanoseconds per call. */
function measure(body: (iterations: number) => void): number {
  body(BATCH * 10); // warm-up: let V8 optimise
  let calls = 0;
  const start = monotonicRaw();
  let elapsed: number;
  do {
    body(BATCH);
    calls += BATCH;
    elapsed = diffSeconds(monotonicRaw(), start);
  } while (elapsed < SECONDS);
  return (elapsed * 1e9) / calls;
}

interface CResult {
  writes: number;
  writeNs: number;
  reads: number;
  readNs: number;
}

function row(name: string, nsPerCall: number, anchorNs: number): string {
  const perSecond = (1e9 / nsPerCall / 1e6).toFixed(2).padStart(7);
  return (
    `${name.padEnd(44)} ${nsPerCall.toFixed(1).padStart(8)} ns ${perSecond} ` +
    `M/s ${(nsPerCall / anchorNs).toFixed(2).padStart(6)}x`
  );
}

const build = cBuild('htntp-bench-');
const shm = new NtpdShm(UNIT);
const sockDir = await makeTempDir('bench-sock');
const sockPath = join(sockDir.path, 'bench.sock');
const sockLoop = build.compile(join(repoRoot, 'bench', 'c', 'sock_send_loop.c'));
const drain = startProcess(sockLoop, ['drain', sockPath]);
await drain.waitForLine(/^ready$/, { stream: 'stdout' });
const sock = new ChronySock(sockPath);
try {
  const connectError = sock.connect();
  if (connectError !== undefined) throw connectError;
  let sockErrors = 0;
  let sockSends = 0;
  let cSockErrors = 0;
  let cSockSends = 0;
  const loop = build.compile(join(repoRoot, 'bench', 'c', 'gpsd_write_loop.c'));
  const clockSeconds = 1_700_000_000.123456;
  const clockTimespec = { sec: 1_700_000_000, nsec: 123_456_789 };
  const receiveTimespec = { sec: 1_700_000_000, nsec: 23_456_789 };
  let sink = 0;
  const loops: Record<string, () => number> = {
    cWrite: () => {
      const c = JSON.parse(execFileSync(loop, [String(UNIT), String(SECONDS)], { encoding: 'utf8' })) as CResult;
      cReadNs = Math.min(cReadNs, c.readNs / c.reads);
      return c.writeNs / c.writes;
    },
    updateFloat: () =>
      measure((n) => {
        for (let i = 0; i < n; i++) shm.update(clockSeconds);
      }),
    updateTimespec: () =>
      measure((n) => {
        for (let i = 0; i < n; i++) shm.update(clockTimespec, { precision: -20, leap: 0 });
      }),
    updateBoth: () =>
      measure((n) => {
        for (let i = 0; i < n; i++) shm.update(clockTimespec, { receiveTime: receiveTimespec });
      }),
    snapshot: () =>
      measure((n) => {
        for (let i = 0; i < n; i++) sink += shm.snapshot().count;
      }),
    cSockSend: () => {
      const c = JSON.parse(execFileSync(sockLoop, ['send', sockPath, String(SECONDS)], { encoding: 'utf8' })) as {
        sends: number;
        ns: number;
        errors: number;
      };
      cSockSends += c.sends;
      cSockErrors += c.errors;
      return c.ns / c.sends;
    },
    sockSend: () => {
      // As the C loop: timed batches below the queue limit, untimed pauses to drain it.
      const pause = new Int32Array(new SharedArrayBuffer(4));
      const send = (): void => {
        if (sock.send(clockTimespec, receiveTimespec) !== undefined) sockErrors += 1;
      };
      for (let i = 0; i < 1000; i++) {
        send();
        if (i % SOCK_BATCH === 0) Atomics.wait(pause, 0, 0, 0.2);
      }
      let elapsed = 0;
      let sends = 0;
      do {
        const start = monotonicRaw();
        for (let i = 0; i < SOCK_BATCH; i++) send();
        elapsed += diffSeconds(monotonicRaw(), start);
        sends += SOCK_BATCH;
        Atomics.wait(pause, 0, 0, 0.2);
      } while (elapsed < SECONDS);
      sockSends += sends;
      return (elapsed * 1e9) / sends;
    },
  };
  let cReadNs = Infinity;
  const best: Record<string, number> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(loops)) best[name] = Math.min(best[name] ?? Infinity, run());
  }
  if (sink === -1) console.log(sink);
  const ns = (name: string): number => best[name] ?? NaN;
  const cWrite = ns('cWrite');
  const cRead = cReadNs;
  const updateFloat = ns('updateFloat');
  const updateTimespec = ns('updateTimespec');
  const updateBoth = ns('updateBoth');
  const snapshot = ns('snapshot');

  console.log(
    `htntp SHM benchmark: best of ${ROUNDS} rounds of ${SECONDS} s per loop, unit ${UNIT}, node ${process.version}`,
  );
  console.log(`${'loop'.padEnd(44)} ${'per call'.padStart(11)} ${'rate'.padStart(11)} ${'vs C'.padStart(7)}`);
  console.log(row('C gpsd ntp_write + clock_gettime', cWrite, cWrite));
  console.log(row('update(float)  [receive = realtime now]', updateFloat, cWrite));
  console.log(row('update({sec,nsec}, {precision, leap})', updateTimespec, cWrite));
  console.log(row('update({sec,nsec}, {receiveTime})', updateBoth, cWrite));
  console.log(row('C consistent read (count, fence, copy)', cRead, cRead));
  console.log(row('snapshot()', snapshot, cRead));
  const ratio = updateFloat / cWrite;
  const writesPerSecond = (1e9 / updateFloat).toFixed(0);
  console.log(`update() / C write loop: ${ratio.toFixed(2)}x; update(float) writes per second: ${writesPerSecond}`);
  const cSockSend = ns('cSockSend');
  const sockSend = ns('sockSend');
  console.log(row('C send(sock_sample) + gettimeofday', cSockSend, cSockSend));
  console.log(row('ChronySock.send({sec,nsec}, {sec,nsec})', sockSend, cSockSend));
  console.log(row('  same, vs update({sec,nsec}, {receiveTime})', sockSend, updateBoth));
  // A full receive queue makes a send fail fast (EAGAIN): such a loop would flatter itself.
  // The warm-up sends count too; the timed batches stay below the queue limit.
  const lost = (errors: number, sends: number): string => `${((100 * errors) / Math.max(sends, 1)).toFixed(1)} %`;
  console.log(
    `SOCK sends refused by a full queue (EAGAIN): C ${lost(cSockErrors, cSockSends)}, ` +
      `ChronySock ${lost(sockErrors, sockSends)}`,
  );
} finally {
  sock.close();
  await drain.stop('SIGTERM', 2_000);
  await sockDir.remove();
  shm.remove();
  shm.detach();
  build.cleanup();
}
