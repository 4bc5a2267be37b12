// Lines in, samples out: the rules that decide which sentence is stamped and whether
// the receiver's time can be stood behind. No I/O here, so every rule is testable with
// recorded logs and made-up timestamps.
import type { Sample } from '../../sample.js';
import { addSeconds, diffSeconds, type Timespec } from '../../time.js';
import { DateTracker, RELEASE_FLOOR } from './date.js';
import { parseLine, type ParsedLine, type RejectReason, type TimeOfDay, type TimeSentence } from './nmea.js';

export interface SamplerOptions {
  /** Consecutive good fixes (one per second) before the first sample (gpsd: 3). */
  minFixes: number;
  /** Seconds added to the sentence time: the receiver's constant latency correction. */
  offset: number;
  /** log2 of the error bound in seconds of each sample. */
  precision: number;
  /** Rollover floor (default RELEASE_FLOOR); tests of old logs pass an older one. */
  floor?: Timespec;
}

/** Why a time-carrying line produced no sample (counted, logged at debug). */
export type Skip =
  | RejectReason
  | 'overlong'
  | 'no-time'
  | 'no-date'
  | 'bogus-date'
  | 'invalid-fix'
  | 'backwards'
  | 'leap-second'
  | 'timing';

export interface LineResult {
  parsed: ParsedLine;
  /** The absolute time the sentence states (after date/rollover rules), if it has one. */
  time: Timespec | null;
  sample: Sample | null;
  /** Set when the line was refused or broke the run of good fixes. */
  skip: Skip | null;
  /** This line brought the good-fix count to minFixes: publishing starts. */
  acquired: boolean;
}

// How far the sentence clock and the arrival clock (monotonic raw) may disagree between
// two fixes. More than this is buffered or replayed data, not a receiver talking live.
const TIMING_TOLERANCE_SECONDS = 0.5;

/** One second of the receiver's output: the first sentence that carried it is stamped. */
interface SecondRecord {
  label: number;
  firstTime: TimeOfDay;
  receiveTime: Timespec;
  arrival: Timespec;
  /** The first sentence's absolute time, once a date is known. */
  time: Timespec | null;
  fix: boolean | null;
  counted: boolean;
  published: boolean;
}

export class NmeaSampler {
  readonly #options: SamplerOptions;
  readonly #dates: DateTracker;
  #second: SecondRecord | null = null;
  #goodFixes = 0;
  #lastCounted: { sec: number | null; arrival: Timespec } | null = null;
  #lastSeenSec: number | null = null;
  #lastPublishedSec: number | null = null;
  readonly counts = new Map<string, number>();

  constructor(options: SamplerOptions) {
    this.#options = options;
    this.#dates = new DateTracker(options.floor ?? RELEASE_FLOOR);
  }

  get goodFixes(): number {
    return this.#goodFixes;
  }

  /**
   * The device went away: what comes next may be another receiver, or old buffered data.
   * The last published second stays: no second is ever published twice.
   */
  reset(): void {
    this.#dates.reset();
    this.#second = null;
    this.#goodFixes = 0;
    this.#lastCounted = null;
    this.#lastSeenSec = null;
  }

  count(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }

  /**
   * One line (without its line end) that arrived at `receiveTime` (CLOCK_REALTIME) and
   * `arrival` (CLOCK_MONOTONIC_RAW).
   */
  line(text: string, receiveTime: Timespec, arrival: Timespec): LineResult {
    this.count('lines');
    const parsed = parseLine(text);
    const result: LineResult = { parsed, time: null, sample: null, skip: null, acquired: false };
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
        // An RMC/ZDA with a missing, malformed or default (1980) date: its time is no better.
        this.#breakFixes();
        return this.#skip(result, 'bogus-date');
      }
    } else {
      time = this.#dates.timeOnly(tod);
    }
    result.time = time;

    if (time !== null) {
      if (this.#lastSeenSec !== null && time.sec < this.#lastSeenSec) {
        // A receiver restart or replayed data: start over, the timeline must prove itself.
        this.#lastSeenSec = time.sec;
        this.#second = null;
        this.#breakFixes();
        return this.#skip(result, 'backwards');
      }
      this.#lastSeenSec = time.sec;
    }

    let second = this.#second;
    if (second === null || second.label !== label) {
      second = { label, firstTime: tod, receiveTime, arrival, time: null, fix: null, counted: false, published: false };
      this.#second = second;
    }
    // The first sentence of the second may have come before any date (GGA before RMC).
    if (second.time === null && time !== null) second.time = { sec: time.sec, nsec: second.firstTime.nsec };

    if (sentence.fix === true && second.fix !== false && !second.counted) {
      second.fix = true;
      second.counted = true;
      if (!this.#timingConsistent(second)) {
        this.#breakFixes();
        result.skip = 'timing';
        this.count('timing');
      }
      this.#goodFixes += 1;
      this.#lastCounted = { sec: second.time?.sec ?? null, arrival: second.arrival };
      if (this.#goodFixes === this.#options.minFixes) result.acquired = true;
    }
    if (second.time === null) {
      if (result.skip === null) this.#skip(result, 'no-date');
      return result;
    }
    result.sample = this.#publish(second);
    if (result.sample === null && second.firstTime.second === 60 && result.skip === null) this.#skip(result, 'leap-second');
    return result;
  }

  #timingConsistent(second: SecondRecord): boolean {
    const last = this.#lastCounted;
    if (last === null || last.sec === null || second.time === null) return true;
    const sentenceDelta = second.time.sec - last.sec;
    const arrivalDelta = diffSeconds(second.arrival, last.arrival);
    return Math.abs(arrivalDelta - sentenceDelta) <= TIMING_TOLERANCE_SECONDS;
  }

  #publish(second: SecondRecord): Sample | null {
    if (second.published || !second.counted || second.fix !== true || second.time === null) return null;
    if (this.#goodFixes < this.#options.minFixes) return null;
    // 23:59:60 has no POSIX time of its own; the kernel repeats a second there. Skip it.
    if (second.firstTime.second === 60) return null;
    if (this.#lastPublishedSec !== null && second.time.sec <= this.#lastPublishedSec) return null;
    second.published = true;
    this.#lastPublishedSec = second.time.sec;
    this.count('samples');
    return {
      clockTime: addSeconds(second.time, this.#options.offset),
      receiveTime: second.receiveTime,
      precision: this.#options.precision,
    };
  }
}
