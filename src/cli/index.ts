// Commander wiring only: each command's logic lives in commands/<name>.ts.
import { Command } from 'commander';
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
// pulls in: undici, serialport, prom-client, the addon) is imported only when that
// command runs, which keeps a feeder's memory to what it uses.
const COMMANDS: Record<string, CommandEntry> = {
  fixed: { load: async () => (await import('./commands/fixed.js')).registerFixed, needsAddon: true },
  config: { load: async () => (await import('./commands/config.js')).registerConfig, needsAddon: false },
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
    .description('Feed ntpd, ntpsec or chrony (SHM refclock, driver 28) from HTTP Date headers, GPS NMEA or a fixed offset')
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

export async function main(argv: string[] = process.argv): Promise<void> {
  await (await buildProgram(argv)).parseAsync(argv);
}
