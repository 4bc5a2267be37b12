// Lines in, samples out: the rules that decide which sentence is stamped and whether
// the receiver's time can be stood behind. No I/O here, so every rule is testable with
// recorded logs and made-up timestamps.
import type { ClockSync } from '../../clock.js';
import type { Sample } from '../../sample.js';
import { addSeconds, diffSeconds, type Timespec } from '../../time.js';
import { DateTracker, RELEASE_FLOOR } from './date.js';
import { parseLine, type ParsedLine, type RejectReason, type TimeOfDay, type TimeSentence } from './nmea.js';

export interface SamplerOptions {
  /** Consecutive good fixes (one per second) before the first sample. */
  minFixes: number;
  /** Seconds added to the sentence time: the receiver's constant latency correction. */
  offset: number;
  /** log2 of the error bound in seconds of each sample. */
  precision: number;
  /** Rollover floor (default RELEASE_FLOOR); tests of old logs pass an older one. */
  floor?: Timespec;
  /**
   * The kernel's word on the local clock (ntp_adjtime), read when a fix disagrees with
   * what came before; null when it cannot be read. Without it the local clock has no vote.
   */
  witness?: () => ClockSync | null;
}

/** Why a time-carrying line produced no sample (counted, logged at debug). */
export type Skip =
  RejectReason | 'overlong' | 'no-time' | 'no-date' | 'bogus-date' | 'invalid-fix' | 'jump' | 'leap-second' | 'timing';

/** Something the operator must hear about (the source logs it at `level`). */
export interface Notice {
  level: 'info' | 'warn';
  event: string;
  fields: Record<string, unknown>;
}

export interface LineResult {
  parsed: ParsedLine;
  /** The absolute time the sentence states (after date/rollover rules), if it has one. */
  time: Timespec | null;
  sample: Sample | null;
  /** Set when the line was refused or broke the run of good fixes. */
  skip: Skip | null;
  /** This line brought the good-fix count to minFixes: publishing starts. */
  acquired: boolean;
  notices: Notice[];
}

// How far the sentence clock and the arrival clock (monotonic raw) may disagree between
// two fixes. More than this is buffered or replayed data, not a receiver talking live.
const TIMING_TOLERANCE_SECONDS = 0.5;
// A fix continues the accepted timeline when its time advanced as much as the raw
// monotonic clock did since the last accepted fix, within a second plus 1000 ppm of the
// elapsed time (raw crystals are within ±100 ppm; the rest covers long outages).
const JUMP_TOLERANCE_SECONDS = 1;
const JUMP_TOLERANCE_RATE = 1e-3;
// A jump candidate needs at least two fixes: one fix is consistent with nothing.
const MIN_CANDIDATE_RUN = 2;
// A candidate that a synchronised local clock contradicts, while it vouched for the
// accepted timeline, needs this many consistent fixes (10 minutes at 1 Hz): a burst of
// bad sentences ends long before; a receiver that really changed still wins.
const OVERRULE_RUN = 600;
// The local clock agrees with a fix when they differ by less than its maxerror plus the
// largest NMEA latency (a sentence can arrive up to a second late) and a margin.
const WITNESS_SLACK_SECONDS = 2;
// Refusals of fixes the receiver calls good are logged at warn once they last this long,
// then again at this period while they go on.
const REFUSED_WARN_SECONDS = 5;
const REFUSED_REPEAT_SECONDS = 60;

/** One second of the receiver's output: the first sentence that carried it is stamped. */
interface SecondRecord {
  label: number;
  firstTime: TimeOfDay;
  receiveTime: Timespec;
  arrival: Timespec;
  /** The first sentence's absolute time, once a date is known. */
  time: Timespec | null;
  fix: boolean | null;
  /** Compared with the accepted timeline (once fix and time are known). */
  judged: boolean;
  /** Counted as a good fix of the accepted timeline. */
  counted: boolean;
  published: boolean;
}

/** A fix as a point of a timeline: its time, when it arrived, and the local clock's offset then. */
interface Anchor {
  time: Timespec;
  arrival: Timespec;
  /** time − receiveTime, seconds: how far the local clock was from it. */
  localOffset: number;
}

interface Candidate {
  last: Anchor;
  fixes: number;
}

interface Refusals {
  since: Timespec;
  counts: Map<Skip, number>;
  warnedAt: Timespec | null;
  receiverTime: Timespec | null;
}

function iso(time: Timespec | null | undefined): string | null {
  if (time === null || time === undefined) return null;
  const date = new Date(time.sec * 1000);
  return Number.isNaN(date.getTime()) ? `${time.sec}` : date.toISOString().replace('.000Z', 'Z');
}

/** The fix advanced from `from` as the raw clock did, within `tolerance` s plus 1000 ppm of the elapsed time. */
function continues(from: Anchor, time: Timespec, arrival: Timespec, tolerance = JUMP_TOLERANCE_SECONDS): boolean {
  const elapsed = diffSeconds(arrival, from.arrival);
  const advanced = diffSeconds(time, from.time);
  return Math.abs(advanced - elapsed) <= tolerance + JUMP_TOLERANCE_RATE * Math.abs(elapsed);
}

export class NmeaSampler {
  readonly #options: SamplerOptions;
  readonly #dates: DateTracker;
  #second: SecondRecord | null = null;
  #goodFixes = 0;
  #lastCounted: { sec: number; arrival: Timespec } | null = null;
  #lastPublishedSec: number | null = null;
  /** The last accepted fix: what a new fix must continue. Kept across reset(). */
  #reference: Anchor | null = null;
  #candidate: Candidate | null = null;
  #refusals: Refusals | null = null;
  readonly #counts = new Map<string, number>();

  constructor(options: SamplerOptions) {
    this.#options = options;
    this.#dates = new DateTracker(options.floor ?? RELEASE_FLOOR);
  }

  get goodFixes(): number {
    return this.#goodFixes;
  }

  /** What happened to every line so far, by name (lines, RMC, samples, jump, ...). */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /**
   * The device went away: what comes next may be another receiver, or old buffered data.
   * The accepted timeline stays (the next receiver must continue it or prove a change),
   * and so does the last published second: no second is published twice.
   */
  reset(): void {
    this.#dates.reset();
    this.#second = null;
    this.#candidate = null;
    this.#breakFixes();
  }

  count(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }

  /**
   * One line (without its line end) that arrived at `receiveTime` (CLOCK_REALTIME) and
   * `arrival` (CLOCK_MONOTONIC_RAW).
   */
  line(text: string, receiveTime: Timespec, arrival: Timespec): LineResult {
    this.count('lines');
    const parsed = parseLine(text);
    const result: LineResult = { parsed, time: null, sample: null, skip: null, acquired: false, notices: [] };
    if (parsed.kind === 'rejected') return this.#skip(result, parsed.reason);
    if (parsed.kind === 'other') {
      this.count('other');
      return result;
    }
    this.count(parsed.type);
    return this.#timeSentence(parsed, receiveTime, arrival, result);
  }

  #skip(result: LineResult, skip: Skip): LineResult {
    this.count(skip);
    result.skip = skip;
    return result;
  }

  #breakFixes(): void {
    this.#goodFixes = 0;
    this.#lastCounted = null;
  }

  #timeSentence(sentence: TimeSentence, receiveTime: Timespec, arrival: Timespec, result: LineResult): LineResult {
    const tod = sentence.time;
    if (tod === null) {
      // No time yet: a receiver without a fix. RMC ",,V" breaks the run like any no-fix.
      if (sentence.fix === false) this.#breakFixes();
      return this.#skip(result, 'no-time');
    }
    const label = tod.hour * 3600 + tod.minute * 60 + tod.second;
    if (sentence.fix === false) {
      // The receiver says its data is not to be trusted: time and date alike.
      if (this.#second?.label === label) this.#second.fix = false;
      this.#breakFixes();
      return this.#skip(result, 'invalid-fix');
    }
    let time: Timespec | null;
    if (sentence.type === 'RMC' || sentence.type === 'ZDA') {
      time = sentence.date === null ? null : this.#dates.dated(sentence.date, tod);
      if (time === null) {
        // An RMC/ZDA with a missing, malformed, default (1980) or out-of-window date: its time is no better.
        this.#breakFixes();
        if (sentence.fix === true) this.#refuse(result, 'bogus-date', arrival, null);
        return this.#skip(result, 'bogus-date');
      }
    } else {
      time = this.#dates.timeOnly(tod);
    }
    result.time = time;

    let second = this.#second;
    if (second === null || second.label !== label) {
      second = {
        label,
        firstTime: tod,
        receiveTime,
        arrival,
        time: null,
        fix: null,
        judged: false,
        counted: false,
        published: false,
      };
      this.#second = second;
    }
    // The first sentence of the second may have come before any date (GGA before RMC).
    if (second.time === null && time !== null) second.time = { sec: time.sec, nsec: second.firstTime.nsec };
    if (sentence.fix === true && second.fix !== false) second.fix = true;

    if (second.fix === true && !second.judged && second.time !== null) {
      second.judged = true;
      this.#judge(second, second.time, result);
    }
    if (second.time === null) {
      if (result.skip === null) this.#skip(result, 'no-date');
      return result;
    }
    result.sample = this.#publish(second, result);
    if (result.sample === null && second.firstTime.second === 60 && result.skip === null)
      this.#skip(result, 'leap-second');
    return result;
  }

  /** A fix with a known time: does it continue the accepted timeline, start or extend a candidate, or win? */
  #judge(second: SecondRecord, time: Timespec, result: LineResult): void {
    const anchor: Anchor = { time, arrival: second.arrival, localOffset: diffSeconds(time, second.receiveTime) };
    const reference = this.#reference;
    if (reference === null) {
      this.#firstFix(anchor, result);
      this.#accept(second, anchor, result);
      return;
    }
    if (continues(reference, time, second.arrival)) {
      this.#candidate = null;
      this.#accept(second, anchor, result);
      return;
    }
    // Not published; it may be the start of a real change of the receiver's time.
    this.#breakFixes();
    const previous = this.#candidate;
    // Fix to fix, a run must keep the live pace: buffered or replayed data comes faster.
    const keepsPace = previous !== null && continues(previous.last, time, second.arrival, TIMING_TOLERANCE_SECONDS);
    const candidate: Candidate = keepsPace ? { last: anchor, fixes: previous.fixes + 1 } : { last: anchor, fixes: 1 };
    this.#candidate = candidate;
    const needed = this.#runNeeded(reference, anchor);
    if (candidate.fixes < needed) {
      this.#skip(result, 'jump');
      this.#refuse(result, 'jump', second.arrival, time, {
        lastAccepted: iso(reference.time),
        candidateFixes: candidate.fixes,
        needed,
      });
      return;
    }
    result.notices.push({
      level: 'warn',
      event: 'receiver time changed',
      fields: {
        from: iso(reference.time),
        to: iso(time),
        jumpSeconds:
          Math.round((diffSeconds(time, reference.time) - diffSeconds(second.arrival, reference.arrival)) * 1000) /
          1000,
        fixes: candidate.fixes,
      },
    });
    this.count('time-changed');
    this.#candidate = null;
    // The candidate's run was consistent fix to fix: it is the run of good fixes now, and
    // seconds of the old timeline no longer say anything about what may be published.
    this.#reference = anchor;
    this.#lastPublishedSec = null;
    second.counted = true;
    this.#goodFixes = candidate.fixes;
    this.#lastCounted = { sec: time.sec, arrival: second.arrival };
    if (this.#goodFixes >= this.#options.minFixes) result.acquired = true;
  }

  /** A fix on the accepted timeline: one more good fix, unless it came at the wrong pace. */
  #accept(second: SecondRecord, anchor: Anchor, result: LineResult): void {
    this.#reference = anchor;
    second.counted = true;
    const last = this.#lastCounted;
    if (
      last !== null &&
      Math.abs(diffSeconds(second.arrival, last.arrival) - (anchor.time.sec - last.sec)) > TIMING_TOLERANCE_SECONDS
    ) {
      this.#breakFixes();
      this.#skip(result, 'timing');
      this.#refuse(result, 'timing', second.arrival, anchor.time);
    }
    this.#goodFixes += 1;
    this.#lastCounted = { sec: anchor.time.sec, arrival: second.arrival };
    if (this.#goodFixes === this.#options.minFixes) result.acquired = true;
  }

  /** The witness: a first fix far from a local clock that a daemon vouches for is worth a warning. */
  #firstFix(anchor: Anchor, result: LineResult): void {
    const sync = this.#readWitness();
    if (sync === null || !sync.synchronised || Math.abs(anchor.localOffset) <= sync.maxError + WITNESS_SLACK_SECONDS)
      return;
    result.notices.push({
      level: 'warn',
      event: 'first fix far from the synchronised local clock',
      fields: {
        receiverTime: iso(anchor.time),
        offsetSeconds: Math.round(anchor.localOffset * 1000) / 1000,
        maxErrorSeconds: sync.maxError,
        needed: this.#options.minFixes,
      },
    });
  }

  /** Consistent fixes a jump candidate needs before it replaces the accepted timeline. */
  #runNeeded(reference: Anchor, candidate: Anchor): number {
    const run = Math.max(this.#options.minFixes, MIN_CANDIDATE_RUN);
    const sync = this.#readWitness();
    if (sync === null || !sync.synchronised) return run;
    const agrees = (anchor: Anchor): boolean => Math.abs(anchor.localOffset) <= sync.maxError + WITNESS_SLACK_SECONDS;
    return agrees(reference) && !agrees(candidate) ? Math.max(run, OVERRULE_RUN) : run;
  }

  #readWitness(): ClockSync | null {
    try {
      return this.#options.witness?.() ?? null;
    } catch {
      return null;
    }
  }

  /** A fix the receiver calls good that is not published: warn when it goes on. */
  #refuse(
    result: LineResult,
    reason: Skip,
    arrival: Timespec,
    receiverTime: Timespec | null,
    detail: Record<string, unknown> = {},
  ): void {
    const refusals = (this.#refusals ??= {
      since: arrival,
      counts: new Map<Skip, number>(),
      warnedAt: null,
      receiverTime: null,
    });
    refusals.counts.set(reason, (refusals.counts.get(reason) ?? 0) + 1);
    if (receiverTime !== null) refusals.receiverTime = receiverTime;
    const seconds = diffSeconds(arrival, refusals.since);
    if (seconds < REFUSED_WARN_SECONDS) return;
    if (refusals.warnedAt !== null && diffSeconds(arrival, refusals.warnedAt) < REFUSED_REPEAT_SECONDS) return;
    refusals.warnedAt = arrival;
    result.notices.push({
      level: 'warn',
      event: 'fixes refused',
      fields: {
        seconds: Math.round(seconds),
        why: reason,
        ...Object.fromEntries(refusals.counts),
        receiverTime: iso(refusals.receiverTime),
        ...detail,
      },
    });
  }

  #publish(second: SecondRecord, result: LineResult): Sample | null {
    if (second.published || !second.counted || second.fix !== true || second.time === null) return null;
    if (this.#goodFixes < this.#options.minFixes) return null;
    // 23:59:60 has no POSIX time of its own; the kernel repeats a second there. Skip it.
    if (second.firstTime.second === 60) return null;
    if (this.#lastPublishedSec !== null && second.time.sec <= this.#lastPublishedSec) return null;
    second.published = true;
    this.#lastPublishedSec = second.time.sec;
    this.count('samples');
    const refusals = this.#refusals;
    if (refusals !== null) {
      if (refusals.warnedAt !== null) {
        result.notices.push({
          level: 'info',
          event: 'fixes accepted again',
          fields: { refusedSeconds: Math.round(diffSeconds(second.arrival, refusals.since)) },
        });
      }
      this.#refusals = null;
    }
    return {
      clockTime: addSeconds(second.time, this.#options.offset),
      receiveTime: second.receiveTime,
      precision: this.#options.precision,
    };
  }
}
