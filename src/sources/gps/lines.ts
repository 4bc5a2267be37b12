// Splits a serial byte stream into lines with a hard cap on their length. ReadlineParser
// has no cap: at a wrong baud rate garbage without line ends would grow it forever. Here
// the buffer is allocated once; an overlong line is dropped up to its line end.
// Not a stream Transform on purpose: each line carries the receive stamp the caller took
// in the data event that completed it, before any parsing work. A line whose handler says
// so (it made a sample) ends the turn: the rest of its chunk waits for the next turn of the
// event loop, so that the sample is published before the burst's other sentences are read.
import type { Timespec } from '../../time.js';

/** gpsd drops lines longer than this; the standard allows 82 bytes. */
export const MAX_LINE_LENGTH = 130;

const CR = 0x0d;
const LF = 0x0a;

interface Pending {
  chunk: Buffer;
  from: number;
  receiveTime: Timespec;
  arrival: Timespec;
}

export class LineSplitter {
  readonly #buffer: Buffer;
  #length = 0;
  /** In the middle of an overlong line: drop bytes until its line end. */
  #discarding = false;
  /** Bytes not split yet, in order, each with its chunk's stamps (after a line that ended a turn). */
  readonly #pending: Pending[] = [];
  #resume: NodeJS.Immediate | null = null;

  /** `onLine` returns true where the rest should wait for the next turn of the event loop. */
  constructor(
    private readonly onLine: (line: string, receiveTime: Timespec, arrival: Timespec) => boolean | void,
    private readonly onOverlong: () => void,
    maxLength: number = MAX_LINE_LENGTH,
  ) {
    this.#buffer = Buffer.alloc(maxLength);
  }

  /** Bytes that arrived at `receiveTime` (CLOCK_REALTIME) / `arrival` (CLOCK_MONOTONIC_RAW). */
  push(chunk: Buffer, receiveTime: Timespec, arrival: Timespec): void {
    if (this.#pending.length > 0) this.#pending.push({ chunk, from: 0, receiveTime, arrival });
    else this.#split(chunk, 0, receiveTime, arrival);
  }

  #drain(): void {
    this.#resume = null;
    while (this.#resume === null) {
      const next = this.#pending.shift();
      if (next === undefined) return;
      this.#split(next.chunk, next.from, next.receiveTime, next.arrival);
    }
  }

  #split(chunk: Buffer, from: number, receiveTime: Timespec, arrival: Timespec): void {
    for (let index = from; index < chunk.length; index += 1) {
      const byte = chunk[index] as number;
      // \r\n, \n and \r alone all end a line; the empty line between \r and \n is skipped.
      if (byte === CR || byte === LF) {
        if (this.#discarding) {
          this.#discarding = false;
          this.onOverlong();
        } else if (this.#length > 0) {
          const line = this.#buffer.toString('latin1', 0, this.#length);
          this.#length = 0;
          if (this.onLine(line, receiveTime, arrival) === true && index + 1 < chunk.length) {
            this.#pending.unshift({ chunk, from: index + 1, receiveTime, arrival });
            this.#resume = setImmediate(() => this.#drain());
            return;
          }
        }
        continue;
      }
      if (this.#discarding) continue;
      if (this.#length === this.#buffer.length) {
        this.#length = 0;
        this.#discarding = true;
        continue;
      }
      this.#buffer[this.#length] = byte;
      this.#length += 1;
    }
  }

  /**
   * Drop a partial line and what waits (the port was reopened or closed: its start and end are from different streams).
   */
  clear(): void {
    this.#length = 0;
    this.#discarding = false;
    this.#pending.length = 0;
    if (this.#resume !== null) clearImmediate(this.#resume);
    this.#resume = null;
  }
}

/**
 * A received line as log text: bytes outside printable ASCII as \xHH, and the backslash
 * as \\, so a device (or line noise) can never put terminal escapes into a log.
 */
export function printableLine(line: string): string {
  return line.replace(/[^\x20-\x5b\x5d-\x7e]/g, (char) =>
    char === '\\' ? '\\\\' : `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
