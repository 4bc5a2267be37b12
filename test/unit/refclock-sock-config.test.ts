// `refclock SOCK` lines: the same options as the SHM line, the socket path in place of
// the segment, no dpoll; SOCK only for chrony; `htntp config --sock` with and without --unit.
import { describe, expect, it } from 'vitest';
import { refclockLines } from '../../src/refclock-config.js';
import { refclockConfig } from '../../src/cli/commands/config.js';

describe('refclock SOCK', () => {
  it('carries the SHM line options: poll, offset, delay, precision, stratum, selection', () => {
    const common = {
      daemon: 'chrony' as const,
      unit: 2,
      refid: 'HTTP',
      offset: -0.25,
      poll: 3,
      delay: 0.2,
      precision: -10,
      stratum: 5,
      prefer: true,
    };
    const [shm] = refclockLines(common);
    const [sock] = refclockLines({ ...common, sock: '/run/chrony.htntp.sock' });
    expect(sock).toBe(
      'refclock SOCK /run/chrony.htntp.sock refid HTTP poll 3 offset -0.25 delay 0.2 precision 0.0009765625 ' +
        'stratum 5 prefer',
    );
    expect(shm?.replace('SHM 2:perm=0666', 'SOCK /run/chrony.htntp.sock').replace(' dpoll 0', '')).toBe(sock);
  });

  it('is chrony only, with a usable path', () => {
    expect(() => refclockLines({ daemon: 'ntpsec', unit: 2, refid: 'HTTP', sock: '/run/x.sock' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => refclockLines({ daemon: 'chrony', unit: 2, refid: 'HTTP', sock: '' })).toThrow(RangeError);
    expect(() => refclockLines({ daemon: 'chrony', unit: 2, refid: 'HTTP', sock: 7 as unknown as string })).toThrow(
      TypeError,
    );
  });

  it('htntp config: --sock alone prints the SOCK line only; with --unit, both lines', () => {
    expect(refclockConfig({ daemon: 'chrony', refid: 'HTTP', sock: '/run/chrony.htntp.sock' })).toEqual({
      daemon: 'chrony',
      refid: 'HTTP',
      sock: '/run/chrony.htntp.sock',
      lines: ['refclock SOCK /run/chrony.htntp.sock refid HTTP poll 4 offset 0.0'],
    });
    const both = refclockConfig({ daemon: 'chrony', refid: 'HTTP', unit: 3, sock: '/run/chrony.htntp.sock' });
    expect(both).toMatchObject({ unit: 3, key: '0x4e545033', sock: '/run/chrony.htntp.sock' });
    expect(both.lines).toEqual([
      'refclock SHM 3:perm=0666 refid HTTP poll 4 dpoll 0 offset 0.0',
      'refclock SOCK /run/chrony.htntp.sock refid HTTP poll 4 offset 0.0',
    ]);
    expect(refclockConfig({ daemon: 'chrony', refid: 'HTTP' })).toMatchObject({ unit: 2 });
  });
});
