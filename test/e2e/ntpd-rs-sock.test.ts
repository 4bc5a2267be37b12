// htntp and ntpd-rs, which is not packaged for Debian 12: the datagrams are checked with a
// reader that parses them exactly as ntpd-rs's ntpd/src/daemon/sock_source.rs
// (pendulum-project/ntpd-rs, deserialize_sample) does, written from that file; the config
// `htntp config --daemon ntpd-rs` prints is parsed as TOML and held to the keys ntpd-rs's
// SockSourceConfig (ntpd/src/daemon/config/ntp_source.rs) accepts.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeE2e } from '../helpers/tools.js';
import { flags, makeTempDir, startHtntp, type TempDir } from '../helpers/process.js';
import { cleanupSockReaders, startSockReader, type SockReader } from '../helpers/sock-reader.js';
import { ChronySock, sockLayout } from '../../src/sock.js';
import { realtime } from '../../src/clock.js';
import { addSeconds } from '../../src/time.js';

/** What sock_source.rs takes from a datagram, or why it drops it. */
type NtpdRsSample =
  { ok: true; offset: number; leap: 'none' | 'insert' | 'delete' | 'unknown' } | { ok: false; reason: string };

const SOCK_MAGIC = 0x534f434b;
const SOCK_SAMPLE_SIZE = 40;

/**
 * As sock_source.rs: exactly 40 bytes, little-endian; tv (0..16) is not read (ntpd-rs
 * stamps the arrival itself); offset f64 at 16, pulse i32 at 24 (must be 0), leap i32 at
 * 28 (0/1/2, anything else unknown), 4 bytes skipped, magic i32 at 36.
 */
function ntpdRsDeserialize(bytes: Buffer): NtpdRsSample {
  if (bytes.length !== SOCK_SAMPLE_SIZE) return { ok: false, reason: `Invalid size ${bytes.length}` };
  const offset = bytes.readDoubleLE(16);
  const pulse = bytes.readInt32LE(24);
  const leap = bytes.readInt32LE(28);
  const magic = bytes.readInt32LE(36);
  if (magic !== SOCK_MAGIC) return { ok: false, reason: `Invalid magic ${magic}` };
  if (pulse !== 0) return { ok: false, reason: `Invalid pulse ${pulse}` };
  return { ok: true, offset, leap: leap === 0 ? 'none' : leap === 1 ? 'insert' : leap === 2 ? 'delete' : 'unknown' };
}

type TomlValue = string | number | boolean;
interface TomlTable {
  [key: string]: TomlValue | TomlTable[] | TomlTable;
}

/**
 * The TOML that ntp.toml snippets use: comments, [table], [[array of tables]], and
 * `key = value` with basic strings, numbers and booleans. Anything else throws.
 */
function parseTomlSubset(text: string): TomlTable {
  const root: TomlTable = {};
  let current = root;
  const value = (raw: string): TomlValue => {
    const basic = /^"((?:[^"\\]|\\.)*)"$/.exec(raw);
    if (basic !== null) return (basic[1] ?? '').replace(/\\(["\\])/g, '$1');
    if (raw === 'true' || raw === 'false') return raw === 'true';
    if (/^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+)$/.test(raw)) return Number(raw);
    throw new Error(`not a TOML value this parser knows: ${raw}`);
  };
  for (const [index, line] of text.split('\n').entries()) {
    const stripped = line.replace(/\s+#.*$|^#.*$/, '').trim();
    if (stripped === '') continue;
    const arrayTable = /^\[\[\s*([A-Za-z0-9_-]+)\s*\]\]$/.exec(stripped);
    const table = /^\[\s*([A-Za-z0-9_-]+)\s*\]$/.exec(stripped);
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(stripped);
    if (arrayTable !== null) {
      const name = arrayTable[1] ?? '';
      const list = (root[name] ??= []) as TomlTable[];
      current = {};
      list.push(current);
    } else if (table !== null) {
      const name = table[1] ?? '';
      if (name in root) throw new Error(`line ${index + 1}: table [${name}] defined twice`);
      current = {};
      root[name] = current;
    } else if (pair !== null) {
      const key = pair[1] ?? '';
      if (key in current) throw new Error(`line ${index + 1}: key ${key} defined twice`);
      current[key] = value((pair[2] ?? '').trim());
    } else {
      throw new Error(`line ${index + 1}: not TOML: ${line}`);
    }
  }
  return root;
}

/** The keys ntpd-rs's SockSourceConfig deserializer takes (any other key is an error). */
const SOCK_SOURCE_KEYS = new Set(['mode', 'path', 'precision', 'measurement_noise_estimate']);

let temp: TempDir;
beforeAll(async () => {
  temp = await makeTempDir('ntpd-rs');
});
afterAll(async () => {
  cleanupSockReaders();
  await temp.remove();
});

async function configOutput(args: string[]): Promise<string> {
  const cli = startHtntp(['config', '--daemon', 'ntpd-rs', ...args]);
  const exit = await cli.exited;
  expect(exit.code, cli.output()).toBe(0);
  return cli.stdoutLines.join('\n');
}

/** A SOCK reader any user may send to, at `name` in the test directory. */
async function readerIn(name: string): Promise<{ path: string; reader: SockReader }> {
  const path = join(temp.path, name);
  return { path, reader: await startSockReader(path, 0o666) };
}

describeE2e('htntp for ntpd-rs: its [[source]] and the datagrams its sock source accepts', ['cc'], () => {
  it('ntpd-rs config: TOML of sock source keys; --only-source adds minimum-agreeing-sources = 1', async () => {
    const path = join(temp.path, 'ntpd-rs.sock');
    const toml = parseTomlSubset(await configOutput(['--sock', path, '--source', 'http']));
    const sources = toml.source as TomlTable[];
    expect(sources).toHaveLength(1);
    const [source] = sources;
    expect(source).toMatchObject({ mode: 'sock', path });
    expect(Object.keys(source ?? {}).filter((key) => !SOCK_SOURCE_KEYS.has(key))).toEqual([]);
    // 1-sigma seconds, > 0 (ntpd-rs refuses 0): the HTTP preset's precision plus half its delay.
    expect(source?.precision).toBeCloseTo(2 ** -10 + 0.1, 12);
    expect(toml.synchronization).toBeUndefined();
    const alone = parseTomlSubset(await configOutput(['--sock', path, '--source', 'gps', '--only-source']));
    expect(alone.synchronization).toEqual({ 'minimum-agreeing-sources': 1 });
    expect((alone.source as TomlTable[])[0]?.precision).toBe(2 ** -5);
  });

  it('config --daemon ntpd-rs without --sock is refused: ntpd-rs reads no segment', async () => {
    const cli = startHtntp(['config', '--daemon', 'ntpd-rs', '--source', 'http']);
    expect((await cli.exited).code).not.toBe(0);
    expect(cli.output()).toMatch(/ntpd-rs reads SOCK only: give --sock PATH/);
  });

  it(
    "htntp fixed --sock: every datagram passes sock_source.rs's checks with the offset sent",
    { timeout: 30_000 },
    async () => {
      const { path, reader } = await readerIn('fixed.sock');
      const feeder = startHtntp(['fixed', '--offset', '-0.25', '--interval', '0.2', '--sock', path, '--no-leapfile']);
      try {
        const datagrams = await reader.waitForDatagrams(3, 15_000);
        for (const datagram of datagrams) {
          const sample = ntpdRsDeserialize(Buffer.from(datagram.hex, 'hex'));
          expect(sample, datagram.hex).toMatchObject({ ok: true, leap: 'none' });
          // offset is taken against tv, the receive time truncated to µs: up to 1 µs more.
          if (sample.ok) expect(sample.offset - -0.25).toBeGreaterThanOrEqual(0);
          if (sample.ok) expect(sample.offset - -0.25).toBeLessThan(1e-6);
        }
        // The same reader drops what it must: a 32-byte (32-bit time_t) datagram, a wrong magic, a pulse.
        const first = Buffer.from(datagrams[0]?.hex ?? '', 'hex');
        expect(ntpdRsDeserialize(first.subarray(8))).toEqual({ ok: false, reason: 'Invalid size 32' });
        const badMagic = Buffer.from(first);
        badMagic.writeInt32LE(1, 36);
        expect(ntpdRsDeserialize(badMagic)).toEqual({ ok: false, reason: 'Invalid magic 1' });
        const pulse = Buffer.from(first);
        pulse.writeInt32LE(1, 24);
        expect(ntpdRsDeserialize(pulse)).toEqual({ ok: false, reason: 'Invalid pulse 1' });
      } finally {
        await feeder.stop('SIGTERM', 3_000);
        await reader.stop();
      }
    },
  );

  it(
    '--sock-layout 40 sends the 64-bit time_t layout on any platform; here it is byte for byte the native one',
    { timeout: 30_000 },
    async () => {
      const { path, reader } = await readerIn('layout.sock');
      const native = new ChronySock(path);
      const wide = new ChronySock(path, '40');
      try {
        expect([native.connect(), wide.connect()]).toEqual([undefined, undefined]);
        const receive = realtime();
        expect(native.send(addSeconds(receive, 0.125), receive)).toBeUndefined();
        expect(wide.send(addSeconds(receive, 0.125), receive)).toBeUndefined();
        const [first, second] = await reader.waitForDatagrams(2);
        const wideBytes = Buffer.from(second?.hex ?? '', 'hex');
        expect(wideBytes.length).toBe(40);
        const wideSample = ntpdRsDeserialize(wideBytes);
        expect(wideSample).toMatchObject({ ok: true, leap: 'none' });
        // clock - tv, tv truncated to µs: exactly 0.125 s plus the truncated nanoseconds.
        expect(wideSample.ok && wideSample.offset).toBeCloseTo(0.125 + (receive.nsec % 1000) / 1e9, 12);
        expect(wideBytes.readBigInt64LE(0)).toBe(BigInt(receive.sec));
        expect(wideBytes.readBigInt64LE(8)).toBe(BigInt(Math.floor(receive.nsec / 1000)));
        // Where time_t is 64-bit the two layouts are one; elsewhere only the wide one is 40 bytes.
        if (sockLayout.size === 40) expect(second?.hex).toBe(first?.hex);
        else expect(first?.bytes).toBe(sockLayout.size);
        expect(() => new ChronySock(path, '32' as never)).toThrow(RangeError);
      } finally {
        native.close();
        wide.close();
        await reader.stop();
      }
    },
  );

  it(
    'htntp fixed --sock-layout 40: the feeder sends 40-byte datagrams ntpd-rs accepts',
    { timeout: 30_000 },
    async () => {
      const { path, reader } = await readerIn('fixed-wide.sock');
      const options = { offset: '0.5', interval: '0.2', sock: path, 'sock-layout': '40', 'no-leapfile': true };
      const feeder = startHtntp(['fixed', ...flags(options)]);
      try {
        const datagrams = await reader.waitForDatagrams(2, 15_000);
        for (const datagram of datagrams) {
          expect(datagram.bytes).toBe(40);
          const sample = ntpdRsDeserialize(Buffer.from(datagram.hex, 'hex'));
          expect(sample).toMatchObject({ ok: true, leap: 'none' });
          expect(sample.ok && sample.offset - 0.5).toBeLessThan(1e-6); // tv truncated to µs: up to 1 µs more
          expect(sample.ok && sample.offset - 0.5).toBeGreaterThanOrEqual(0);
        }
      } finally {
        await feeder.stop('SIGTERM', 3_000);
        await reader.stop();
      }
    },
  );
});
