// The package as a user gets it: `npm pack`'s tarball (prepack cross-compiles the
// prebuilds) installed offline into a fresh project with no compiler on PATH, with its
// install script and without. Then each prebuild in its own platform's official Node
// (arm64 and armv7 under qemu-user): the file node-gyp-build picks, every struct the
// addon shares with C readers against a C program compiled for that platform, and a
// sample the addon writes read back field by field by that platform's C reader.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { crossNodeBinary } from '../../scripts/cross-node.js';
import { PLATFORMS, type Platform } from '../../scripts/platforms.js';
import { keyText } from '../../src/shm.js';
import { cBuild, type CBuild } from '../helpers/cc.js';
import { makeTempDir, repoRoot, startProcess, type TempDir } from '../helpers/process.js';
import { describeE2e, describeIf, findTool, type ToolName } from '../helpers/tools.js';
import { units, type TestUnit } from '../helpers/units.js';

const PLATFORM_UNITS: Record<Platform['arch'], TestUnit> = {
  x64: units.packageX64,
  arm64: units.packageArm64,
  arm: units.packageArm,
};

/** Below 2^31 so that a 32-bit time_t holds it; every field a different value. */
const CLOCK = { sec: 1_900_000_123, nsec: 456_789_012 };
const RECEIVE = { sec: 1_900_000_122, nsec: 987_654_321 };
const PRECISION = -13;
const LEAP = 1;

/**
 * Each struct the addon shares with C readers: the C program (test/c/) printing the
 * platform's layout as JSON, and the addon's own account of it in the same shape.
 */
interface LayoutCheck {
  struct: string;
  program: string;
  fromAddon(addon: AddonLayouts): Record<string, unknown>;
}
interface AddonLayouts {
  layout?: { size: number; timeTSize: number; fields: { name: string; offset: number }[]; dummyOffset: number };
  sockLayout?: { size: number; timevalSize: number; magic: number; offsets: Record<string, number> };
}

const LAYOUT_CHECKS: LayoutCheck[] = [
  {
    struct: 'struct shmTime',
    program: 'layout.c',
    fromAddon: ({ layout }) => ({
      size: layout?.size,
      timeTSize: layout?.timeTSize,
      offsets: {
        ...Object.fromEntries((layout?.fields ?? []).map((field) => [field.name, field.offset])),
        dummy: layout?.dummyOffset,
      },
    }),
  },
  {
    struct: 'struct sock_sample',
    program: 'sock_layout.c',
    fromAddon: ({ sockLayout }) => ({
      size: sockLayout?.size,
      timevalSize: sockLayout?.timevalSize,
      magic: sockLayout?.magic,
      offsets: sockLayout?.offsets,
    }),
  },
];

interface Probe {
  arch: string;
  armv: string | null;
  file: string;
  layouts: AddonLayouts;
  beyond2038: string;
  snapshot: Record<string, number | boolean>;
  trust: { anchors: number; roots: number; ok: boolean; code: string };
}

// Run in the installed project by each platform's Node: the addon through the package's
// own loader, its layouts, then a sample written through the public API.
const PROBE = `
import { createRequire } from 'node:module';
import { dirname, relative } from 'node:path';
import { NtpdShm } from 'htntp';
const require = createRequire(import.meta.url);
const packageDir = dirname(require.resolve('htntp/package.json'));
const file = require('node-gyp-build').resolve(packageDir);
const addon = require(file);
const isLayout = (value) => typeof value === 'object' && value !== null && typeof value.size === 'number';
const layouts = Object.fromEntries(Object.entries(addon).filter(([, value]) => isLayout(value)));
const shm = new NtpdShm({ unit: Number(process.argv[2]), perm: 0o600 });
let beyond2038;
try {
  shm.update({ sec: 2 ** 31, nsec: 0 }, { receiveTime: { sec: 2 ** 31, nsec: 0 } });
  beyond2038 = 'written';
} catch (error) {
  beyond2038 = error.name + ' ' + error.code;
}
shm.update(${JSON.stringify(CLOCK)}, {
  receiveTime: ${JSON.stringify(RECEIVE)},
  precision: ${PRECISION},
  leap: ${LEAP},
});
const snapshot = shm.snapshot();
shm.detach();
// OpenSSL through the process's own libcrypto: a store of Node's roots, and a root judged as a server for another name.
const { rootCertificates } = await import('node:tls');
const { X509Certificate } = await import('node:crypto');
const store = new addon.TrustStore(rootCertificates.join('\\n'));
const now = Math.floor(Date.now() / 1000);
const verdict = store.verify([new X509Certificate(rootCertificates[0]).raw], 'htntp.invalid', now);
const trust = { anchors: store.size, roots: rootCertificates.length, ok: verdict.ok, code: verdict.code };
const armv = process.config.variables.arm_version ?? null;
const where = relative(packageDir, file);
console.log(JSON.stringify({ arch: process.arch, armv, file: where, layouts, beyond2038, snapshot, trust }));
`;

// Run by each platform's Node: one sample to a SOCK socket through the public API.
const SEND = `
import { ChronySock, sockLayout } from 'htntp';
const socket = new ChronySock(process.argv[2]);
const failed = socket.connect() ?? socket.send(${JSON.stringify(CLOCK)}, ${JSON.stringify(RECEIVE)}, ${LEAP});
socket.close();
if (failed) throw failed;
console.log(JSON.stringify({ size: sockLayout.size }));
`;

const packTools: ToolName[] = ['cc', 'aarch64-linux-gnu-g++', 'arm-linux-gnueabihf-g++'];

let temp: TempDir;
let tarball: string;
/** PATH for the installs and the runs: node, npm and sh; no compiler, make or python. */
let bareBin: string;

async function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = startProcess(command, args, { cwd, env: { ...process.env, PATH: bareBin } });
  const timer = setTimeout(() => void child.stop('SIGKILL'), timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return { code: exit.code, stdout: child.stdoutLines.join('\n'), stderr: child.stderrLines.join('\n') };
}

/**
 * A user's project with the tarball as its only dependency, installed by `npm ci
 * --offline`: its lockfile is the repository's, less the development packages, so every
 * dependency comes from npm's cache.
 */
async function installProject(name: string, scripts: boolean): Promise<{ dir: string; output: string }> {
  const dir = join(temp.path, name);
  mkdirSync(dir);
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
  const dependency = `file:${tarball}`;
  const packages: Record<string, unknown> = { '': { name, dependencies: { htntp: dependency } } };
  for (const [key, entry] of Object.entries(lock.packages))
    if (key.startsWith('node_modules/') && !entry.dev && !entry.devOptional) packages[key] = entry;
  packages['node_modules/htntp'] = {
    version: manifest.version,
    resolved: dependency,
    license: manifest.license,
    hasInstallScript: true,
    dependencies: manifest.dependencies,
    bin: manifest.bin,
    engines: manifest.engines,
    os: manifest.os,
  };
  // npm 11.19 runs a dependency's install script only once approved (allowScripts,
  // keyed by the spec for a tarball); older npm runs it unasked.
  const allowScripts = scripts ? { allowScripts: { [dependency]: true } } : {};
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name, private: true, dependencies: { htntp: dependency }, ...allowScripts }),
  );
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ name, lockfileVersion: 3, requires: true, packages }));
  const npm = await run(
    'npm',
    ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts', ...(scripts ? [] : ['--ignore-scripts'])],
    dir,
    120_000,
  );
  expect(npm.code, `${npm.stdout}\n${npm.stderr}`).toBe(0);
  return { dir, output: `${npm.stdout}\n${npm.stderr}` };
}

/**
 * Removes the unit's segment whatever its size: one made by a 32-bit time_t addon is
 * smaller, and a 64-bit process cannot attach to it (EINVAL), so by key.
 */
function removeAnySegment(unit: number): void {
  try {
    execFileSync('ipcrm', ['-M', keyText(unit)], { stdio: 'ignore' });
  } catch {
    // no such segment
  }
}

function emptyFolders(dir: string): string[] {
  const entries = readdirSync(dir);
  const here = entries.length === 0 ? [dir] : [];
  return [
    ...here,
    ...entries
      .map((name) => join(dir, name))
      .filter((path) => statSync(path).isDirectory())
      .flatMap(emptyFolders),
  ];
}

describeE2e('the npm tarball', packTools, () => {
  let withScripts: { dir: string; output: string };
  let withoutScripts: { dir: string; output: string };
  let listing: string[];

  beforeAll(async () => {
    temp = await makeTempDir('package');
    bareBin = join(temp.path, 'bin');
    mkdirSync(bareBin);
    symlinkSync(process.execPath, join(bareBin, 'node'));
    symlinkSync('/bin/sh', join(bareBin, 'sh')); // npm runs scripts with it
    symlinkSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim(), join(bareBin, 'npm'));
    // The pack builds (prepack: the prebuilds; prepare: dist/) with the full PATH, in a
    // copy of the sources: rewriting this checkout's dist/ would pull it from under the
    // tests that run bin/htntp.js meanwhile.
    const source = join(temp.path, 'source');
    mkdirSync(source);
    for (const name of readdirSync(repoRoot)) {
      if (!['node_modules', 'build', 'dist', 'prebuilds', '.git', 'test', 'bench'].includes(name))
        cpSync(join(repoRoot, name), join(source, name), { recursive: true });
    }
    symlinkSync(join(repoRoot, 'node_modules'), join(source, 'node_modules'));
    const packDir = join(temp.path, 'pack');
    mkdirSync(packDir);
    const pack = startProcess('npm', ['pack', '--pack-destination', packDir], { cwd: source });
    const packed = await pack.exited;
    expect(packed.code, pack.output()).toBe(0);
    tarball = join(packDir, readdirSync(packDir).find((name) => name.endsWith('.tgz')) ?? 'none.tgz');
    listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    withScripts = await installProject('with-scripts', true);
    withoutScripts = await installProject('without-scripts', false);
  }, 400_000);

  afterAll(async () => {
    for (const unit of Object.values(PLATFORM_UNITS)) removeAnySegment(unit);
    await temp?.remove();
  });

  it('holds LICENSE, dist/, the three prebuilds and the addon sources; no source maps, .ts sources or tests', () => {
    const files = listing.map((path) => path.replace(/^package\//, ''));
    expect(files).toEqual(
      expect.arrayContaining([
        'LICENSE',
        'package.json',
        'bin/htntp.js',
        'dist/index.js',
        'binding.gyp',
        ...PLATFORMS.map((platform) => platform.prebuild),
      ]),
    );
    expect(
      files.filter(
        (path) =>
          path.endsWith('.map') ||
          /^(src|test|bench|scripts)\//.test(path) ||
          (path.endsWith('.ts') && !path.endsWith('.d.ts')),
      ),
    ).toEqual([]);
    const manifest = JSON.parse(
      execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
    ) as {
      license: string;
      scripts: Record<string, string>;
      dependencies: Record<string, string>;
    };
    expect(manifest.license).toBe('BSD-2-Clause');
    expect(readFileSync(join(repoRoot, 'LICENSE'), 'utf8')).toMatch(/^BSD 2-Clause License/);
    expect(manifest.scripts.install).toBe('node-gyp-build');
    expect(Object.keys(manifest.dependencies)).toEqual(expect.arrayContaining(['node-gyp-build', 'node-addon-api']));
    expect(Object.keys(manifest.dependencies)).not.toContain('node-gyp');
  });

  it('installs with its install script and no compiler on PATH: the prebuild is used, nothing compiled', async () => {
    const installed = join(withScripts.dir, 'node_modules', 'htntp');
    expect(withScripts.output).toMatch(/^> node-gyp-build$/m);
    expect(withScripts.output).not.toMatch(/gyp info/);
    expect(existsSync(join(installed, 'build'))).toBe(false);
    expect(emptyFolders(installed)).toEqual([]);
    const dist = readdirSync(join(installed, 'dist'), { recursive: true, encoding: 'utf8' }).filter((path) =>
      path.endsWith('.js'),
    );
    expect(
      dist.filter((path) => readFileSync(join(installed, 'dist', path), 'utf8').includes('sourceMappingURL')),
    ).toEqual([]);
    const status = await run(
      join(withScripts.dir, 'node_modules', '.bin', 'htntp'),
      ['status', '--unit', String(PLATFORM_UNITS.x64), '--json'],
      withScripts.dir,
      30_000,
    );
    expect(status.stderr).not.toMatch(/addon/);
  });

  it('with no install scripts or addon: --help, --version and config work; the rest say what is missing', async () => {
    const installed = join(withoutScripts.dir, 'node_modules', 'htntp');
    // As on a platform no prebuild covers.
    rmSync(join(installed, 'prebuilds'), { recursive: true });
    const htntp = join(withoutScripts.dir, 'node_modules', '.bin', 'htntp');
    const help = await run(htntp, ['--help'], withoutScripts.dir, 30_000);
    expect([help.code, help.stderr]).toEqual([0, '']);
    expect(help.stdout).toMatch(/Usage: htntp/);
    const version = await run(htntp, ['--version'], withoutScripts.dir, 30_000);
    expect([version.code, version.stdout]).toEqual([
      0,
      (JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string }).version,
    ]);
    const config = await run(
      htntp,
      ['config', '--daemon', 'chrony', '--unit', '2', '--refid', 'HTTP', '--offset', '0'],
      withoutScripts.dir,
      30_000,
    );
    expect([config.code, config.stderr]).toEqual([0, '']);
    expect(config.stdout).toMatch(/^refclock SHM 2/m);
    const sockConfig = await run(
      htntp,
      ['config', '--daemon', 'chrony', '--refid', 'SOCK', '--sock', '/run/htntp.sock'],
      withoutScripts.dir,
      30_000,
    );
    expect([sockConfig.code, sockConfig.stderr]).toEqual([0, '']);
    expect(sockConfig.stdout).toMatch(/^refclock SOCK \/run\/htntp.sock/m);
    const subcommandHelp = await run(htntp, ['fixed', '--help'], withoutScripts.dir, 30_000);
    expect([subcommandHelp.code, subcommandHelp.stderr]).toEqual([0, '']);
    for (const args of [
      ['status', '--unit', String(PLATFORM_UNITS.x64)],
      ['fixed', '--offset', '0', '--unit', String(PLATFORM_UNITS.x64), '--once'],
    ]) {
      const failed = await run(htntp, args, withoutScripts.dir, 30_000);
      expect(failed.code, args[0]).toBe(1);
      expect(failed.stdout).toBe('');
      const lines = failed.stderr.split('\n');
      expect(lines, args[0]).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^htntp: the htntp native addon is missing: .*no prebuilt one for linux-x64.*`npm rebuild htntp`/,
      );
    }
    expect(existsSync(join(installed, 'build'))).toBe(false);
  });

  for (const platform of PLATFORMS) {
    const emulated = platform.emulated;
    const nodeBinary = emulated === undefined ? process.execPath : crossNodeBinary(emulated.nodeSpec);
    const tools: ToolName[] = emulated === undefined ? [] : [emulated.qemu as ToolName];
    const missing = [
      ...tools
        .filter((tool) => findTool(tool) === undefined)
        .map((tool) => `${tool} not found (apt-get install qemu-user-static)`),
      ...(existsSync(nodeBinary) ? [] : [`${nodeBinary} not fetched (npm run cross-node)`]),
    ];
    describeIf(
      `linux-${platform.arch}${platform.armv === undefined ? '' : `v${platform.armv}`} prebuild`,
      'needs its Node and qemu',
      missing.length === 0 ? undefined : missing.join('; '),
      () => {
        let c: CBuild;
        beforeAll(() => {
          c = cBuild(`htntp-c-${platform.arch}-`, emulated === undefined ? 'cc' : `${platform.crossPrefix}gcc`);
        });
        afterAll(() => c?.cleanup());

        /** Runs a binary of this platform (under qemu-user with the cross sysroot where foreign). */
        const runOnPlatform = (
          program: string,
          args: readonly string[],
          cwd: string,
        ): Promise<{ code: number | null; stdout: string; stderr: string }> =>
          emulated === undefined
            ? run(program, args, cwd, 120_000)
            : run(
                findTool(emulated.qemu as ToolName) ?? emulated.qemu,
                ['-L', emulated.sysroot, program, ...args],
                cwd,
                120_000,
              );

        it(
          'loads its prebuild; the layouts match its C compiler; its C reader reads a sample back field by field',
          { timeout: 240_000 },
          async () => {
            const unit = PLATFORM_UNITS[platform.arch];
            removeAnySegment(unit);
            const project = withScripts.dir;
            const probeFile = join(project, `probe-${platform.arch}.mjs`);
            writeFileSync(probeFile, PROBE);
            const probeRun = await runOnPlatform(nodeBinary, [probeFile, String(unit)], project);
            expect(probeRun.code, probeRun.stderr).toBe(0);
            const probe = JSON.parse(probeRun.stdout) as Probe;
            expect([probe.arch, probe.file]).toEqual([platform.arch, platform.prebuild]);
            if (platform.armv !== undefined) expect(probe.armv).toBe(platform.armv);
            // The certificate check's OpenSSL symbols resolve in that platform's Node.
            expect(probe.trust.anchors).toBe(probe.trust.roots);
            expect(probe.trust).toMatchObject({
              ok: false,
              code: expect.stringMatching(/^(HOSTNAME_MISMATCH|INVALID_PURPOSE|INVALID_CA|CERT_HAS_EXPIRED)$/),
            });

            for (const check of LAYOUT_CHECKS) {
              const reference = JSON.parse(
                (await runOnPlatform(c.compile(check.program), [], project)).stdout,
              ) as Record<string, unknown>;
              expect(check.fromAddon(probe.layouts), check.struct).toEqual(reference);
            }
            // Debian 12's armhf keeps a 32-bit time_t: a smaller segment, and a time past
            // 2038 refused there, never truncated.
            const timeTSize = probe.layouts.layout?.timeTSize;
            expect(timeTSize).toBe(platform.elf.class === 1 ? 4 : 8);
            expect(probe.beyond2038).toBe(timeTSize === 4 ? 'RangeError ERR_OUT_OF_RANGE' : 'written');

            const read = await runOnPlatform(c.compile('shm_read.c'), [String(unit)], project);
            expect(read.code, read.stderr).toBe(0);
            const fields = JSON.parse(read.stdout) as Record<string, number>;
            expect(fields).toEqual({
              mode: probe.snapshot.mode,
              count: probe.snapshot.count,
              clockTimeStampSec: CLOCK.sec,
              clockTimeStampUSec: Math.floor(CLOCK.nsec / 1000),
              receiveTimeStampSec: RECEIVE.sec,
              receiveTimeStampUSec: Math.floor(RECEIVE.nsec / 1000),
              leap: LEAP,
              precision: PRECISION,
              nsamples: probe.snapshot.nsamples,
              valid: 1,
              clockTimeStampNSec: CLOCK.nsec,
              receiveTimeStampNSec: RECEIVE.nsec,
            });
            removeAnySegment(unit);
          },
        );

        it(
          "sends a SOCK datagram that its C reader decodes field by field with the platform's struct sock_sample",
          { timeout: 240_000 },
          async () => {
            const project = withScripts.dir;
            const socketPath = join(project, `refclock-${platform.arch}.sock`);
            const reader =
              emulated === undefined
                ? startProcess(c.compile('sock_recv.c'), [socketPath, '666', '1'], { cwd: project })
                : startProcess(
                    findTool(emulated.qemu as ToolName) ?? emulated.qemu,
                    ['-L', emulated.sysroot, c.compile('sock_recv.c'), socketPath, '666', '1'],
                    { cwd: project },
                  );
            try {
              await reader.waitForLine(/^ready$/, { timeoutMs: 60_000 });
              const senderFile = join(project, `send-${platform.arch}.mjs`);
              writeFileSync(senderFile, SEND);
              const sent = await runOnPlatform(nodeBinary, [senderFile, socketPath], project);
              expect(sent.code, sent.stderr).toBe(0);
              const { size } = JSON.parse(sent.stdout) as { size: number };
              const exit = await reader.exited;
              expect(exit.code, reader.output()).toBe(0);
              const datagram = JSON.parse(reader.stdoutLines.find((line) => line.startsWith('{')) ?? '{}') as Record<
                string,
                number
              >;
              expect(datagram).toMatchObject({
                bytes: size,
                sec: RECEIVE.sec,
                usec: Math.floor(RECEIVE.nsec / 1000),
                pulse: 0,
                leap: LEAP,
                pad: 0,
                magic: 0x534f434b,
              });
              // clock - the receive time as sent (whole microseconds)
              expect(datagram.offset).toBeCloseTo(
                CLOCK.sec - RECEIVE.sec + (CLOCK.nsec - Math.floor(RECEIVE.nsec / 1000) * 1000) / 1e9,
                9,
              );
            } finally {
              await reader.stop('SIGTERM', 5_000);
            }
          },
        );
      },
    );
  }
});
