// Splits a serial byte stream into lines with a hard cap on their length. ReadlineParser
// has no cap: at a wrong baud rate garbage without line ends would grow it forever. Here
// the buffer is allocated once; an overlong line is dropped up to its line end.
// Not a stream Transform on purpose: each line carries the receive stamp the caller took
// in the data event that completed it, before any parsing work.
import type { Timespec } from '../../time.js';

/** gpsd drops lines longer than this; the standard allows 82 bytes. */
export const MAX_LINE_LENGTH = 130;

const CR = 0x0d;
const LF = 0x0a;

export class LineSplitter {
  readonly #buffer: Buffer;
  #length = 0;
  /** In the middle of an overlong line: drop bytes until its line end. */
  #discarding = false;

  constructor(
    private readonly onLine: (line: string, receiveTime: Timespec, arrival: Timespec) => void,
    private readonly onOverlong: () => void,
    maxLength: number = MAX_LINE_LENGTH,
  ) {
    this.#buffer = Buffer.alloc(maxLength);
  }

  /** Bytes that arrived at `receiveTime` (CLOCK_REALTIME) / `arrival` (CLOCK_MONOTONIC_RAW). */
  push(chunk: Buffer, receiveTime: Timespec, arrival: Timespec): void {
    for (let index = 0; index < chunk.length; index += 1) {
      const byte = chunk[index] as number;
      // \r\n, \n and \r alone all end a line; the empty line between \r and \n is skipped.
      if (byte === CR || byte === LF) {
        if (this.#discarding) {
          this.#discarding = false;
          this.onOverlong();
        } else if (this.#length > 0) {
          const line = this.#buffer.toString('latin1', 0, this.#length);
          this.#length = 0;
          this.onLine(line, receiveTime, arrival);
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

  /** Drop a partial line (the port was reopened: its start and end are from different streams). */
  clear(): void {
    this.#length = 0;
    this.#discarding = false;
  }
}

/**
 * A received line as log text: bytes outside printable ASCII as \xHH, and the backslash
 * as \\, so a device (or line noise) can never put terminal escapes into a log.
 */
export function printableLine(line: string): string {
  return line.replace(/[^\x20-\x5b\x5d-\x7e]/g, (char) => (char === '\\' ? '\\\\' : `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
