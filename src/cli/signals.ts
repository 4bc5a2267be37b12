// SIGINT/SIGTERM as an AbortSignal: long-running commands stop through it. A second
// signal falls through to Node's default (immediate exit) for an operator who insists.
import type { Logger } from '../log.js';

/** After a stop the process exits by itself once its handles close; this is the bound. */
export const EXIT_GRACE_MS = 600;

export function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return controller.signal;
}

/**
 * Called once the segment is released after a signal: if something (a source's socket
 * or serial port) still holds the event loop after EXIT_GRACE_MS, exit anyway with the
 * current exit code (0 after a clean stop).
 */
export function exitAfterStop(logger: Logger): void {
  setTimeout(() => {
    logger.debug('exit forced', { graceMs: EXIT_GRACE_MS });
    process.exit();
  }, EXIT_GRACE_MS).unref();
}
