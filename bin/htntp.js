#!/usr/bin/env node
import { main } from '../dist/cli/index.js';

main(process.argv).catch((/** @type {unknown} */ error) => {
  process.stderr.write(`htntp: ${error instanceof Error ? error.message : String(error)}\n`);
  const exitCode = error instanceof Error && 'exitCode' in error ? error.exitCode : undefined;
  process.exitCode = typeof exitCode === 'number' ? exitCode : 1;
});
