// The addon must never crash on what JavaScript can do to it: hot functions kept after
// their segment object is dropped, slot arrays that could be detached or transferred.
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
const addon = require(${JSON.stringify(addon)});
const io = new Float64Array(new SharedArrayBuffer(14 * 8));
let segment = new addon.Segment(${UNIT}, true, 0o666, false, io);
const { snapshot, write } = segment;
segment = null;
for (let i = 0; i < 10; i += 1) gc();
snapshot();
const countBefore = io[1];
io.set([1700000000, 5, 1700000001, 6, 0, -10]);
write();
snapshot();
const out = { modeAfterGc: io[0], countAdvanced: io[1] - countBefore };
for (const [name, make] of [
  ['plain ArrayBuffer', () => new addon.Segment(${UNIT}, true, 0o666, false, new Float64Array(14))],
  ['too short', () => new addon.Segment(${UNIT}, true, 0o666, false, new Float64Array(new SharedArrayBuffer(8)))],
  ['clock slots in a plain ArrayBuffer', () => addon.useClockSlots(new Float64Array(4))],
]) {
  try { make(); out[name] = 'accepted'; } catch (error) { out[name] = error.code; }
}
try { structuredClone(io.buffer, { transfer: [io.buffer] }); out.transfer = 'transferred'; } catch { out.transfer = 'refused'; }
const kept = new addon.Segment(${UNIT}, false, 0, true, io);
const descriptor = Object.getOwnPropertyDescriptor(kept, 'write');
out.writeReadOnly = descriptor.writable === false && descriptor.configurable === false;
try { new addon.Segment(${UNIT} + 1000, true, 0o666, false, io); } catch (error) { out.badUnit = error.code; }
console.log(JSON.stringify(out));
`;

describe('addon object lifetimes', () => {
  afterAll(() => removeSegment(UNIT));

  it('hot functions outlive a dropped segment object safely; slot arrays must be SharedArrayBuffers', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '-e', script], { timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({
      modeAfterGc: 1,
      countAdvanced: 2,
      'plain ArrayBuffer': 'ERR_INVALID_ARG_TYPE',
      'too short': 'ERR_INVALID_ARG_TYPE',
      'clock slots in a plain ArrayBuffer': 'ERR_INVALID_ARG_TYPE',
      transfer: 'refused',
      writeReadOnly: true,
      badUnit: 'ERR_OUT_OF_RANGE',
    });
  });
});
