// The HTTP/1.1 answer reader (answer-reader.ts) on its own, fed every answer cut at every
// byte, byte by byte and at seeded random places: the same head, completeness and reuse
// each time, the final answer's first byte found in the read that brought it, coded errors
// for what is not an answer, and a head trickled a byte at a time read in bounded time.
// Then through the client (client.ts) on raw loopback servers: receive times after
// informational answers cut across reads, stray bytes after a HEAD answer, a kept-alive
// connection the server closes, and destroy() while connecting.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { AnswerReader, type AnswerHead } from '../../../src/sources/http/answer-reader.js';
import { ProbeFault, type ProbeMethod } from '../../../src/sources/http/connection.js';
import { createConnection, type ProbeConnection } from '../../../src/sources/http/probe.js';
import type { Timespec } from '../../../src/time.js';
import { rawServer, type RawRequest, type RawServer } from '../../helpers/http/raw-server.js';
import { seededRandom } from '../../helpers/random.js';

const DATE = 'Mon, 07 Dec 2026 23:40:00 GMT';
/** A Date no answer taken may carry: informational and stray answers are stamped with it. */
const EPOCH = 'Thu, 01 Jan 1970 00:00:00 GMT';
const MAX_HEADER_SIZE = 16 * 1024;

const isLineEnd = (byte: number): boolean => byte === 0x0d || byte === 0x0a;

interface ValidAnswer {
  name: string;
  method: ProbeMethod;
  text: string;
  head: AnswerHead;
  /** Whole without the connection's end. */
  complete: boolean;
  reusable: boolean;
}

/** Where the final answer's first byte is: after the last informational head, past blank lines. */
function finalStart(text: string): number {
  const starts = [...text.matchAll(/HTTP\/1\.[01] /g)].map((match) => match.index);
  const last = starts.findLast((start) => start !== undefined && /^HTTP\/1\.[01] [2-9]/.test(text.slice(start)));
  if (last === undefined) throw new Error(`no final head in ${JSON.stringify(text)}`);
  return last;
}

const fields = (...lines: string[]): string => lines.map((line) => `${line}\r\n`).join('');

const VALID: ValidAnswer[] = [
  {
    name: 'HEAD 200 with Content-Length',
    method: 'HEAD',
    text: `HTTP/1.1 200 OK\r\n${fields(`Date: ${DATE}`, 'Content-Length: 1234')}\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE, 'content-length': '1234' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'HEAD 200 without Content-Length',
    method: 'HEAD',
    text: `HTTP/1.1 200 OK\r\n${fields(`date: ${DATE}`, 'Server: x')}\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE, server: 'x' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'GET 206 with Content-Length',
    method: 'GET',
    text:
      `HTTP/1.1 206 Partial Content\r\n` +
      `${fields(`Date: ${DATE}`, 'Content-Range: bytes 0-0/99', 'Content-Length: 1')}\r\nx`,
    head: {
      statusCode: 206,
      statusText: 'Partial Content',
      headers: { date: DATE, 'content-range': 'bytes 0-0/99', 'content-length': '1' },
    },
    complete: true,
    reusable: true,
  },
  {
    name: 'GET chunked with extensions and trailers',
    method: 'GET',
    text:
      `HTTP/1.1 200 OK\r\n${fields(`Date: ${DATE}`, 'Transfer-Encoding: gzip, chunked')}\r\n` +
      '1;name="v"\r\nx\r\n3 ; a=b\r\nabc\r\n0;last\r\nX-Trailer: t\r\nY: 0\r\n\r\n',
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE, 'transfer-encoding': 'gzip, chunked' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'GET chunked without trailers, upper-case hex',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\n${fields('Transfer-Encoding: chunked')}\r\nA\r\n0123456789\r\n0\r\n\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { 'transfer-encoding': 'chunked' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'GET framed by the close',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\n${fields(`Date: ${DATE}`)}\r\n<html>the body</html>\r\n\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE } },
    complete: false,
    reusable: false,
  },
  {
    name: 'GET 204',
    method: 'GET',
    text: `HTTP/1.1 204 No Content\r\n${fields(`Date: ${DATE}`)}\r\n`,
    head: { statusCode: 204, statusText: 'No Content', headers: { date: DATE } },
    complete: true,
    reusable: true,
  },
  {
    name: 'GET 304 with a Content-Length and no body',
    method: 'GET',
    text: `HTTP/1.1 304 Not Modified\r\n${fields(`Date: ${DATE}`, 'Content-Length: 500')}\r\n`,
    head: { statusCode: 304, statusText: 'Not Modified', headers: { date: DATE, 'content-length': '500' } },
    complete: true,
    reusable: true,
  },
  {
    name: '100 and 103 before the final answer',
    method: 'HEAD',
    text:
      'HTTP/1.1 100 Continue\r\n\r\n' +
      `HTTP/1.1 103 Early Hints\r\n${fields('Link: </a.css>; rel=preload', `Date: ${EPOCH}`)}\r\n` +
      `HTTP/1.1 200 OK\r\n${fields(`Date: ${DATE}`, 'Content-Length: 0')}\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE, 'content-length': '0' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'a 103 with bare LF and blank lines before the final answer',
    method: 'GET',
    text: `HTTP/1.1 103 Early Hints\nLink: </b>\n\n\r\n\nHTTP/1.1 200 OK\nDate: ${DATE}\nContent-Length: 2\n\nhi`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE, 'content-length': '2' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'three informational answers, mixed line ends, then a 204',
    method: 'GET',
    text: 'HTTP/1.1 100 C\r\n\r\nHTTP/1.1 102\n\n\r\nHTTP/1.1 103 E\r\nL: x\r\n\r\nHTTP/1.1 204 N\r\n\r\n',
    head: { statusCode: 204, statusText: 'N', headers: {} },
    complete: true,
    reusable: true,
  },
  {
    name: 'obs-fold',
    method: 'HEAD',
    text: `HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\tc\r\nDate: ${DATE}\r\n\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { 'x-folded': 'a b c', date: DATE } },
    complete: true,
    reusable: true,
  },
  {
    name: 'bare LF line ends',
    method: 'GET',
    text: `HTTP/1.1 200 OK\nDate: ${DATE}\nContent-Length: 2\n\nhi`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE, 'content-length': '2' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'leading blank lines',
    method: 'HEAD',
    text: `\r\n\r\n\n\rHTTP/1.1 200 OK\r\nDate: ${DATE}\r\n\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE } },
    complete: true,
    reusable: true,
  },
  {
    name: 'repeated fields joined with ", "',
    method: 'HEAD',
    text:
      'HTTP/1.1 200 OK\r\n' +
      fields('Age: 1', 'Cache-Control: a', 'AGE: 2', 'cache-control:b ', 'Content-Length: 7', 'content-length: 7') +
      '\r\n',
    head: {
      statusCode: 200,
      statusText: 'OK',
      headers: { age: '1, 2', 'cache-control': 'a, b', 'content-length': '7, 7' },
    },
    complete: true,
    reusable: true,
  },
  {
    name: 'GET with the same Content-Length twice',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\n${fields('Content-Length: 3', 'Content-Length: 3')}\r\nabc`,
    head: { statusCode: 200, statusText: 'OK', headers: { 'content-length': '3, 3' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'a status line without reason phrase',
    method: 'HEAD',
    text: `HTTP/1.1 404\r\nDate: ${DATE}\r\n\r\n`,
    head: { statusCode: 404, statusText: '', headers: { date: DATE } },
    complete: true,
    reusable: true,
  },
  {
    name: 'HTTP/1.0 with keep-alive',
    method: 'GET',
    text: `HTTP/1.0 200 OK\r\n${fields('Connection: Keep-Alive', 'Content-Length: 1')}\r\nx`,
    head: { statusCode: 200, statusText: 'OK', headers: { connection: 'Keep-Alive', 'content-length': '1' } },
    complete: true,
    reusable: true,
  },
  {
    name: 'HTTP/1.0 without keep-alive',
    method: 'GET',
    text: `HTTP/1.0 200 OK\r\n${fields('Content-Length: 1')}\r\nx`,
    head: { statusCode: 200, statusText: 'OK', headers: { 'content-length': '1' } },
    complete: true,
    reusable: false,
  },
  {
    name: 'HEAD on HTTP/1.0 without keep-alive',
    method: 'HEAD',
    text: `HTTP/1.0 200 OK\r\nDate: ${DATE}\r\n\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { date: DATE } },
    complete: true,
    reusable: false,
  },
  {
    name: 'Connection: close',
    method: 'HEAD',
    text: `HTTP/1.1 200 OK\r\n${fields('Connection: keep-alive, Close')}\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { connection: 'keep-alive, Close' } },
    complete: true,
    reusable: false,
  },
  {
    name: 'GET with Transfer-Encoding beside Content-Length',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\n${fields('Content-Length: 3', 'Transfer-Encoding: chunked')}\r\n1\r\nx\r\n0\r\n\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { 'content-length': '3', 'transfer-encoding': 'chunked' } },
    complete: true,
    reusable: false,
  },
  {
    name: 'HEAD with Transfer-Encoding beside Content-Length',
    method: 'HEAD',
    text: `HTTP/1.1 200 OK\r\n${fields('Content-Length: 3', 'Transfer-Encoding: chunked')}\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { 'content-length': '3', 'transfer-encoding': 'chunked' } },
    complete: true,
    reusable: false,
  },
  {
    name: 'GET with a Transfer-Encoding not ending in chunked (framed by the close)',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\n${fields('Transfer-Encoding: chunked, gzip')}\r\n1\r\nx\r\n0\r\n\r\n`,
    head: { statusCode: 200, statusText: 'OK', headers: { 'transfer-encoding': 'chunked, gzip' } },
    complete: false,
    reusable: false,
  },
];

interface Fed {
  head: AnswerHead | undefined;
  /** How many pushes gave a head: exactly one for an answer. */
  heads: number;
  complete: boolean;
  /** end() once all is pushed. */
  ended: boolean;
  reusable: boolean;
  /** The read the client would time the answer by (its rule, client.ts). */
  timedBy: number | undefined;
  /** The read that brought the final answer's first byte. */
  finalIn: number | undefined;
}

/** The text's bytes in parts cut at `cuts` (ascending, inside the text). */
function parts(bytes: Buffer, cuts: number[]): Buffer[] {
  const bounds = [0, ...cuts, bytes.length];
  return bounds.slice(1).map((end, index) => bytes.subarray(bounds[index], end));
}

/** Pushes the parts as reads, then ends the connection; `finalAt`: where the final answer begins. */
function feed(method: ProbeMethod, reads: Buffer[], finalAt: number, maxHeaderSize = MAX_HEADER_SIZE): Fed {
  const reader = new AnswerReader(method, maxHeaderSize);
  const fed: Fed = {
    head: undefined,
    heads: 0,
    complete: false,
    ended: false,
    reusable: false,
    timedBy: undefined,
    finalIn: undefined,
  };
  let offset = 0;
  reads.forEach((read, index) => {
    const progress = reader.push(Buffer.from(read));
    if (fed.timedBy === undefined && !read.every(isLineEnd)) fed.timedBy = index;
    if (progress.informational) fed.timedBy = progress.finalBegun ? index : undefined;
    if (finalAt >= offset && finalAt < offset + read.length) fed.finalIn = index;
    offset += read.length;
    if (progress.head !== undefined) {
      fed.heads += 1;
      const { statusCode, statusText, headers } = progress.head;
      fed.head = { statusCode, statusText, headers };
    }
    fed.complete = progress.complete;
  });
  fed.ended = reader.end();
  fed.reusable = reader.reusable;
  return fed;
}

/** The cuts tried: none, every byte, each byte alone, each pair of bytes (short answers), seeded random ones. */
function* cuttings(length: number, seed: number): Generator<number[]> {
  yield [];
  yield Array.from({ length: length - 1 }, (_, index) => index + 1);
  for (let cut = 1; cut < length; cut += 1) yield [cut];
  if (length <= 120)
    for (let first = 1; first < length; first += 1)
      for (let second = first + 1; second < length; second += 1) yield [first, second];
  const random = seededRandom(seed);
  for (let round = 0; round < 300; round += 1) {
    const cuts = new Set<number>();
    const count = 1 + Math.floor(random() * 12);
    for (let index = 0; index < count; index += 1) cuts.add(1 + Math.floor(random() * (length - 1)));
    yield [...cuts].sort((a, b) => a - b);
  }
}

describe('AnswerReader on valid answers, cut every way', () => {
  it.each(VALID.map((answer, index) => ({ ...answer, seed: 0x5eed + index })))(
    '$name',
    ({ method, text, head, complete, reusable, seed }) => {
      const bytes = Buffer.from(text, 'latin1');
      const finalAt = finalStart(text);
      let runs = 0;
      for (const cuts of cuttings(bytes.length, seed)) {
        const fed = feed(method, parts(bytes, cuts), finalAt);
        const where = `cut at ${JSON.stringify(cuts)}`;
        expect(fed.heads, where).toBe(1);
        expect(fed.head, where).toEqual(head);
        expect(fed.complete, where).toBe(complete);
        // A body framed by the close ends with the connection; anything else is whole without it.
        expect(fed.ended, where).toBe(true);
        expect(fed.reusable, where).toBe(reusable);
        // The receive time is the read that brought the final answer's first byte, never an earlier one.
        expect(fed.timedBy, where).toBe(fed.finalIn);
        runs += 1;
      }
      expect(runs).toBeGreaterThan(bytes.length + 300);
    },
  );

  it('is fed the same bytes whether they come in new buffers or views of one', () => {
    const { text, head } = VALID[8] as ValidAnswer;
    const bytes = Buffer.from(text, 'latin1');
    const reader = new AnswerReader('HEAD', MAX_HEADER_SIZE);
    let got: AnswerHead | undefined;
    for (let index = 0; index < bytes.length; index += 1) got ??= reader.push(bytes.subarray(index, index + 1)).head;
    expect(got).toMatchObject(head);
  });
});

describe('AnswerReader refuses reuse', () => {
  const reusableAnswers = VALID.filter((answer) => answer.reusable);

  it.each(reusableAnswers)('when bytes follow a whole answer: $name', ({ method, text }) => {
    const random = seededRandom(text.length);
    for (const after of ['x', '\r\n', `HTTP/1.1 200 OK\r\nDate: ${EPOCH}\r\n\r\n`]) {
      const bytes = Buffer.from(text + after, 'latin1');
      for (let cut = 1; cut < bytes.length; cut += 1) {
        const fed = feed(method, parts(bytes, [cut]), finalStart(text));
        expect(fed.reusable, `${JSON.stringify(after)} cut at ${cut}`).toBe(false);
        expect(fed.heads).toBe(1);
      }
      // In a read of its own after the answer was whole.
      const reader = new AnswerReader(method, MAX_HEADER_SIZE);
      expect(reader.push(Buffer.from(text, 'latin1')).complete).toBe(true);
      expect(reader.reusable).toBe(true);
      const stray = Buffer.from(after, 'latin1');
      const cut = 1 + Math.floor(random() * stray.length);
      for (const part of parts(stray, cut < stray.length ? [cut] : [])) reader.push(part);
      expect(reader.reusable).toBe(false);
    }
  });

  it('for a body framed by the close, even once the close ends it', () => {
    const reader = new AnswerReader('GET', MAX_HEADER_SIZE);
    expect(reader.push(Buffer.from('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nbody')).complete).toBe(false);
    expect(reader.reusable).toBe(false);
    expect(reader.end()).toBe(true);
    expect(reader.reusable).toBe(false);
  });

  it('after a 408, even one that keeps the connection (the server is closing it: RFC 9110 15.5.9)', () => {
    const reader = new AnswerReader('HEAD', MAX_HEADER_SIZE);
    const progress = reader.push(
      Buffer.from(`HTTP/1.1 408 Request Timeout\r\nDate: ${DATE}\r\nContent-Length: 0\r\n\r\n`),
    );
    expect(progress.complete).toBe(true);
    expect(reader.reusable).toBe(false);
  });

  it('before the answer is whole', () => {
    const reader = new AnswerReader('GET', MAX_HEADER_SIZE);
    reader.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc'));
    expect(reader.reusable).toBe(false);
    expect(reader.end()).toBe(false);
    expect(reader.reusable).toBe(false);
  });
});

interface InvalidAnswer {
  name: string;
  method?: ProbeMethod;
  text: string;
  code: string;
  maxHeaderSize?: number;
  /** The error must come by this many bytes pushed one at a time (no waiting for a line's or head's end). */
  by?: number;
}

const big = (bytes: number): string => 'x'.repeat(bytes);

const INVALID: InvalidAnswer[] = [
  { name: 'SSH banner', text: 'SSH-2.0-OpenSSH_9.6\r\n', code: 'HPE_INVALID_CONSTANT', by: 1 },
  { name: 'a TLS alert', text: '\x15\x03\x03\x00\x02\x02\x46', code: 'HPE_INVALID_CONSTANT', by: 1 },
  { name: 'HTML', text: '<html><body>hello</body></html>\r\n\r\n', code: 'HPE_INVALID_CONSTANT', by: 1 },
  { name: 'HTML after blank lines', text: '\r\n\r\n<html>', code: 'HPE_INVALID_CONSTANT', by: 5 },
  { name: 'lower-case http', text: 'http/1.1 200 OK\r\n\r\n', code: 'HPE_INVALID_CONSTANT', by: 1 },
  { name: 'HTTP/2', text: 'HTTP/2 200\r\n\r\n', code: 'HPE_INVALID_CONSTANT', by: 6 },
  { name: 'HTTP/1.1 with a status of letters', text: 'HTTP/1.1 abc OK\r\n\r\n', code: 'HPE_INVALID_CONSTANT' },
  {
    name: 'a head over the limit, ended',
    text: `HTTP/1.1 200 OK\r\nX: ${big(2000)}\r\n\r\n`,
    code: 'HPE_HEADER_OVERFLOW',
    maxHeaderSize: 1024,
  },
  {
    name: 'a head over the limit, never ended',
    text: `HTTP/1.1 200 OK\r\nX: ${big(2000)}`,
    code: 'HPE_HEADER_OVERFLOW',
    maxHeaderSize: 1024,
    by: 1026,
  },
  {
    name: 'a status line over the limit',
    text: `HTTP/1.1 200 ${big(2000)}`,
    code: 'HPE_HEADER_OVERFLOW',
    maxHeaderSize: 1024,
    by: 1026,
  },
  {
    name: 'fields without end over the limit',
    text: `HTTP/1.1 200 OK\r\n${'A: b\r\n'.repeat(400)}`,
    code: 'HPE_HEADER_OVERFLOW',
    maxHeaderSize: 1024,
    by: 1026,
  },
  {
    name: 'an informational head over the limit',
    text: `HTTP/1.1 103 Early Hints\r\nLink: ${big(2000)}\r\n\r\nHTTP/1.1 200 OK\r\n\r\n`,
    code: 'HPE_HEADER_OVERFLOW',
    maxHeaderSize: 1024,
  },
  { name: 'a space before the colon', text: 'HTTP/1.1 200 OK\r\nDate : x\r\n\r\n', code: 'HPE_INVALID_HEADER_TOKEN' },
  { name: 'a line without colon', text: 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', code: 'HPE_INVALID_HEADER_TOKEN' },
  { name: 'an empty field name', text: 'HTTP/1.1 200 OK\r\n: x\r\n\r\n', code: 'HPE_INVALID_HEADER_TOKEN' },
  { name: 'a fold before any field', text: 'HTTP/1.1 200 OK\r\n folded: x\r\n\r\n', code: 'HPE_INVALID_HEADER_TOKEN' },
  { name: 'a CR inside a value', text: 'HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n', code: 'HPE_INVALID_HEADER_TOKEN' },
  { name: 'a NUL in a name', text: 'HTTP/1.1 200 OK\r\nX\0Y: a\r\n\r\n', code: 'HPE_INVALID_HEADER_TOKEN' },
  {
    name: 'two Content-Lengths that differ',
    method: 'GET',
    text: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  },
  {
    name: 'two Content-Lengths that differ on a HEAD answer',
    text: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  },
  {
    name: 'a Content-Length list that differs',
    method: 'GET',
    text: 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  },
  {
    name: 'a Content-Length not a number',
    method: 'GET',
    text: 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  },
  {
    name: 'a chunk size not hex',
    method: 'GET',
    text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    code: 'HPE_INVALID_CHUNK_SIZE',
  },
  {
    name: 'a negative chunk size',
    method: 'GET',
    text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n',
    code: 'HPE_INVALID_CHUNK_SIZE',
  },
  {
    name: 'a chunk line without end',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${big(2000)}`,
    code: 'HPE_INVALID_CHUNK_SIZE',
    maxHeaderSize: 1024,
  },
  {
    name: 'chunk data without its line end',
    method: 'GET',
    text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n',
    code: 'HPE_STRICT',
  },
  {
    name: 'a chunk past 64 KiB',
    method: 'GET',
    text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n',
    code: 'ERR_HTTP_BODY_TOO_LARGE',
  },
  {
    name: 'chunks adding up past 64 KiB',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n${big(0x8000)}\r\n8001\r\n`,
    code: 'ERR_HTTP_BODY_TOO_LARGE',
  },
  {
    name: 'a Content-Length body past 64 KiB',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n${big(70000)}`,
    code: 'ERR_HTTP_BODY_TOO_LARGE',
  },
  {
    name: 'a body framed by the close past 64 KiB',
    method: 'GET',
    text: `HTTP/1.1 200 OK\r\n\r\n${big(65537)}`,
    code: 'ERR_HTTP_BODY_TOO_LARGE',
  },
  {
    name: 'a 101',
    text: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
    code: 'ERR_HTTP_NO_RESPONSE',
  },
  {
    name: 'a 101 after a 100',
    text: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n',
    code: 'ERR_HTTP_NO_RESPONSE',
  },
];

/** The coded error the pushes threw, and how many bytes had been pushed then. */
function failure(invalid: InvalidAnswer, reads: Buffer[]): { error: unknown; pushed: number } {
  const reader = new AnswerReader(invalid.method ?? 'HEAD', invalid.maxHeaderSize ?? MAX_HEADER_SIZE);
  let pushed = 0;
  for (const read of reads) {
    pushed += read.length;
    try {
      reader.push(read);
    } catch (error) {
      return { error, pushed };
    }
  }
  return { error: undefined, pushed };
}

describe('AnswerReader on what is not a valid answer', () => {
  it.each(INVALID)('$name: $code', (invalid) => {
    const bytes = Buffer.from(invalid.text, 'latin1');
    const wholeAndBytes = [[], Array.from({ length: bytes.length - 1 }, (_, index) => index + 1)];
    const random = seededRandom(bytes.length);
    const randomCuts = Array.from({ length: 20 }, () =>
      [...new Set(Array.from({ length: 6 }, () => 1 + Math.floor(random() * (bytes.length - 1))))].sort(
        (a, b) => a - b,
      ),
    );
    for (const cuts of [...wholeAndBytes, ...randomCuts]) {
      const { error, pushed } = failure(invalid, parts(bytes, cuts));
      expect(error, `cut at ${cuts.length > 20 ? 'every byte' : JSON.stringify(cuts)}`).toBeInstanceOf(Error);
      expect(error).toMatchObject({ code: invalid.code });
      if (cuts.length === bytes.length - 1 && invalid.by !== undefined) expect(pushed).toBeLessThanOrEqual(invalid.by);
    }
  });

  it('takes a body of exactly 64 KiB, chunked or by its length', () => {
    for (const text of [
      `HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n${big(65536)}`,
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
        `8000\r\n${big(0x8000)}\r\n8000\r\n${big(0x8000)}\r\n0\r\n\r\n`,
    ]) {
      const reader = new AnswerReader('GET', MAX_HEADER_SIZE);
      expect(reader.push(Buffer.from(text, 'latin1')).complete).toBe(true);
      expect(reader.reusable).toBe(true);
    }
  });

  it('reads a head just under the limit, with its end in the same read as more', () => {
    const text = `HTTP/1.1 200 OK\r\nX: ${big(900)}\r\n\r\n`;
    const reader = new AnswerReader('HEAD', 1024);
    expect(reader.push(Buffer.from(text, 'latin1')).head?.headers.x).toHaveLength(900);
  });
});

describe('AnswerReader cost', () => {
  /** Milliseconds to push `bytes` in `size`-byte reads. */
  const timed = (method: ProbeMethod, bytes: Buffer, size: number): { ms: number; complete: boolean } => {
    const reader = new AnswerReader(method, MAX_HEADER_SIZE);
    const started = performance.now();
    let complete = false;
    for (let offset = 0; offset < bytes.length; offset += size)
      complete = reader.push(bytes.subarray(offset, offset + size)).complete;
    return { ms: performance.now() - started, complete };
  };

  it('reads a 16 KiB head trickled a byte per read in bounded time', () => {
    const line = `X-Filler: ${big(100)}\r\n`;
    const count = Math.floor((MAX_HEADER_SIZE - 64) / line.length);
    const text = `HTTP/1.1 200 OK\r\n${line.repeat(count)}\r\n`;
    expect(text.length).toBeGreaterThan(MAX_HEADER_SIZE - 200);
    const bytes = Buffer.from(text, 'latin1');
    expect(timed('HEAD', bytes, bytes.length).complete).toBe(true);
    const trickled = timed('HEAD', bytes, 1);
    expect(trickled.complete).toBe(true);
    expect(trickled.ms).toBeLessThan(2000);
  });

  it('reads a long chunk extension and trailers trickled a byte per read in bounded time', () => {
    const text =
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${big(15_000)}\r\nx\r\n` +
      `0\r\n${`T: ${big(100)}\r\n`.repeat(140)}\r\n`;
    const trickled = timed('GET', Buffer.from(text, 'latin1'), 1);
    expect(trickled.complete).toBe(true);
    expect(trickled.ms).toBeLessThan(2000);
  });
});

// Through the client on raw loopback servers.

const ns = (time: Timespec): bigint => BigInt(time.sec) * 1_000_000_000n + BigInt(time.nsec);

const now = (): Timespec => systemClock.realtime();

const answerHead = (exchange: RawRequest, extra = ''): string =>
  `HTTP/1.1 200 OK\r\nDate: ${DATE}\r\nX-Exchange: ${exchange.connection}/${exchange.index}\r\n${extra}\r\n`;

/** Rejects after `ms` with a message naming `what`, else `promise`'s outcome. */
const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    sleep(ms, undefined, { ref: false }).then(() => {
      throw new Error(`${what} did not happen within ${ms} ms`);
    }),
  ]);

describe('the client on raw servers', () => {
  const closers: (() => Promise<void>)[] = [];
  const connections: ProbeConnection[] = [];
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((connection) => connection.destroy()));
    await Promise.all(closers.splice(0).map((close) => close()));
  });
  const open = (url: URL, timeoutMs = 10_000): ProbeConnection => {
    const connection = createConnection(url, { timeoutMs });
    connections.push(connection);
    return connection;
  };
  const serve = async (answer: (socket: Socket, exchange: RawRequest) => Promise<void>): Promise<RawServer> => {
    const server = await rawServer(answer);
    closers.push(server.close);
    return server;
  };

  it('times the final answer after a 103 in a read of its own, not the 103', async () => {
    const server = await serve(async (socket, exchange) => {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
      await sleep(200);
      exchange.answerStart = now();
      socket.write(answerHead(exchange, 'Content-Length: 0\r\n'));
    });
    const connection = open(server.url);
    for (let index = 0; index < 3; index += 1) {
      const answer = await connection.send(server.url, systemClock, 'HEAD');
      expect(answer.statusCode).toBe(200);
      expect(ns(answer.response.receiveTime)).toBeGreaterThanOrEqual(ns(server.requests[index]?.answerStart ?? now()));
    }
    expect(server.connections).toHaveLength(1);
  });

  // Each: what the first write holds, then (200 ms later) the second and third; the final answer begins in `final`.
  const cutInformationals = [
    {
      name: 'a 103 cut in its fields, the final after its rest',
      writes: ['HTTP/1.1 103 Early Hints\r\nLink: </a>', '\r\n\r\n#'],
    },
    { name: 'a 103 cut in its status line', writes: ['HTTP/1.1 10', '3 Early Hints\r\n\r\n#'] },
    {
      name: "a 103 cut between its head's last CR and LF",
      writes: ['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r', '\n#'],
    },
    {
      name: 'a 100 whole and a 103 begun, then its rest and the final',
      writes: ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 1', '03 x\r\n\r\n#'],
    },
    {
      name: 'a 103 in two reads, the final in a third',
      writes: ['HTTP/1.1 103 Early Hints\r\n', 'Link: </a>\r\n\r\n', '#'],
    },
    { name: 'a 103, blank lines, the final', writes: ['HTTP/1.1 103 Early Hints\r\n\r\n\r\n', '\r\n', '#'] },
  ];

  it.each(cutInformationals)('never times the final answer before its first byte: $name', async ({ writes }) => {
    const server = await serve(async (socket, exchange) => {
      for (const [index, write] of writes.entries()) {
        if (index > 0) await sleep(200);
        const text = write.replace('#', answerHead(exchange, 'Content-Length: 0\r\n'));
        if (write.includes('#')) exchange.answerStart = now();
        socket.write(text);
      }
    });
    const connection = open(server.url);
    for (let index = 0; index < 2; index += 1) {
      const answer = await connection.send(server.url, systemClock, 'HEAD');
      expect(answer.statusCode).toBe(200);
      const written = server.requests[index]?.answerStart;
      expect(written).toBeDefined();
      expect(ns(answer.response.receiveTime)).toBeGreaterThanOrEqual(ns(written ?? now()));
    }
  });

  const stray = `HTTP/1.1 200 OK\r\nDate: ${EPOCH}\r\nX-Exchange: stray\r\nContent-Length: 0\r\n\r\n`;

  it('opens a new connection after a HEAD answer with bytes after it in the same write', async () => {
    const server = await serve(async (socket, exchange) => {
      socket.write(answerHead(exchange, 'Content-Length: 94\r\n') + stray);
    });
    const connection = open(server.url);
    const first = await connection.send(server.url, systemClock, 'HEAD');
    const second = await connection.send(server.url, systemClock, 'HEAD');
    expect(first.headers['x-exchange']).toMatch(/^0\//);
    expect(second.headers['x-exchange']).toMatch(/^1\//);
    expect(second.headers.date).toBe(DATE);
    expect(server.connections).toHaveLength(2);
    await within(server.closed(0), 2000, 'the first connection closing');
  });

  it('drops a kept connection on which bytes came after the answer, and does not read them as the next', async () => {
    let strayWritten: () => void = () => {};
    const strayDone = new Promise<void>((resolve) => (strayWritten = resolve));
    const server = await serve(async (socket, exchange) => {
      socket.write(answerHead(exchange, 'Content-Length: 94\r\n'));
      if (exchange.connection !== 0) return;
      await sleep(50);
      socket.write(stray);
      strayWritten();
    });
    const connection = open(server.url);
    expect((await connection.send(server.url, systemClock, 'HEAD')).headers['x-exchange']).toMatch(/^0\//);
    await strayDone;
    await within(server.closed(0), 2000, 'the client dropping the connection with stray bytes');
    const second = await connection.send(server.url, systemClock, 'HEAD');
    expect(second.headers['x-exchange']).toMatch(/^1\//);
    expect(server.connections).toHaveLength(2);
  });

  it('reconnects after the server closed an idle kept-alive connection, losing no request', async () => {
    const server = await serve(async (socket, exchange) => {
      socket.write(answerHead(exchange, 'Content-Length: 0\r\n'));
      if (exchange.connection === 0) setTimeout(() => socket.end(), 20);
    });
    const connection = open(server.url);
    const answers = [await connection.send(server.url, systemClock, 'HEAD')];
    await within(server.closed(0), 2000, 'the server closing its idle connection');
    let reset: unknown;
    try {
      answers.push(await connection.send(server.url, systemClock, 'HEAD'));
    } catch (error) {
      // The close raced the request: measure retries a non-ProbeFault ECONNRESET once.
      reset = error;
      expect(error).not.toBeInstanceOf(ProbeFault);
      expect(error).toMatchObject({ code: 'ECONNRESET' });
      answers.push(await connection.send(server.url, systemClock, 'HEAD'));
    }
    // Every request the server took was answered on its own connection, each answer the server's own.
    expect(answers.map((answer) => answer.headers['x-exchange'])).toEqual(
      server.requests.map((exchange) => `${exchange.connection}/${exchange.index}`),
    );
    expect(server.connections).toHaveLength(2);
    expect(reset).toBeUndefined();
  });

  it('fails only with a code measure retries when the server closes after each answer unannounced', async () => {
    const server = await serve(async (socket, exchange) => {
      socket.end(answerHead(exchange, 'Content-Length: 0\r\n'));
    });
    const connection = open(server.url);
    const outcomes: string[] = [];
    // The next request goes out at different points of the close: at once, after a few loop turns, later.
    for (let round = 0; round < 40; round += 1) {
      for (let turn = 0; turn < round % 8; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      try {
        const answer = await connection.send(server.url, systemClock, 'HEAD');
        // The answer to the request just sent, never one the server wrote before it.
        const last = server.requests.at(-1);
        const own = answer.headers['x-exchange'] === `${last?.connection}/${last?.index}`;
        outcomes.push(own ? 'answered' : `answered another request: ${answer.headers['x-exchange']}`);
      } catch (error) {
        const retried =
          !(error instanceof ProbeFault) && /^(ECONNRESET|EPIPE)$/.test((error as { code?: string }).code ?? '');
        outcomes.push(retried ? 'retried' : `lost: ${(error as { code?: string }).code} ${(error as Error).message}`);
      }
    }
    expect(outcomes.filter((outcome) => outcome.startsWith('lost'))).toEqual([]);
    expect(outcomes.filter((outcome) => outcome !== 'retried')).toEqual(
      outcomes.filter((outcome) => outcome === 'answered'),
    );
    expect(outcomes.filter((outcome) => outcome === 'answered').length).toBeGreaterThan(0);
  });

  it.each([
    { how: 'closes', cut: (socket: Socket) => socket.end() },
    { how: 'resets', cut: (socket: Socket) => socket.resetAndDestroy() },
  ])('fails a request at once with ECONNRESET when the server $how its kept connection on it', async ({ cut }) => {
    const server = await serve(async (socket, exchange) => {
      if (exchange.index === 1) cut(socket);
      else socket.write(answerHead(exchange, 'Content-Length: 0\r\n'));
    });
    const connection = open(server.url, 10_000);
    await connection.send(server.url, systemClock, 'HEAD');
    const started = performance.now();
    const failed = await connection.send(server.url, systemClock, 'HEAD').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(performance.now() - started).toBeLessThan(5000);
    expect(failed).not.toBeInstanceOf(ProbeFault);
    expect(failed).toMatchObject({ code: 'ECONNRESET' });
    // The retry measure makes goes on a new connection and is answered.
    const retried = await connection.send(server.url, systemClock, 'HEAD');
    expect(retried.headers['x-exchange']).toMatch(/^1\//);
    expect(server.connections).toHaveLength(2);
  });

  it.each([
    { scheme: 'http', settle: async (): Promise<void> => {} },
    { scheme: 'https (a server that never answers the TLS handshake)', settle: () => sleep(100) },
  ])(
    'destroy() while connecting ($scheme) fails the probe at once and closes the socket',
    async ({ scheme, settle }) => {
      const server = await serve(() => new Promise(() => {}));
      const url = scheme === 'http' ? server.url : new URL(server.url.href.replace('http:', 'https:'));
      const connection = open(url, 10_000);
      const pending = connection.send(url, systemClock, 'HEAD');
      // The exchange starts a turn later; the connect is then under way.
      await Promise.resolve();
      await Promise.resolve();
      await settle();
      const reason = Object.assign(new Error('shutting down'), { code: 'ERR_TEST_DESTROYED' });
      const started = performance.now();
      await connection.destroy(reason);
      await expect(pending).rejects.toBe(reason);
      expect(performance.now() - started).toBeLessThan(1000);
      await expect(connection.send(url, systemClock, 'HEAD')).rejects.toBe(reason);
      // Whatever connection was opened closes well before the 10 s connect limit.
      await sleep(100);
      expect(server.connections.length).toBeLessThanOrEqual(1);
      for (let index = 0; index < server.connections.length; index += 1)
        await within(server.closed(index), 2000, `connection ${index} closing after destroy()`);
      expect(server.requests).toHaveLength(0);
    },
  );
});
