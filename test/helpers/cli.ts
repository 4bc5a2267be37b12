// The built CLI run to completion within a test.
import { expect } from 'vitest';
import { startHtntp } from './process.js';

/** Runs the built CLI, expects exit 0 (its output as the message), and gives its non-empty stdout lines. */
export async function htntpLines(args: readonly string[]): Promise<string[]> {
  const cli = startHtntp(args);
  const exit = await cli.exited;
  expect(exit.code, cli.output()).toBe(0);
  return cli.stdoutLines.filter((line) => line !== '');
}
