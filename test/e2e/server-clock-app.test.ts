// ServerClock as an app uses it: the signing example run as a process (passes with
// clock.now(), fails with Date.now()), and the built package imported by name from a
// plain ESM app and type-checked from a strict TypeScript one.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir, repoRoot, runCommand, type TempDir } from '../helpers/process.js';

const temps: TempDir[] = [];
afterEach(async () => {
  for (const temp of temps.splice(0)) await temp.remove();
});

/** A directory whose node_modules holds this package as `htntp` (the built dist/), as after npm install. */
async function appDir(): Promise<string> {
  const temp = await makeTempDir('server-clock-app');
  temps.push(temp);
  await mkdir(join(temp.path, 'node_modules'));
  await symlink(repoRoot, join(temp.path, 'node_modules', 'htntp'), 'dir');
  await writeFile(join(temp.path, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  return temp.path;
}

describe('ServerClock in an app', () => {
  it('sign-request.mjs: a request signed with clock.now() passes, one with Date.now() is rejected', async () => {
    const output = await runCommand(process.execPath, [join(repoRoot, 'examples', 'sign-request.mjs')], {
      timeoutMs: 30_000,
    });
    expect(output).toMatch(/signed with clock\.now\(\): 200 ok/);
    expect(output).toMatch(/signed with Date\.now\(\): {2}401 timestamp outside the 100 ms window \(-2\d{3} ms\)/);
  });

  it('a plain ESM app imports it by name and reads a provider-backed clock', async () => {
    const dir = await appDir();
    const app = join(dir, 'app.mjs');
    await writeFile(
      app,
      [
        "import { ServerClock } from 'htntp';",
        'const clock = new ServerClock({ provider: async () => Date.now() + 60_000 });',
        'await clock.ready();',
        'const { earliest, latest } = clock.bounds();',
        'console.log(JSON.stringify({ offset: clock.offset, skew: clock.now() - Date.now(), width: latest ' +
          '- earliest }));',
        'clock.close();',
      ].join('\n'),
    );
    const result = JSON.parse(await runCommand(process.execPath, [app], { timeoutMs: 20_000 })) as {
      offset: number;
      skew: number;
      width: number;
    };
    expect(result.offset).toBeCloseTo(60, 1);
    expect(Math.abs(result.skew - 60_000)).toBeLessThan(50);
    expect(result.width).toBeLessThan(100);
  });

  it('a strict TypeScript app type-checks against the shipped declarations, and misuse does not', async () => {
    const dir = await appDir();
    const good = join(dir, 'good.ts');
    const bad = join(dir, 'bad.ts');
    await writeFile(
      good,
      [
        "import { ServerClock, type ServerClockUpdate } from 'htntp';",
        "const clock = new ServerClock({ servers: ['https://api.example.com/'], refresh: 60, target: 0.002 });",
        "clock.on('update', (update: ServerClockUpdate) => console.log(update.offset, update.earliest, " +
          'update.latest));',
        "clock.on('step', ({ step }) => console.log(step.toFixed(3)));",
        "clock.on('error', (error) => console.log(error.message));",
        'export async function stamp(): Promise<number> {',
        '  await clock.ready();',
        '  const { earliest, latest }: { earliest: number; latest: number } = clock.bounds();',
        '  const offset: number = clock.offset;',
        '  return clock.now() + 0 * (latest - earliest + offset);',
        '}',
      ].join('\n'),
    );
    await writeFile(
      bad,
      [
        "import { ServerClock } from 'htntp';",
        "const clock = new ServerClock({ servers: ['x'] });",
        'const text: string = clock.now();',
        "clock.on('tick', () => {});",
        'export { text };',
      ].join('\n'),
    );
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--typeRoots',
      join(repoRoot, 'node_modules', '@types'),
      '--types',
      'node',
    ];
    await runCommand(process.execPath, [tsc, ...flags, good], { timeoutMs: 60_000 });
    const failed = await runCommand(process.execPath, [tsc, ...flags, bad], { timeoutMs: 60_000 }).then(
      () => '',
      (error: Error) => error.message,
    );
    expect(failed).toMatch(/bad\.ts\(3,7\): error TS2322/);
    expect(failed).toMatch(/bad\.ts\(4,18\): error TS2345/);
  }, 120_000);
});
