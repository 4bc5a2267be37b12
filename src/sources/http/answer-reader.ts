// One answer to one request, read off an HTTP/1.1 connection (RFC 9112) as its bytes come:
// informational (1xx) answers skipped, the final head parsed, the body framed and counted
// (HEAD, 204 and 304 have none; else chunked, Content-Length or to the close), and whether
// the connection can carry the next request. Errors carry llhttp's codes (Node's parser).
//
// Strict where a wrong framing would pair the next request with this answer's bytes: any
// byte left after the answer, a Transfer-Encoding beside a Content-Length, or an answer
// framed by the close, and the connection is not used again.
import { codedError } from '../../errors.js';
import { bodyTooLarge, MAX_BODY, ProbeFault, type ProbeMethod } from './connection.js';

export interface AnswerHead {
  statusCode: number;
  statusText: string;
  /** Lower-case names, repeats joined with ", " (RFC 9110 5.3). */
  headers: Record<string, string | undefined>;
}

/** What the bytes given so far completed. */
export interface ReadProgress {
  /** An informational answer ended in these bytes: the final answer is timed afresh. */
  informational: boolean;
  /** The final answer's first bytes are among these (after an informational one in them). */
  finalBegun: boolean;
  /** The final answer's head, when these bytes completed it. */
  head: AnswerHead | undefined;
  /** The answer is whole. */
  complete: boolean;
}

type BodyFraming = 'none' | 'chunked' | 'close' | { length: number };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;

/** CR or LF: blank lines before an answer, never its first byte. */
export const isLineEnd = (byte: number): boolean => byte === 0x0d || byte === 0x0a;

/** A field's comma-separated tokens, lower case. */
const tokens = (value: string | undefined): string[] =>
  (value ?? '')
    .toLowerCase()
    .split(',')
    .map((token) => token.trim())
    .filter(Boolean);

/** Reads one answer; a new reader for each request. */
export class AnswerReader {
  #pending: Buffer = Buffer.alloc(0);
  #head: AnswerHead | undefined;
  #framing: BodyFraming | undefined;
  #keepAlive = false;
  #bodyBytes = 0;
  /** Chunked body: where the decoder is. */
  #chunk: { state: 'size' | 'trailers' | 'end-of-data' } | { state: 'data'; left: number } = { state: 'size' };
  #complete = false;
  #trailerBytes = 0;
  /** Bytes of the head being read already searched for its end. */
  #scanned = 0;
  #statusLineChecked = false;

  constructor(
    private readonly method: ProbeMethod,
    private readonly maxHeaderSize: number,
  ) {}

  /** Whether the connection can carry the next request: a whole answer, keep-alive, nothing read past it. */
  get reusable(): boolean {
    return this.#complete && this.#keepAlive && this.#framing !== 'close' && this.#pending.length === 0;
  }

  /** Takes the next bytes read; throws on bytes that are not an answer. */
  push(chunk: Buffer): ReadProgress {
    const progress: ReadProgress = { informational: false, finalBegun: false, head: undefined, complete: false };
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#head === undefined) {
      const head = this.#readHead();
      if (head === undefined) {
        progress.finalBegun = !this.#pending.every(isLineEnd);
        return progress;
      }
      if (head.statusCode === 101)
        throw new ProbeFault('protocol', 'an unasked-for 101 Switching Protocols', 'ERR_HTTP_NO_RESPONSE');
      if (head.statusCode < 100) throw codedError(`a status of ${head.statusCode}`, 'HPE_INVALID_STATUS');
      if (head.statusCode < 200) progress.informational = true;
      else {
        this.#head = head;
        progress.head = head;
        progress.finalBegun = true;
      }
    }
    if (!this.#complete) this.#readBody();
    progress.complete = this.#complete;
    return progress;
  }

  /** The connection ended: whether that completes the answer (a body framed by the close). */
  end(): boolean {
    if (this.#head !== undefined && this.#framing === 'close') this.#complete = true;
    return this.#complete;
  }

  /** The next head in the bytes (blank lines before it skipped), or undefined while it is incomplete. */
  #readHead(): (AnswerHead & { version: string }) | undefined {
    if (this.#scanned === 0) {
      let start = 0;
      while (start < this.#pending.length && isLineEnd(this.#pending[start] ?? 0)) start += 1;
      this.#pending = this.#pending.subarray(start);
    }
    const pending = this.#pending;
    this.#checkStatusLine();
    const end = this.#headEnd(pending);
    if ((end < 0 ? pending.length : end) > this.maxHeaderSize)
      throw codedError(`a response head over ${this.maxHeaderSize} bytes`, 'HPE_HEADER_OVERFLOW');
    if (end < 0) return undefined;
    this.#pending = pending.subarray(end + (pending[end + 1] === 0x0a ? 2 : 3));
    this.#scanned = 0;
    this.#statusLineChecked = false;
    const text = pending.toString('latin1', 0, end).replace(/\r$/, '');
    const [statusLine = '', ...lines] = text.split(/\r?\n/);
    const status = STATUS_LINE.exec(statusLine) ?? [];
    const headers: Record<string, string | undefined> = {};
    const head = { version: `1.${status[1]}`, statusCode: Number(status[2]), statusText: status[3] ?? '', headers };
    let last: string | undefined;
    for (const line of lines) {
      if (/^[ \t]/.test(line) && last !== undefined) {
        // obs-fold (RFC 9112 5.2): a user agent may take it as one space.
        headers[last] = `${headers[last] ?? ''} ${line.trim()}`;
        continue;
      }
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (colon <= 0 || !TOKEN.test(name) || /[\0\r\n]/.test(line))
        throw codedError(`not a header field: ${JSON.stringify(line.slice(0, 64))}`, 'HPE_INVALID_HEADER_TOKEN');
      const value = line.slice(colon + 1).trim();
      const before = headers[name];
      headers[name] = before === undefined ? value : `${before}, ${value}`;
      last = name;
    }
    if (head.statusCode >= 200) this.#frame(head);
    return head;
  }

  /**
   * Where the head's blank line begins (the LF before it), or -1: each line end looked at
   * once however the head is cut into reads, and nothing past the head searched.
   */
  #headEnd(pending: Buffer): number {
    let from = this.#scanned;
    for (;;) {
      const lf = pending.indexOf(0x0a, from);
      if (lf < 0 || lf > this.maxHeaderSize) {
        this.#scanned = lf < 0 ? pending.length : lf;
        return -1;
      }
      const next = pending[lf + 1];
      if (next === 0x0a) return lf;
      if (next === 0x0d && pending[lf + 2] === 0x0a) return lf;
      if (next === undefined || (next === 0x0d && lf + 2 >= pending.length)) {
        this.#scanned = lf;
        return -1;
      }
      from = lf + 1;
    }
  }

  /** Not HTTP is told from the first bytes (as llhttp tells it), not after waiting for a head's end. */
  #checkStatusLine(): void {
    if (this.#statusLineChecked) return;
    const pending = this.#pending;
    // Before #scanned there is no line end yet.
    const lineEnd = pending.indexOf(0x0a, this.#scanned);
    const line = pending.toString('latin1', 0, lineEnd < 0 ? Math.min(pending.length, 7) : lineEnd).replace(/\r$/, '');
    if (lineEnd < 0 ? 'HTTP/1.'.startsWith(line) : STATUS_LINE.test(line)) {
      this.#statusLineChecked = lineEnd >= 0;
      return;
    }
    throw codedError(`not an HTTP/1.x status line: ${JSON.stringify(line.slice(0, 64))}`, 'HPE_INVALID_CONSTANT');
  }

  /**
   * The final answer's body framing and whether its connection stays open (RFC 9112 6.3, 9.3). The framing fields
   * are judged whether or not a body follows (a HEAD's answer too): what is wrong there says the server's framing
   * cannot be trusted for the next answer either.
   */
  #frame(head: AnswerHead & { version: string }): void {
    const connection = tokens(head.headers.connection);
    this.#keepAlive = head.version === '1.1' ? !connection.includes('close') : connection.includes('keep-alive');
    // A 408 says the server is closing (RFC 9110 15.5.9): the probe sent again goes on a fresh connection.
    if (head.statusCode === 408) this.#keepAlive = false;
    const transferEncoding = head.headers['transfer-encoding'];
    const contentLength = head.headers['content-length'];
    let length: number | undefined;
    if (contentLength !== undefined) {
      const lengths = new Set(contentLength.split(',').map((value) => value.trim()));
      const [only = ''] = lengths;
      if (lengths.size !== 1 || !/^\d{1,15}$/.test(only))
        throw codedError(`a Content-Length of ${JSON.stringify(contentLength)}`, 'HPE_UNEXPECTED_CONTENT_LENGTH');
      length = Number(only);
    }
    // Both framings given: the answer may have been smuggled past something; read it, then close.
    if (transferEncoding !== undefined && contentLength !== undefined) this.#keepAlive = false;
    if (this.method === 'HEAD' || head.statusCode === 204 || head.statusCode === 304) this.#framing = 'none';
    else if (transferEncoding !== undefined)
      this.#framing = tokens(transferEncoding).at(-1) === 'chunked' ? 'chunked' : 'close';
    else this.#framing = length === undefined ? 'close' : { length };
  }

  #readBody(): void {
    const framing = this.#framing;
    if (framing === undefined || framing === 'none') this.#complete = true;
    else if (framing === 'chunked') this.#readChunks();
    else {
      const wanted = framing === 'close' ? Infinity : framing.length - this.#bodyBytes;
      const taken = Math.min(wanted, this.#pending.length);
      this.#countBody(taken);
      this.#pending = this.#pending.subarray(taken);
      if (taken === wanted) this.#complete = true;
    }
  }

  #countBody(bytes: number): void {
    this.#bodyBytes += bytes;
    if (this.#bodyBytes > MAX_BODY) throw bodyTooLarge();
  }

  /** The chunked coding (RFC 9112 7.1), as far as the bytes go. */
  #readChunks(): void {
    while (!this.#complete) {
      const chunk = this.#chunk;
      if (chunk.state === 'data') {
        const taken = Math.min(chunk.left, this.#pending.length);
        this.#pending = this.#pending.subarray(taken);
        chunk.left -= taken;
        if (chunk.left > 0) return;
        this.#chunk = { state: 'end-of-data' };
        continue;
      }
      const newline = this.#pending.indexOf(0x0a);
      if (newline < 0) {
        if (this.#pending.length > this.maxHeaderSize)
          throw codedError('a chunk line without end', 'HPE_INVALID_CHUNK_SIZE');
        return;
      }
      const line = this.#pending.toString('latin1', 0, newline).replace(/\r$/, '');
      this.#pending = this.#pending.subarray(newline + 1);
      if (chunk.state === 'end-of-data') {
        if (line !== '') throw codedError('no line end after a chunk', 'HPE_STRICT');
        this.#chunk = { state: 'size' };
      } else if (chunk.state === 'trailers') {
        this.#trailerBytes += newline + 1;
        if (this.#trailerBytes > this.maxHeaderSize)
          throw codedError(`trailers over ${this.maxHeaderSize} bytes`, 'HPE_HEADER_OVERFLOW');
        if (line === '') this.#complete = true;
      } else {
        const size = /^([0-9a-fA-F]{1,8})[ \t]*(?:;.*)?$/.exec(line)?.[1];
        if (size === undefined)
          throw codedError(`a chunk size of ${JSON.stringify(line.slice(0, 32))}`, 'HPE_INVALID_CHUNK_SIZE');
        const left = parseInt(size, 16);
        this.#countBody(left);
        this.#chunk = left === 0 ? { state: 'trailers' } : { state: 'data', left };
      }
    }
  }
}
