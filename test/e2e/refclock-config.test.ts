// The refclock lines: what each daemon is told, bad options refused, and ntp.conf.example
// holding exactly what the generator (and `htntp config`) prints.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  presetOptions,
  refclockLines,
  type RefclockConfigOptions,
  type RefclockDaemon,
  type SourceKind,
} from '../../src/refclock-config.js';
import { refclockConfig } from '../../src/cli/commands/config.js';
import { htntpLines } from '../helpers/cli.js';
import { flags, repoRoot, startHtntp } from '../helpers/process.js';

describe('refclockLines', () => {
  it('classic ntpd: a 127.127.28.N server line and a fudge line', () => {
    expect(
      refclockLines({ daemon: 'ntpd', unit: 7, refid: 'HTTP', offset: -0.25, poll: 5, prefer: true, stratum: 3 }),
    ).toEqual([
      'server 127.127.28.7 minpoll 5 maxpoll 5 prefer',
      'fudge 127.127.28.7 refid HTTP stratum 3 time1 -0.25 flag1 1',
    ]);
  });

  it('ntpsec: one refclock shm line', () => {
    expect(refclockLines({ daemon: 'ntpsec', unit: 7, refid: 'HTTP', offset: 0.5, noselect: true })).toEqual([
      'refclock shm unit 7 refid HTTP time1 0.5 minpoll 4 maxpoll 4 noselect',
    ]);
  });

  it('chrony: :perm=0666 above unit 1 (chrony would create 0600), precision as seconds', () => {
    expect(refclockLines({ daemon: 'chrony', unit: 7, refid: 'HTTP', precision: -10, delay: 0.2, poll: 2 })).toEqual([
      'refclock SHM 7:perm=0666 refid HTTP poll 2 dpoll 0 offset 0.0 delay 0.2 precision 0.0009765625',
    ]);
    expect(refclockLines({ daemon: 'chrony', unit: 1, refid: 'GPS' })).toEqual([
      'refclock SHM 1 refid GPS poll 4 dpoll 0 offset 0.0',
    ]);
    expect(refclockLines({ daemon: 'chrony', unit: 9, refid: 'X', perm: 0o640 })[0]).toMatch(
      /^refclock SHM 9:perm=0640 /,
    );
  });

  it('a private unit >= 2 is `mode 1` in ntpd and ntpsec (not the segment mode field)', () => {
    expect(refclockLines({ daemon: 'ntpd', unit: 5, refid: 'X', perm: 0o600 })[0]).toBe(
      'server 127.127.28.5 minpoll 4 maxpoll 4 mode 1',
    );
    expect(refclockLines({ daemon: 'ntpsec', unit: 5, refid: 'X', perm: 0o600 })[0]).toContain(' mode 1');
    expect(refclockLines({ daemon: 'ntpsec', unit: 1, refid: 'X' })[0]).not.toContain('mode');
    expect(refclockLines({ daemon: 'chrony', unit: 5, refid: 'X', perm: 0o600 })[0]).toMatch(/^refclock SHM 5 refid/);
  });

  it('small offsets stay plain decimals', () => {
    expect(refclockLines({ daemon: 'ntpsec', unit: 2, refid: 'X', offset: 1e-7 })[0]).toContain('time1 0.0000001 ');
  });

  it.each<[string, Partial<RefclockConfigOptions>, ErrorConstructor]>([
    ['unit 256', { unit: 256 }, RangeError],
    ['unit 1.5', { unit: 1.5 }, RangeError],
    ['unit "2"', { unit: '2' as unknown as number }, TypeError],
    ['refid too long', { refid: 'HTTPS' }, RangeError],
    ['refid with a space', { refid: 'A B' }, RangeError],
    ['refid not a string', { refid: 4 as unknown as string }, TypeError],
    ['offset NaN', { offset: Number.NaN }, RangeError],
    ['poll below classic ntpd minimum', { poll: 2 }, RangeError],
    ['perm 0644 in ntpd', { perm: 0o644 }, RangeError],
    ['0666 on a root-only unit', { unit: 1, perm: 0o666 }, RangeError],
    ['noselect with prefer', { noselect: true, prefer: true }, TypeError],
    ['chrony precision for ntpd', { precision: -10 }, TypeError],
    ['unknown daemon', { daemon: 'openntpd' as RefclockDaemon }, RangeError],
  ])('refuses %s', (_name, bad, errorType) => {
    expect(() => refclockLines({ daemon: 'ntpd', unit: 2, refid: 'FIX', ...bad })).toThrow(errorType);
  });
});

/** The units and source kinds ntp.conf.example shows, per block. */
const EXAMPLES: [number, SourceKind][] = [
  [2, 'fixed'],
  [3, 'http'],
  [0, 'gps'],
];

/** Config lines (not comments, not blank) of each `# ===== [daemon]` block. */
function exampleBlocks(text: string): Map<string, string[]> {
  const blocks = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const header = /^# =+ \[(\w+)\]/.exec(line);
    if (header) {
      current = [];
      blocks.set(header[1] ?? '', current);
    } else if (current && line.trim() !== '' && !line.startsWith('#')) {
      current.push(line);
    }
  }
  return blocks;
}

describe('ntp.conf.example', () => {
  const blocks = exampleBlocks(readFileSync(join(repoRoot, 'ntp.conf.example'), 'utf8'));

  it('has one block per daemon and nothing outside them', () => {
    expect([...blocks.keys()].sort()).toEqual(['chrony', 'ntpd', 'ntpsec']);
  });

  it.each<RefclockDaemon>(['ntpd', 'ntpsec', 'chrony'])('the %s block holds exactly the generated lines', (daemon) => {
    const expected = EXAMPLES.flatMap(([unit, source]) => refclockLines(presetOptions(source, { daemon, unit })));
    expect(blocks.get(daemon)).toEqual(expected);
  });
});

describe('htntp config', () => {
  it('--source gives each kind its refid, and chrony its delay and precision', () => {
    expect(refclockConfig({ daemon: 'chrony', unit: 2, source: 'http' }).lines).toEqual([
      'refclock SHM 2:perm=0666 refid HTTP poll 4 dpoll 0 offset 0.0 delay 0.2 precision 0.0009765625',
    ]);
    expect(refclockConfig({ daemon: 'chrony', unit: 0, source: 'gps' }).lines).toEqual([
      'refclock SHM 0 refid GPS poll 4 dpoll 0 offset 0.0 precision 0.03125',
    ]);
    expect(refclockConfig({ daemon: 'ntpsec', unit: 2, source: 'http' }).lines).toEqual([
      'refclock shm unit 2 refid HTTP time1 0.0 minpoll 4 maxpoll 4',
    ]);
    expect(refclockConfig({ daemon: 'ntpd', unit: 2, source: 'fixed' }).lines).toEqual([
      'server 127.127.28.2 minpoll 4 maxpoll 4 noselect',
      'fudge 127.127.28.2 refid FIX stratum 10 time1 0.0 flag1 1',
    ]);
    // Explicit options win; --prefer replaces the fixed clock's noselect.
    expect(refclockConfig({ daemon: 'chrony', unit: 4, source: 'http', refid: 'WEB', precision: -7 }).lines[0]).toBe(
      'refclock SHM 4:perm=0666 refid WEB poll 4 dpoll 0 offset 0.0 delay 0.2 precision 0.0078125',
    );
    expect(refclockConfig({ daemon: 'ntpsec', unit: 2, source: 'fixed', prefer: true }).lines[0]).toMatch(/ prefer$/);
    expect(() => refclockConfig({ daemon: 'chrony', unit: 2 })).toThrow(/--source.*--refid/);
  });

  it('--json gives a plain object with the generator lines and the segment key', () => {
    const result = refclockConfig({ daemon: 'ntpsec', unit: 2, refid: 'FIX', noselect: true });
    expect(result).toEqual({
      daemon: 'ntpsec',
      unit: 2,
      refid: 'FIX',
      key: '0x4e545032',
      lines: refclockLines({ daemon: 'ntpsec', unit: 2, refid: 'FIX', noselect: true }),
    });
  });

  it('the real CLI prints the lines, ready to append to a config file', async () => {
    const options = { daemon: 'ntpd', unit: '2', refid: 'FIX', offset: '-0.5', noselect: true };
    expect(await htntpLines(['config', ...flags(options)])).toEqual(
      refclockLines({ daemon: 'ntpd', unit: 2, refid: 'FIX', offset: -0.5, noselect: true }),
    );
  });

  it('the real CLI refuses a bad refid with exit 1 and a message', async () => {
    const cli = startHtntp(['config', '--daemon', 'chrony', '--refid', 'TOOLONG']);
    const exit = await cli.exited;
    expect(exit.code).toBe(1);
    expect(cli.stderrLines.join('\n')).toMatch(/refid.*1 to 4 printable ASCII characters/);
  });
});

describe('PPS pairing lines', () => {
  it('chrony: the unit noselect with NMEA delay and precision, the pulse locked to its refid and preferred', () => {
    expect(refclockLines({ daemon: 'chrony', unit: 2, refid: 'GPS', pps: '/dev/pps1', prefer: true })).toEqual([
      'refclock SHM 2:perm=0666 refid GPS poll 4 dpoll 0 offset 0.0 delay 0.2 precision 0.125 noselect',
      'refclock PPS /dev/pps1 lock GPS refid PPS prefer',
    ]);
    expect(
      refclockLines({ daemon: 'chrony', unit: 2, refid: 'GPS', pps: '/dev/pps0', delay: 0.1, precision: -5, poll: 3 }),
    ).toEqual([
      'refclock SHM 2:perm=0666 refid GPS poll 3 dpoll 0 offset 0.0 delay 0.1 precision 0.03125 noselect',
      'refclock PPS /dev/pps0 lock GPS refid PPS poll 3 prefer',
    ]);
  });

  it('ntpsec and ntpd: the unit preferred (driver 22 needs a prefer peer), the pulse as driver 22', () => {
    expect(refclockLines({ daemon: 'ntpsec', unit: 0, refid: 'GPS', pps: '/dev/gps0pps' })).toEqual([
      'refclock shm unit 0 refid GPS time1 0.0 minpoll 4 maxpoll 4 prefer',
      'refclock pps unit 0 path /dev/gps0pps refid PPS minpoll 4 maxpoll 4',
    ]);
    expect(refclockLines({ daemon: 'ntpd', unit: 0, refid: 'GPS', pps: '/dev/pps2', poll: 5 })).toEqual([
      'server 127.127.28.0 minpoll 5 maxpoll 5 prefer',
      'fudge 127.127.28.0 refid GPS time1 0.0 flag1 1',
      'server 127.127.22.2 minpoll 5 maxpoll 5',
      'fudge 127.127.22.2 refid PPS',
    ]);
  });

  it('refuses a relative or spaced path, refid PPS, and a classic ntpd path that is not /dev/ppsK', () => {
    expect(() => refclockLines({ daemon: 'chrony', unit: 2, refid: 'GPS', pps: 'pps0' })).toThrow(RangeError);
    expect(() => refclockLines({ daemon: 'chrony', unit: 2, refid: 'GPS', pps: '/dev/pps0 lock X' })).toThrow(
      RangeError,
    );
    expect(() => refclockLines({ daemon: 'chrony', unit: 2, refid: 'PPS', pps: '/dev/pps0' })).toThrow(
      /other than PPS/,
    );
    expect(() => refclockLines({ daemon: 'ntpd', unit: 2, refid: 'GPS', pps: '/dev/gpspps' })).toThrow(
      /ln -s \/dev\/gpspps \/dev\/pps0/,
    );
    expect(() => refclockLines({ daemon: 'ntpd', unit: 2, refid: 'GPS', pps: 7 as unknown as string })).toThrow(
      TypeError,
    );
  });
});
