// Compiles the small C programs of the tests (test/e2e/c/) and of the benchmark (bench/c/)
// with the system compiler (or a cross compiler), against test/e2e/c/shm_time.h: the reference struct, declared
// independently of native/.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { repoRoot } from './process.js';

export { repoRoot };
export const testCDir = join(repoRoot, 'test', 'e2e', 'c');

export interface CBuild {
  dir: string;
  /** Compiles `source` (a path, or a file name inside test/e2e/c/) and returns the binary's path. */
  compile(source: string, extraFlags?: string[]): string;
  /** Removes the build folder. */
  cleanup(): void;
}

/** `compiler`: the system's cc, or a cross compiler (aarch64-linux-gnu-gcc) for another platform. */
export function cBuild(prefix = 'htntp-c-', compiler = 'cc'): CBuild {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    compile(source, extraFlags = []) {
      const path = source.includes('/') ? source : join(testCDir, source);
      const output = join(dir, basename(path, '.c'));
      execFileSync(
        compiler,
        [
          '-std=c11',
          '-D_GNU_SOURCE',
          '-O2',
          '-Wall',
          '-Wextra',
          '-Werror',
          '-I',
          testCDir,
          ...extraFlags,
          path,
          '-o',
          output,
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      return output;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
