// Builds the addon's prebuilt binaries into prebuilds/<platform>-<arch>/ with prebuildify:
// one N-API binary per platform serves every Node version >= 20. Linux x64, arm64 and
// armv7 (hard-float), cross-compiled with Debian's gcc toolchains where the host is another
// architecture. The build runs in a scratch copy of binding.gyp and native/, so the
// developer's build/ is left alone.
// Usage: tsx scripts/prebuild.ts [x64|arm64|arm ...]   (default: all three)
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  openSync,
  readSync,
  closeSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { arch as hostArch, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLATFORMS, type Platform } from './platforms.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message: string): never {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
}

/** Node's own headers (include/node) beside the running binary: no download. */
function nodeDir(): string {
  const dir = resolve(dirname(process.execPath), '..');
  if (!existsSync(join(dir, 'include', 'node', 'node_api.h'))) {
    fail(
      `no Node headers in ${dir}/include/node: install the Node package with its headers (NodeSource's ` +
        `nodejs has them)`,
    );
  }
  return dir;
}

function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

function elfHeader(file: string): { elfClass: number; machine: number } {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) fail(`${file} is not an ELF file`);
  return { elfClass: header[4] ?? 0, machine: header.readUInt16LE(18) };
}

function build(target: Platform, scratch: string, headers: string): void {
  const native = target.arch === hostArch();
  const prefix = native ? '' : target.crossPrefix;
  for (const tool of [`${prefix}gcc`, `${prefix}g++`, `${prefix}strip`]) {
    if (!onPath(tool))
      fail(`${tool} is missing: apt-get install g++-${target.crossPrefix.slice(0, -1).replaceAll('_', '-')}`);
  }
  const args = [
    join(root, 'node_modules', 'prebuildify', 'bin.js'),
    '--napi',
    '--strip',
    `--strip-bin=${prefix}strip`,
    `--target=node@${process.versions.node}`,
    `--arch=${target.arch}`,
    '--platform=linux',
    '--tag-libc',
    ...(target.armv === undefined ? [] : [`--tag-armv=${target.armv}`]),
    `--out=${root}`,
    `--cwd=${scratch}`,
  ];
  const env = {
    ...process.env,
    CC: `${prefix}gcc`,
    CXX: `${prefix}g++`,
    LINK: `${prefix}g++`,
    AR: `${prefix}ar`,
    npm_config_nodedir: headers,
  };
  process.stdout.write(`prebuild: linux-${target.arch} with ${prefix}g++\n`);
  // node-gyp's progress only when it fails: a pack prints the file list, not the compiler's.
  const result = spawnSync(process.execPath, args, {
    cwd: scratch,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout}${result.stderr}`);
    fail(`prebuildify for linux-${target.arch} exited with ${result.status ?? result.signal}`);
  }
  const folder = join(root, 'prebuilds', `linux-${target.arch}`);
  const names = readdirSync(folder);
  if (names.length !== 1 || `prebuilds/linux-${target.arch}/${names[0]}` !== target.prebuild)
    fail(`${folder} holds ${names.join(', ')}, not ${target.prebuild}`);
  const elf = elfHeader(join(root, target.prebuild));
  if (elf.machine !== target.elf.machine || elf.elfClass !== target.elf.class) {
    fail(`${target.prebuild} is ELF machine ${elf.machine} class ${elf.elfClass}, not linux-${target.arch}`);
  }
  process.stdout.write(`prebuild: ${target.prebuild}\n`);
}

function main(): void {
  const wanted = process.argv.slice(2);
  const targets =
    wanted.length === 0
      ? PLATFORMS
      : wanted.map(
          (arch) => PLATFORMS.find((target) => target.arch === arch) ?? fail(`unknown arch ${arch} (x64, arm64, arm)`),
        );
  const headers = nodeDir();
  const scratch = mkdtempSync(join(tmpdir(), 'htntp-prebuild-'));
  try {
    // binding.gyp as it is, with every source it names under native/.
    cpSync(join(root, 'binding.gyp'), join(scratch, 'binding.gyp'));
    cpSync(join(root, 'native'), join(scratch, 'native'), { recursive: true });
    cpSync(join(root, 'package.json'), join(scratch, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'));
    for (const target of targets) {
      rmSync(join(root, 'prebuilds', `linux-${target.arch}`), { recursive: true, force: true });
      build(target, scratch, headers);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main();
