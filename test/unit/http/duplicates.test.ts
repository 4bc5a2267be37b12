// Servers that are one clock vote once: the same resolved address, port and Host.
import { describe, expect, it } from 'vitest';
import { duplicates } from '../../../src/sources/http/measure.js';

const urls = (...specs: string[]): URL[] => specs.map((spec) => new URL(spec));

describe('duplicates', () => {
  it('names repeats by address, port and Host, whatever the path or query', async () => {
    const found = await duplicates(
      urls(
        'http://127.0.0.1:8080/',
        'http://127.0.0.1:8080/?x',
        'http://127.0.0.1:8080/other',
        'http://127.0.0.1:8081/',
        'https://127.0.0.1:8080/',
        'http://127.0.0.2:8080/',
      ),
      false,
      new AbortController().signal,
    );
    expect(found).toEqual([undefined, 0, 0, undefined, undefined, undefined]);
  });

  it('keeps another Host on one address apart (virtual hosts), and default ports equal to explicit ones', async () => {
    const found = await duplicates(
      urls('http://localhost:80/', 'http://127.0.0.1/', 'http://127.0.0.1:80/'),
      false,
      new AbortController().signal,
    );
    expect(found).toEqual([undefined, undefined, 1]);
  });

  it('through a proxy compares host names (the proxy resolves them)', async () => {
    const found = await duplicates(
      urls('http://example.invalid/', 'http://example.invalid/?x', 'http://other.invalid/'),
      true,
      new AbortController().signal,
    );
    expect(found).toEqual([undefined, 0, undefined]);
  });
});
