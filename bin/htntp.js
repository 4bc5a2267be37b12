#!/usr/bin/env node
import { main } from '../dist/cli/index.js';

main(process.argv).catch((error) => {
  process.stderr.write(`htntp: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = typeof error?.exitCode === 'number' ? error.exitCode : 1;
});
