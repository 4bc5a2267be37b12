// Commander wiring only: each command's logic lives in commands/<name>.ts.
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { registerConfig } from './commands/config.js';
import { registerDoctor } from './commands/doctor.js';
import { registerFixed } from './commands/fixed.js';
import { registerGps } from './commands/gps.js';
import { registerHttp } from './commands/http.js';
import { registerStatus } from './commands/status.js';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('htntp')
    .description('Feed ntpd, ntpsec or chrony (SHM refclock, driver 28) from HTTP Date headers, GPS NMEA or a fixed offset')
    .version(version)
    .showHelpAfterError();
  // Commands register themselves here, one line each.
  registerFixed(program);
  registerConfig(program);
  registerDoctor(program);
  registerGps(program);
  registerHttp(program);
  registerStatus(program);
  return program;
}

/** `--json` among the options (before a `--`): then every outcome is one JSON object on stdout. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** A failure as the one JSON object of a --json run: why, Node's code, the exit code. */
export function failureObject(error: unknown, exitCode: number): { reason: string; code: string | null; exitCode: number } {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  return { reason: message.replace(/^error: /, ''), code: typeof code === 'string' ? code : null, exitCode };
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  if (!wantsJson(argv)) {
    await program.parseAsync(argv);
    return;
  }
  // Bad options too: commander throws instead of exiting, and the failure is printed as JSON.
  for (const command of [program, ...program.commands]) command.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError && (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')) {
      process.exitCode = error.exitCode;
      return;
    }
    const exitCode = error instanceof CommanderError ? error.exitCode || 1 : 1;
    // Commander has already said it on stderr; anything else is said here, as without --json.
    if (!(error instanceof CommanderError)) process.stderr.write(`htntp: ${error instanceof Error ? error.message : String(error)}\n`);
    process.stdout.write(`${JSON.stringify(failureObject(error, exitCode))}\n`);
    process.exitCode = exitCode;
  }
}
