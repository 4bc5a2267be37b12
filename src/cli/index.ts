// Commander wiring only: each command's logic lives in commands/<name>.ts.
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { nativeAddon } from '../native.js';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

type Register = (program: Command) => void;
interface CommandEntry {
  load: () => Promise<Register>;
  /** Loaded before the action runs, so a missing addon is the one line the command prints. */
  needsAddon: boolean;
}

// Commands register themselves here, one line each. A command's module (and what it
// pulls in: the HTTP client, the serial-port binding, prom-client, the addon) is imported only when that
// command runs, which keeps a feeder's memory to what it uses.
const COMMANDS: Record<string, CommandEntry> = {
  fixed: { load: async () => (await import('./commands/fixed.js')).registerFixed, needsAddon: true },
  config: { load: async () => (await import('./commands/config.js')).registerConfig, needsAddon: false },
  doctor: { load: async () => (await import('./commands/doctor.js')).registerDoctor, needsAddon: true },
  gps: { load: async () => (await import('./commands/gps.js')).registerGps, needsAddon: true },
  http: { load: async () => (await import('./commands/http.js')).registerHttp, needsAddon: true },
  status: { load: async () => (await import('./commands/status.js')).registerStatus, needsAddon: true },
};

/**
 * The program with the command named in argv, or with every command when argv names
 * none (help, --version, or the default command's options alone).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('htntp')
    .description(
      'Feed ntpd, ntpsec or chrony (SHM refclock, driver 28) from HTTP Date headers, GPS NMEA or a fixed offset',
    )
    .version(version)
    .showHelpAfterError();
  const named = argv[2];
  const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
  for (const register of await Promise.all(wanted.map((name) => COMMANDS[name]!.load()))) register(program);
  program.hook('preAction', (_program, command) => {
    if (COMMANDS[command.name()]?.needsAddon) nativeAddon();
  });
  return program;
}

/** `--json` among the options (before a `--`): then every outcome is one JSON object on stdout. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** A failure as the one JSON object of a --json run: why, Node's code, the exit code. */
export function failureObject(
  error: unknown,
  exitCode: number,
): { reason: string; code: string | null; exitCode: number } {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  return { reason: message.replace(/^error: /, ''), code: typeof code === 'string' ? code : null, exitCode };
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = await buildProgram(argv);
  if (!wantsJson(argv)) {
    await program.parseAsync(argv);
    return;
  }
  // Bad options too: commander throws instead of exiting, and the failure is printed as JSON.
  for (const command of [program, ...program.commands]) command.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (
      error instanceof CommanderError &&
      (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
    ) {
      process.exitCode = error.exitCode;
      return;
    }
    const exitCode = error instanceof CommanderError ? error.exitCode || 1 : 1;
    // Commander has already said it on stderr; anything else is said here, as without --json.
    if (!(error instanceof CommanderError))
      process.stderr.write(`htntp: ${error instanceof Error ? error.message : String(error)}\n`);
    process.stdout.write(`${JSON.stringify(failureObject(error, exitCode))}\n`);
    process.exitCode = exitCode;
  }
}
