// The addon must never crash on what JavaScript can do to it: methods called off their
// object or on another class's, objects dropped while attached, the addon loaded in a
// worker thread that ends with a segment attached.
// Run in a child process with --expose-gc, so a crash is an exit code, not a dead runner.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { removeSegment } from '../helpers/segments.js';
import { units } from '../helpers/units.js';

const UNIT = units.nativeLifetime;
const addon = fileURLToPath(new URL('../../build/Release/htntp.node', import.meta.url));
const run = promisify(execFile);

const script = `
const { Worker } = require('node:worker_threads');
const addon = require(${JSON.stringify(addon)});
const out = {};
const attachments = () => addon.statUnit(${UNIT}).nattch;
const settle = () => new Promise((resolve) => setImmediate(resolve));
const errorOf = (action) => {
  try { action(); return 'accepted'; } catch (error) { return error.name + ': ' + error.message; }
};
async function main() {
  // Methods kept after their object is dropped and collected, then called without it.
  let methods = (() => {
    const segment = new addon.Segment(${UNIT}, true, 0o666, false);
    return { snapshot: segment.snapshot, write: segment.write };
  })();
  const attachedBefore = attachments();
  for (let i = 0; i < 50 && attachments() >= attachedBefore; i += 1) { gc(); await settle(); }
  out.droppedSegmentDetached = attachedBefore - attachments();
  out.snapshotAlone = errorOf(() => methods.snapshot());
  out.writeOnPlainObject = errorOf(() => methods.write.call({}, 1700000000, 5, 1700000001, 6, 0, -10));
  const other = new addon.SockClient(false);
  out.writeOnSockClient = errorOf(() => methods.write.call(other, 1700000000, 5, 1700000001, 6, 0, -10));
  // A kept object still works after a collection.
  const kept = new addon.Segment(${UNIT}, true, 0o666, false);
  const countBefore = kept.snapshot().count;
  gc();
  kept.write(1700000000, 5, 1700000001, 6, 0, -10);
  out.countAdvanced = kept.snapshot().count - countBefore;
  // A worker loads the addon, writes and reads a clock, and ends with a segment attached.
  const worker = new Worker(\`
    const { parentPort, workerData } = require('node:worker_threads');
    const addon = require(workerData);
    const segment = new addon.Segment(${UNIT}, false, 0, false);
    segment.writeNow(1700000000, 0, 0, -10);
    parentPort.postMessage(addon.readRealtime().sec > 1700000000);
  \`, { eval: true, workerData: ${JSON.stringify(addon)} });
  // Both listeners before either event: a worker that ends before its message is read emits
  // 'message' and 'exit' in one turn, and an 'exit' listener added after the first would wait forever.
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  out.workerClock = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
  out.workerExit = await exited;
  out.afterWorker = kept.snapshot().count - countBefore;
  out.attachedAfterWorker = attachments();
  out.mainClock = typeof addon.readMonotonicRaw().nsec;
  try { new addon.Segment(${UNIT} + 1000, true, 0o666, false); } catch (error) { out.badUnit = error.code; }
  kept.detach();
  console.log(JSON.stringify(out));
}
main();
`;

describe('addon object lifetimes', () => {
  afterAll(() => removeSegment(UNIT));

  it('methods off their object throw; dropped segments detach; a worker can use the addon and end', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '-e', script], { timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({
      droppedSegmentDetached: 1,
      snapshotAlone: 'TypeError: Illegal invocation',
      writeOnPlainObject: 'TypeError: Illegal invocation',
      writeOnSockClient: 'TypeError: Illegal invocation',
      countAdvanced: 2,
      workerClock: true,
      workerExit: 0,
      afterWorker: 4,
      attachedAfterWorker: 1,
      mainClock: 'number',
      badUnit: 'ERR_OUT_OF_RANGE',
    });
  });
});
