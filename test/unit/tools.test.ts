// The one list of external programs (test/helpers/tools.ts) is complete: a program the code,
// the tests, the benchmarks or the scripts start by name is declared there, so `.ci/run`'s
// self-check, which reads the list, covers it.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/process.js';
import { toolInventory, toolNames } from '../helpers/tools.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** A call that starts a program, with the program's name as a string literal. */
const STARTED_BY_NAME =
  /\b(?:execFileSync|execFileAsync|execFile|spawnSync|spawn|startProcess|runCommand)\(\s*(['"`])([^'"`$]+)\1/g;

function startedByName(): { program: string; where: string }[] {
  const files = ['src', 'test', 'bench', 'scripts'].flatMap((dir) => sourceFiles(join(repoRoot, dir)));
  return files.flatMap((path) =>
    [...readFileSync(path, 'utf8').matchAll(STARTED_BY_NAME)].map((match) => ({
      program: match[2] ?? '',
      where: relative(repoRoot, path),
    })),
  );
}

describe('test/helpers/tools.ts', () => {
  it('declares every program started by name', () => {
    const started = startedByName();
    // The scan sees the calls it is meant to see (openssl for the test CA, ipcrm in the service tests).
    expect(started).toContainEqual({ program: 'openssl', where: 'test/helpers/http/tls.ts' });
    expect(started.map((call) => call.program)).toContain('ipcrm');
    const declared = new Set<string>(toolNames);
    expect(started.filter((call) => !declared.has(call.program))).toEqual([]);
  });

  it('lists each tool once, with where it is found here', () => {
    expect(new Set(toolNames).size).toBe(toolNames.length);
    const inventory = toolInventory();
    expect(inventory.map((tool) => tool.name)).toEqual([...toolNames]);
    for (const { name, path } of inventory) {
      if (path !== undefined) expect(path, name).toMatch(/^\//);
    }
  });
});
