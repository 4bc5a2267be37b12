// SIGINT/SIGTERM/SIGHUP as an AbortSignal: long-running commands stop through it. A
// second signal falls through to Node's default (immediate exit) for an operator who
// insists. SIGHUP stops like SIGTERM: htntp has no configuration to reload, and a hang-up
// (a closed terminal, or a manager's reload) must never leave a valid sample behind.
import type { Logger } from '../log.js';

/** After a stop the process exits by itself once its handles close; this is the bound. */
export const EXIT_GRACE_MS = 600;

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    for (const name of STOP_SIGNALS) process.off(name, stop);
    controller.abort(new Error(`received ${signal}`));
  };
  for (const name of STOP_SIGNALS) process.on(name, stop);
  return controller.signal;
}

/**
 * Aborts when stdout's reader goes away (EPIPE: `htntp status --watch | head -1`): the
 * output has nowhere to go, which ends a watch normally. Other stdout errors still throw.
 */
export function stdoutClosedSignal(stream: NodeJS.WriteStream = process.stdout): AbortSignal {
  const controller = new AbortController();
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    controller.abort(new Error('stdout closed'));
  });
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
