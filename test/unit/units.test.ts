// The SHM unit registry: every test unit unique, an integer in 100..255, and no test file
// naming a unit number of its own.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/process.js';
import { units } from '../helpers/units.js';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : testFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('test/helpers/units.ts', () => {
  it('gives every name its own unit, an integer in 100..255', () => {
    const entries = Object.entries(units);
    expect(entries.length).toBeGreaterThan(0);
    for (const [name, unit] of entries) {
      expect(Number.isInteger(unit), name).toBe(true);
      expect(unit, name).toBeGreaterThanOrEqual(100);
      expect(unit, name).toBeLessThanOrEqual(255);
    }
    const byUnit = new Map<number, string[]>();
    for (const [name, unit] of entries) byUnit.set(unit, [...(byUnit.get(unit) ?? []), name]);
    const shared = [...byUnit]
      .filter(([, names]) => names.length > 1)
      .map(([unit, names]) => `${unit}: ${names.join(', ')}`);
    expect(shared).toEqual([]);
  });

  it('is where the tests take their units: no test file assigns a unit number of its own', () => {
    // `const UNIT = 123`, `const UNITS = [123, …]` or `{ name: 123, … }`, `new NtpdShm({ unit: 123 })`.
    const own =
      /\bconst\s+UNITS?(?:_[A-Z_]+)?\s*=\s*(?:\d|\[\s*\d|\{\s*\w+:\s*\d)|(?:new NtpdShm\(|feed\([^)]*)\{\s*unit:\s*\d/;
    const offenders = testFiles(join(repoRoot, 'test'))
      .filter((path) => !path.endsWith(join('helpers', 'units.ts')) && !path.endsWith('units.test.ts'))
      .filter((path) => own.test(readFileSync(path, 'utf8')));
    expect(offenders.map((path) => path.slice(repoRoot.length + 1))).toEqual([]);
  });
});
