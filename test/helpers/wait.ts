// Polling with a deadline: for facts that have no event to wait on (a daemon's report,
// a file that grows). The timeout error says what was awaited and what was last seen.
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** What is awaited, for the timeout message. */
  what: string;
  timeoutMs: number;
  /** Pause between probes (default 200 ms). */
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Calls `probe` until it returns something other than undefined (or throws the same error
 * past the deadline). Probe errors before the deadline count as "not yet".
 */
export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  options: WaitOptions,
): Promise<T> {
  const { what, timeoutMs, intervalMs = 200, signal } = options;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    signal?.throwIfAborted();
    try {
      const value = await probe();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const detail = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`, { cause: lastError });
    }
    await delay(intervalMs, undefined, signal ? { signal } : {});
  }
}
