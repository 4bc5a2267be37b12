// One writer per unit: a feeder holds an abstract Unix socket named after the unit's key
// for as long as it runs, taken before anything is written. The kernel releases it when
// the process dies, however it dies, so there is no stale lock file to clean up. A second
// feeder finds the name taken, asks the holder for its pid and stops before attaching.
// Abstract names are per network namespace: feeders in different network namespaces
// sharing one IPC namespace are not kept apart (htntp doctor still names them).
import { createConnection, createServer, type Server } from 'node:net';
import { codedError } from './errors.js';
import { redactCredentials } from './log.js';
import { keyText } from './shm.js';

export interface UnitLock {
  readonly unit: number;
  release(): Promise<void>;
}

/** The abstract socket name of a unit (Linux: a leading NUL byte). */
export function unitLockName(unit: number): string {
  return `\0htntp-unit-${keyText(unit)}`;
}

/** Asks the holder of `name` who it is: its pid and command, or undefined if it does not say within `timeoutMs`. */
function askHolder(name: string, timeoutMs = 1_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = createConnection({ path: name });
    const done = (value: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
      if (answer.includes('\n')) done(answer.split('\n')[0]);
    });
    socket.on('error', () => done(undefined));
    socket.on('end', () => done(answer === '' ? undefined : answer));
  });
}

/**
 * Takes the unit for this process. Throws ERR_UNIT_LOCKED naming the holder's pid when
 * another feeder has it. `whoami` is what a second feeder is told (default: pid and argv).
 */
export async function lockUnit(
  unit: number,
  whoami = `pid ${process.pid} (htntp ${redactCredentials(process.argv.slice(2).join(' '))})`,
): Promise<UnitLock> {
  const name = unitLockName(unit);
  const server: Server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${whoami}\n`);
  });
  server.unref(); // the lock never keeps the process alive
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: name, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    const holder = (await askHolder(name)) ?? 'another process (it did not say which)';
    throw codedError(
      `unit ${unit} (key ${keyText(unit)}) is already fed by ${holder}: one writer per unit, or readers get a mix ` +
        `of both; stop it or use another --unit`,
      'ERR_UNIT_LOCKED',
      { unit },
    );
  }
  return {
    unit,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
