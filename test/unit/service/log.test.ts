// Log lines: one per event, text and json, levels, journald priorities, and credentials
// never written (proxy URLs, user:pass@host, Authorization values).
import { describe, expect, it } from 'vitest';
import { fstatSync } from 'node:fs';
import { redactCredentials, stderrIsJournal } from '../../../src/log.js';
import { memoryLogger } from '../../helpers/log-capture.js';

describe('redactCredentials', () => {
  it.each([
    ['proxy=http://alice:s3cret@proxy.example:3128', 'proxy=http://***@proxy.example:3128'],
    ['https://alice:p@ss@proxy:3128/x', 'https://***@proxy:3128/x'],
    ['https://token@host/path', 'https://***@host/path'],
    ['proxy=bob:pw@10.0.0.1:3128', 'proxy=***@10.0.0.1:3128'],
    ['{"proxy":"bob:pw@10.0.0.1:3128"}', '{"proxy":"***@10.0.0.1:3128"}'],
    ['Proxy-Authorization: Basic YWxpY2U6cHc=', 'Proxy-Authorization: ***'],
    ['{"authorization":"Bearer abc.def"}', '{"authorization":"***"}'],
  ])('%s', (input, expected) => {
    expect(redactCredentials(input)).toBe(expected);
  });

  it('leaves URLs and addresses without credentials alone', () => {
    for (const text of [
      'https://www.google.com.au/',
      'http://[::1]:8080/x?y=1',
      'mail me@example.com',
      '127.0.0.1:3128',
    ]) {
      expect(redactCredentials(text)).toBe(text);
    }
  });
});

describe('createLogger', () => {
  it('text: `level event key=value`, quoting what needs it, errors as their message, secrets redacted', () => {
    const log = memoryLogger();
    const error = Object.assign(new Error('connect ECONNREFUSED via http://u:pw@proxy:3128'), { code: 'ECONNREFUSED' });
    log.logger.warn('server failed', {
      server: 'https://www.example.com',
      proxy: 'u:pw@proxy:3128',
      error,
      rtt: 0.012,
      skipped: undefined,
    });
    expect(log.lines).toEqual([
      'warn server failed server=https://www.example.com proxy=***@proxy:3128 error="connect ECONNREFUSED via ' +
        'http://***@proxy:3128" rtt=0.012',
    ]);
    expect(log.lines.join('\n')).not.toContain('pw');
  });

  it('json: one object per line with time, level, event and the fields (nested ones redacted too)', () => {
    const log = memoryLogger({ format: 'json' });
    log.logger.info('measurement', { offset: -0.25, servers: [{ url: 'https://a:b@x.example/' }] });
    expect(log.lines).toHaveLength(1);
    const line = JSON.parse(log.lines[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'info',
      event: 'measurement',
      offset: -0.25,
      servers: [{ url: 'https://***@x.example/' }],
    });
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  it('drops lines below the level and prefixes the syslog priority for journald when asked', () => {
    const quiet = memoryLogger({ level: 'warn', syslogPriority: true });
    quiet.logger.debug('sample published');
    quiet.logger.info('segment attached');
    quiet.logger.warn('segment removed', { unit: 2 });
    quiet.logger.error('source failed');
    expect(quiet.lines).toEqual(['<4>warn segment removed unit=2', '<3>error source failed']);
  });
});

describe('stderrIsJournal', () => {
  it('is true only when JOURNAL_STREAM names the device and inode of stderr itself', () => {
    const stat = fstatSync(2, { bigint: true });
    expect(stderrIsJournal({ JOURNAL_STREAM: `${stat.dev}:${stat.ino}` })).toBe(true);
    expect(stderrIsJournal({ JOURNAL_STREAM: `${stat.dev}:${stat.ino + 1n}` })).toBe(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: 'garbage' })).toBe(false);
    expect(stderrIsJournal({})).toBe(false);
  });
});
