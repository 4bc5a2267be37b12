// Time servers in a child process (serve.ts beside it), so the measuring process's event
// loop is not theirs: for the benchmarks and for tests that run a client as a process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TimeServerConfig } from './servers.js';

const serveScript = fileURLToPath(new URL('./serve.ts', import.meta.url));

export interface Served {
  urls: string[];
  child: ChildProcess;
}

export async function serve(configs: TimeServerConfig[]): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', serveScript, JSON.stringify(configs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('servers did not start in 15 s')), 15_000)),
  ]);
  return { urls: JSON.parse(first) as string[], child };
}

export async function stop(served: Served): Promise<void> {
  served.child.stdin?.end();
  await new Promise((resolve) => served.child.once('exit', resolve));
}
