// Child processes for tests: output kept line by line, waits on lines and exit (events,
// not sleeps), a bounded stop, and a last-resort kill when the test worker exits.
import { spawn, execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const execFileAsync = promisify(execFile);

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The real CLI entry, as users run it (needs `npm run build`; `npm test` does it first). */
export const htntpBin = join(repoRoot, 'bin', 'htntp.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every complete line so far, in order. */
  readonly stdoutLines: string[];
  readonly stderrLines: string[];
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** The exit, once it happened. */
  exit(): Exit | undefined;
  /** Resolves with the first line (past or future) matching; rejects on timeout or exit. */
  waitForLine(pattern: RegExp, options?: { stream?: 'stdout' | 'stderr'; timeoutMs?: number }): Promise<string>;
  /** Sends `signal` (default SIGTERM), waits up to `timeoutMs`, then SIGKILL. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** stdout + stderr so far, for failure messages. */
  output(): string;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLeftovers(): void {
  for (const child of running) child.kill('SIGKILL');
}

export interface StartOptions extends Pick<SpawnOptions, 'cwd' | 'env'> {
  /** Output decoding; latin1 keeps every byte (ntpshmmon prints the unit as a raw byte). */
  encoding?: BufferEncoding;
}

export function startProcess(command: string, args: readonly string[], options: StartOptions = {}): RunningProcess {
  const { encoding = 'utf8', ...spawnOptions } = options;
  const child = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
  if (!exitHookInstalled) {
    process.once('exit', killLeftovers);
    exitHookInstalled = true;
  }
  running.add(child);
  const lines = { stdout: [] as string[], stderr: [] as string[] };
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of listeners) listener();
  };
  for (const stream of ['stdout', 'stderr'] as const) {
    let partial = '';
    const source = child[stream];
    source?.setEncoding(encoding);
    source?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines[stream].push(...parts);
      notify();
    });
    source?.on('end', () => {
      if (partial !== '') lines[stream].push(partial);
      partial = '';
      notify();
    });
  }
  let exitState: Exit | undefined;
  const exited = new Promise<Exit>((resolveExit) => {
    const finish = (exit: Exit): void => {
      if (exitState) return;
      exitState = exit;
      running.delete(child);
      resolveExit(exit);
      notify();
    };
    child.once('error', (error) => {
      lines.stderr.push(`spawn error: ${error.message}`);
      finish({ code: null, signal: null });
    });
    // 'close' (not 'exit'): every line is in by then.
    child.once('close', (code, signal) => finish({ code, signal }));
  });
  const output = (): string =>
    [
      `$ ${command} ${args.join(' ')}`,
      ...lines.stdout.map((line) => `out| ${line}`),
      ...lines.stderr.map((line) => `err| ${line}`),
    ].join('\n');

  const waitForLine: RunningProcess['waitForLine'] = (pattern, lineOptions = {}) => {
    const { stream, timeoutMs = 20_000 } = lineOptions;
    return new Promise<string>((resolveLine, rejectLine) => {
      const find = (): string | undefined => {
        const pool = stream ? lines[stream] : [...lines.stdout, ...lines.stderr];
        return pool.find((line) => pattern.test(line));
      };
      const check = (): void => {
        const line = find();
        if (line !== undefined) {
          done();
          resolveLine(line);
        } else if (exitState) {
          done();
          rejectLine(
            new Error(`process exited (${JSON.stringify(exitState)}) before a line matched ${pattern}\n${output()}`),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        rejectLine(new Error(`no line matched ${pattern} within ${timeoutMs} ms\n${output()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  };

  const stop: RunningProcess['stop'] = async (signal = 'SIGTERM', timeoutMs = 5_000) => {
    if (exitState) return exitState;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolveKill) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolveKill();
      }, timeoutMs);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    return exited;
  };

  return {
    child,
    pid: child.pid ?? -1,
    stdoutLines: lines.stdout,
    stderrLines: lines.stderr,
    exited,
    exit: () => exitState,
    waitForLine,
    stop,
    output,
  };
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export async function runCommand(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const { timeoutMs = 20_000, env } = options;
  try {
    const { stdout } = await execFileAsync(command, [...args], {
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      ...(env ? { env } : {}),
    });
    return stdout;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${command} ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}${failed.stderr ?? ''}`,
      { cause: error },
    );
  }
}

/** Starts the built CLI (`node bin/htntp.js ...`). */
export function startHtntp(args: readonly string[], options: StartOptions = {}): RunningProcess {
  return startProcess(process.execPath, [htntpBin, ...args], options);
}

/** Command-line options in order: `{ unit: 2, noselect: true }` is `--unit 2 --noselect`; false leaves one out. */
export function flags(options: Record<string, string | number | boolean>): string[] {
  return Object.entries(options).flatMap(([name, value]) => {
    if (typeof value === 'boolean') return value ? [`--${name}`] : [];
    return [`--${name}`, `${value}`];
  });
}

/** setpriv's names for a unit's CapabilityBoundingSet: `CAP_SETUID CAP_IPC_OWNER` is `+setuid`, `+ipc_owner`. */
export function setprivCaps(boundingSet: string): string[] {
  return boundingSet
    .split(' ')
    .filter((cap) => cap !== '')
    .map((cap) => `+${cap.replace(/^CAP_/, '').toLowerCase()}`);
}

/**
 * Starts the built CLI confined as a systemd unit confines it: `caps` its whole bounding set, none inheritable,
 * no_new_privs (through util-linux's setpriv at `setpriv`), from the repository root.
 */
export function startConfinedHtntp(
  setpriv: string,
  caps: readonly string[],
  args: readonly string[],
  options: StartOptions = {},
): RunningProcess {
  const confinement = ['--bounding-set', ['-all', ...caps].join(','), '--inh-caps', '-all', '--no-new-privs'];
  return startProcess(setpriv, [...confinement, process.execPath, htntpBin, ...args], { cwd: repoRoot, ...options });
}

export interface TempDir {
  path: string;
  /** A plain function: callers hand it on as a cleanup. */
  remove: () => Promise<void>;
}

/** A private directory under the system temp dir (mode 0700 from mkdtemp). */
export async function makeTempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `htntp-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
