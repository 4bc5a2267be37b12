// The harness's readers of daemon output, on lines as the real programs print them
// (captured on Debian 12: chrony 4.3, ntpsec 1.2.2, gpsd-clients 3.22), and the
// HTNTP_E2E rule's tool discovery.
import { describe, expect, it } from 'vitest';
import {
  findTool,
  missingTools,
  parseChronySources,
  parseChronyTracking,
  parseNtpshmmon,
  parsePeerstats,
} from '../helpers/daemons.js';

describe('daemon output parsers', () => {
  it('chronyc -c tracking: the CSV correction becomes "seconds fast" (text said 1.000404835 seconds fast)', () => {
    const tracking = parseChronyTracking(
      [
        '46495800,FIX,1,1795314986.612081528,-1.000404716,-0.000125163,0.000139676,',
        '-28.417,-4.813,356.160,0.000000001,0.002002120,1.0,Normal\n',
      ].join(''),
    );
    expect(tracking.referenceName).toBe('FIX');
    expect(tracking.stratum).toBe(1);
    expect(tracking.systemTimeFast).toBeCloseTo(1.000404716, 9);
    expect(tracking.frequencyPpm).toBeCloseTo(-28.417, 6); // the text said "28.417 ppm slow"
    expect(tracking.leapStatus).toBe('Normal');
  });

  it('chronyc -c sources: reach is octal, offsets keep chronyc sign', () => {
    const [source] = parseChronySources('#,*,FIX,0,0,377,1,-0.000120227,1.000231041,0.001000001\n');
    expect(source).toMatchObject({
      mode: '#',
      state: '*',
      name: 'FIX',
      reach: 0o377,
      lastRx: 1,
      measuredOffset: 1.000231041,
    });
  });

  it('ntpd peerstats: MJD + seconds to Unix time, SHM(N) to the unit, hex status', () => {
    const [line] = parsePeerstats('61366 9366.901 SHM(130) 9014 -1.000995037 0.000000000 7.937500000 0.000000000\n');
    expect(line).toMatchObject({
      unit: 130,
      peer: 'SHM(130)',
      status: 0x9014,
      offset: -1.000995037,
      dispersion: 7.9375,
    });
    expect(line?.time).toBeCloseTo((61366 - 40587) * 86_400 + 9366.901, 3);
  });

  it('ntpshmmon: the unit is the byte after "NTP" (0x30 + unit), times exact', () => {
    const text = [
      'ntpshmmon: version 3.22',
      '#      Name  Seen@                 Clock                 Real                 L Prc',
      'sample NTP2  1795314958.328503286  1795314957.412829186  1795314956.411999941 0 -10',
      `sample NTP${String.fromCharCode(0x30 + 100)}  1795314958.413923460  1795314958.412974100  ` +
        `1795314957.412974100 1 -20`,
    ].join('\n');
    const [two, hundred] = parseNtpshmmon(text);
    expect(two).toMatchObject({
      unit: 2,
      leap: 0,
      precision: -10,
      receive: { sec: 1795314957, nsec: 412829186 },
      clock: { sec: 1795314956, nsec: 411999941 },
    });
    expect(two?.offset).toBeCloseTo(-1.000829245, 9);
    expect(hundred).toMatchObject({ unit: 100, leap: 1, precision: -20, offset: -1 });
  });
});

describe('tool discovery', () => {
  it('finds a program every Debian system has and names what is missing', () => {
    expect(findTool('unshare')).toMatch(/\/unshare$/);
    expect(missingTools([])).toBeUndefined();
    const reason = missingTools(['ntpd']);
    if (findTool('ntpd') === undefined) expect(reason).toMatch(/ntpd not found \(apt-get download ntpsec/);
    else expect(reason === undefined || /root/.test(reason)).toBe(true);
  });
});
