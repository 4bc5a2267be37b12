// What a test starts, stopped after it whatever happened.
import { afterEach } from 'vitest';

export type Cleanup = () => unknown;

/**
 * A list a test pushes its cleanups to; after each test they run last first (a daemon before the feeder it reads,
 * the feeder before its segment), then `finally` if given.
 */
export function cleanupsAfterEach(finally_?: () => void): Cleanup[] {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    finally_?.();
  });
  return cleanups;
}
