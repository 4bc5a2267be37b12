// Certificate validity as a bound on theta. A server taken over TLS vouches for its time
// only while its certificate chain is valid: the time the servers agree on must lie inside
// the validity window of every chain that contributed. A chain whose window excludes the
// agreed time is a server failing verification at the true time: it is rejected and the
// selection made again without it, the electorate unchanged (it still counts as a server
// that answered, against the majority). With the local clock wrong this is the only time
// check the certificates get (tls.ts).
import { publishable, type Electorate, type Interval } from './interval.js';
import type { CertificateWindow } from './tls.js';

/** Seconds since the epoch in which every window holds (undefined: no window; empty: low > high). */
export function commonWindow(windows: readonly CertificateWindow[]): Interval | undefined {
  if (windows.length === 0) return undefined;
  return {
    low: Math.max(...windows.map((window) => Date.parse(window.notBefore) / 1000)),
    high: Math.min(...windows.map((window) => Date.parse(window.notAfter) / 1000)),
  };
}

/**
 * The thetas (server time - steady local time) for which the true time stays inside
 * `window` from steady instant `start` to `end` (seconds since the epoch): the certificates
 * then hold over the whole measurement, the handshakes included.
 */
export function thetaWithin(window: Interval, start: number, end: number): Interval {
  return { low: window.low - start, high: window.high - end };
}

export interface ValidCandidate {
  interval: Interval;
  /** Where theta must lie for its certificates to be valid (undefined: plain http, no bound). */
  validity: Interval | undefined;
}

export interface MajoritySelection {
  /** Positions (in the input) of the servers that agree. */
  truechimers: number[];
}

export interface ValidSelection<S extends MajoritySelection> {
  /** The majority (positions into the candidates), or undefined. */
  selection: S | undefined;
  /** Candidates rejected because their validity excludes the agreed interval, each with it. */
  outside: Map<number, Interval>;
}

/**
 * `select` (a majority selection over intervals) such that every truechimer's validity
 * contains the agreed interval (`agreed` of the selection: what would be published):
 * truechimers whose validity does not are dropped and the selection runs again, and the
 * majority must still be publishable among all of `electorate` (a server dropped so still
 * counts against it: dropping an honest clock behind an expired certificate must not hand
 * the majority to the rest).
 */
export function selectWithinValidity<S extends MajoritySelection>(
  candidates: readonly ValidCandidate[],
  select: (intervals: Interval[]) => S | undefined,
  agreed: (selection: S) => Interval,
  electorate: Electorate = { servers: candidates.length, pending: 0 },
): ValidSelection<S> {
  const outside = new Map<number, Interval>();
  for (;;) {
    const remaining = candidates.flatMap((_, position) => (outside.has(position) ? [] : [position]));
    const found = select(remaining.map((position) => (candidates[position] as ValidCandidate).interval));
    if (found === undefined || !publishable(found.truechimers.length, candidates.length, electorate))
      return { selection: undefined, outside };
    const truechimers = found.truechimers.map((index) => remaining[index] as number);
    const region = agreed(found);
    const excluded = truechimers.filter((position) => {
      const { validity } = candidates[position] as ValidCandidate;
      return validity !== undefined && !(validity.low <= region.low && region.high <= validity.high);
    });
    if (excluded.length === 0) return { selection: { ...found, truechimers }, outside };
    for (const position of excluded) outside.set(position, region);
  }
}
