// Commander wiring only: each command's logic lives in commands/<name>.ts.
import { Command } from 'commander';
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

export async function main(argv: string[] = process.argv): Promise<void> {
  await buildProgram().parseAsync(argv);
}
