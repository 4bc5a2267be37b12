// Every refclock line the documents show (README, docs/, ntp.conf.example) with the default
// correction is one the generator makes for some source kind, and every `$ htntp config ...`
// example prints exactly what the command prints.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/index.js';
import { REFCLOCK_DAEMONS, SOURCE_KINDS, presetOptions, refclockLines } from '../../src/refclock-config.js';
import { repoRoot } from '../helpers/process.js';

function documents(): string[] {
  const docsDir = join(repoRoot, 'docs');
  const docs = existsSync(docsDir)
    ? readdirSync(docsDir)
        .filter((name) => name.endsWith('.md'))
        .map((name) => join('docs', name))
    : [];
  return ['README.md', 'ntp.conf.example', ...docs];
}

// Lines with the default correction (offset/time1 0.0): what `htntp config --source` prints
// unchanged. Lines with an explicit correction or pairing (--offset, --pps) come from the
// `$ htntp config` examples, checked below.
const LINE = new RegExp(
  [
    String.raw`refclock SHM \d+\S* refid .* offset 0\.0\b.*`,
    String.raw`refclock shm unit \d+ .* time1 0\.0\b.*`,
    String.raw`fudge 127\.127\.28\.\d+ .* time1 0\.0\b.*`,
  ].join('|') + '$',
);

/** Every line the generator makes for `unit`, over source kinds and daemons. */
function generated(unit: number): Set<string> {
  return new Set(
    SOURCE_KINDS.flatMap((source) =>
      REFCLOCK_DAEMONS.flatMap((daemon) => refclockLines(presetOptions(source, { daemon, unit }))),
    ),
  );
}

/** Runs the real command wiring and returns what it printed. */
async function htntpConfig(args: string[]): Promise<string[]> {
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array) => {
    printed.push(String(chunk));
    return true;
  };
  try {
    const argv = ['node', 'htntp', ...args];
    await (await buildProgram(argv)).exitOverride().parseAsync(argv);
  } finally {
    process.stdout.write = write;
  }
  return printed
    .join('')
    .split('\n')
    .filter((line) => line !== '');
}

describe.each(documents())('%s', (document) => {
  const lines = readFileSync(join(repoRoot, document), 'utf8').split('\n');

  it('shows only generated refclock lines', () => {
    const found = lines
      .map((line) => LINE.exec(line.replace(/`.*$/, ''))?.[1]?.trim())
      .filter((line): line is string => line !== undefined);
    for (const line of found) {
      const unit = Number(/(?:SHM |unit |127\.127\.28\.)(\d+)/.exec(line)?.[1]);
      expect(generated(unit), `${document}: ${line}`).toContain(line);
    }
  });

  it('prints what `htntp config` prints for each `$ htntp config` example', async () => {
    for (const [index, line] of lines.entries()) {
      const command = /^\$ htntp (config .*)$/.exec(line)?.[1];
      if (command === undefined) continue;
      const after = lines.slice(index + 1);
      const end = after.findIndex((next) => next.startsWith('$') || next.startsWith('```'));
      const shown = after.slice(0, end === -1 ? after.length : end);
      expect(shown, `${document}: ${command}`).toEqual(await htntpConfig(command.split(' ')));
    }
  });
});
