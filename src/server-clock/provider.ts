// A time provider (a JSON endpoint, an exchange's server-time call, anything that answers
// with the server's ms): each call timed on the raw-steady clock, a before and b after.
// The server read T somewhere in between, and its true time then lay in [T, T + resolution),
// so phi = server - u lies in [T - b, T + resolution - a]. A round's calls are combined by
// Marzullo's majority like HTTP probes: a stale or wrong answer is a falseticker.
import type { Clock } from '../clock.js';
import { select, type Interval } from '../sources/http/interval.js';
import { codedError, withCode } from '../errors.js';
import { diffSeconds, fromSeconds } from '../time.js';

/** Returns the server's time in ms since the epoch; `signal` aborts when the call is given up. */
export type TimeProvider = (signal: AbortSignal) => number | Promise<number>;

// Turning ms into seconds near 1.8e9 s rounds to ~0.24 µs: both ends widened by more.
const ROUNDING = 1e-6;

export interface ProviderRound {
  /** The region the majority of answered calls shares, or undefined. */
  interval: Interval | undefined;
  answered: number;
  failed: number;
  falsetickers: number;
  /** The last failure, for the error event. */
  lastError: unknown;
}

export interface ProviderRoundOptions {
  clock: Clock;
  calls: number;
  /** The provider's resolution, seconds (1 ms for a ms timestamp). */
  resolution: number;
  /** Per call, seconds. */
  timeout: number;
  /** Stop early once the calls' common region is this narrow (half-width, seconds). */
  target: number;
  signal: AbortSignal;
}

function timeoutError(seconds: number): Error {
  return codedError(`the provider did not answer within ${seconds} s`, 'ETIMEDOUT');
}

/** One call: phi's interval, or a rejection (the provider's error, a bad value, a timeout). */
export async function callProvider(
  provider: TimeProvider,
  options: Omit<ProviderRoundOptions, 'calls' | 'target'>,
): Promise<Interval> {
  const { clock, resolution, timeout, signal } = options;
  const call = new AbortController();
  const stop = (): void => call.abort(signal.reason);
  signal.addEventListener('abort', stop, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    const before = clock.realtime();
    const value = await Promise.race([
      Promise.resolve().then(() => provider(call.signal)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          call.abort(timeoutError(timeout));
          reject(call.signal.reason);
        }, timeout * 1000);
        call.signal.addEventListener('abort', () => reject(call.signal.reason), { once: true });
      }),
    ]);
    const after = clock.realtime();
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      const received = typeof value === 'number' ? value : typeof value;
      throw withCode(
        new TypeError(`The provider must return ms since the epoch (a finite number > 0). Received ${received}`),
        'ERR_INVALID_RETURN_VALUE',
      );
    }
    const stamp = fromSeconds(value / 1000);
    return { low: diffSeconds(stamp, after) - ROUNDING, high: diffSeconds(stamp, before) + resolution + ROUNDING };
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', stop);
  }
}

/** Up to `calls` calls one after another, combined by majority. */
export async function providerRound(provider: TimeProvider, options: ProviderRoundOptions): Promise<ProviderRound> {
  const intervals: Interval[] = [];
  let failed = 0;
  let lastError: unknown;
  for (let index = 0; index < options.calls; index += 1) {
    options.signal.throwIfAborted();
    try {
      intervals.push(await callProvider(provider, options));
    } catch (error) {
      options.signal.throwIfAborted();
      failed += 1;
      lastError = error;
      continue;
    }
    const common = select(intervals);
    // Three agreeing answers at least: one alone cannot be told from a falseticker.
    if (
      common &&
      intervals.length >= 3 &&
      common.truechimers.length === intervals.length &&
      (common.bound.high - common.bound.low) / 2 <= options.target
    )
      break;
  }
  const selection = select(intervals);
  return {
    interval: selection?.bound,
    answered: intervals.length,
    failed,
    falsetickers: selection ? intervals.length - selection.truechimers.length : 0,
    lastError,
  };
}
