// doctor's pure parts: config files parsed the way each daemon reads them, ntpq's peer
// table, process roles from argv, and verdicts for facts no shared machine can stage
// (root-only units owned by a user, a 32-bit segment, two writers, hidden attachments).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDaemonConfig } from '../../src/doctor/daemon-config.js';
import { parseNtpqPeers, type ChronySource } from '../../src/doctor/daemon-query.js';
import { diagnose, type UnitFacts } from '../../src/doctor/diagnose.js';
import { describeProcess, type AttachedProcess } from '../../src/doctor/processes.js';
import type { ShmSnapshot } from '../../src/shm.js';
import { makeTempDir, type TempDir } from '../helpers/process.js';

let temp: TempDir;
beforeAll(async () => {
  temp = await makeTempDir('doctor-unit');
});
afterAll(() => temp.remove());

describe('readDaemonConfig', () => {
  it('finds chrony refclocks in conf.d, ntpsec and classic forms with their fudge, and bindcmdaddress', () => {
    const chrony = join(temp.path, 'chrony');
    mkdirSync(join(chrony, 'conf.d'), { recursive: true });
    writeFileSync(
      join(chrony, 'chrony.conf'),
      'pool 2.debian.pool.ntp.org iburst\nbindcmdaddress /run/x/chronyd.sock\nconfdir /etc/chrony/conf.d\n',
    );
    writeFileSync(
      join(chrony, 'conf.d', 'htntp.conf'),
      '# htntp\nrefclock SHM 2:perm=0666 refid HTTP poll 4 dpoll 0 offset 0.25 delay 0.2\n! refclock SHM 9 refid OFF\n',
    );
    writeFileSync(join(chrony, 'conf.d', 'notes.txt'), 'refclock SHM 7 refid TXT\n');
    const ntp = join(temp.path, 'ntp.conf');
    writeFileSync(
      ntp,
      'server 127.127.28.0 minpoll 4 maxpoll 4 noselect\nfudge 127.127.28.0 refid GPS time1 -0.1\nrefclock shm unit ' +
        '3 refid FIX time1 0.0 minpoll 4\n',
    );
    const config = readDaemonConfig({ chrony: [chrony], ntp: [ntp, join(temp.path, 'absent.conf')] });
    expect(config.chronySockets).toEqual(['/run/x/chronyd.sock']);
    expect(config.units).toEqual([
      {
        daemon: 'chrony',
        file: join(chrony, 'conf.d', 'htntp.conf'),
        line: 2,
        unit: 2,
        refid: 'HTTP',
        offset: 0.25,
        noselect: false,
      },
      { daemon: 'ntpd', file: ntp, line: 1, unit: 0, refid: 'GPS', offset: -0.1, noselect: true },
      { daemon: 'ntpd', file: ntp, line: 3, unit: 3, refid: 'FIX', offset: 0, noselect: false },
    ]);
  });
});

describe('parseNtpqPeers', () => {
  it('reads SHM(N) lines with tally, refid, reach (octal) and offset (ms -> s)', () => {
    const text = [
      '     remote           refid      st t when poll reach   delay   offset   jitter',
      '=======================================================================================================',
      '*SHM(2)          .HTTP.           0 l    8   16    3   0.0000 -1000.000   0.0012',
      ' 127.0.0.1       .INIT.          16 u    -   64    0   0.0000   0.0000   0.0000',
    ].join('\n');
    expect(parseNtpqPeers(text)).toEqual([
      { tally: '*', remote: 'SHM(2)', unit: 2, refid: 'HTTP', reach: 3, offset: -1 },
      { tally: ' ', remote: '127.0.0.1', unit: undefined, refid: 'INIT', reach: 0, offset: 0 },
    ]);
  });
});

describe('describeProcess', () => {
  it.each([
    [
      'node',
      ['/usr/bin/node', '/usr/lib/node_modules/htntp/bin/htntp.js', 'gps', '-d', '/dev/ttyUSB0'],
      'htntp gps',
      'feeder',
    ],
    ['node', ['node', 'bin/htntp.js', '--unit', '3'], 'htntp http', 'feeder'],
    ['htntp', ['htntp http --proxy ***@proxy:3128 example.org'], 'htntp http', 'feeder'],
    ['node', ['node', 'bin/htntp.js', 'status', '--watch'], 'htntp status', 'monitor'],
    ['chronyd', ['/usr/sbin/chronyd', '-F', '1'], 'chronyd', 'reader'],
    ['ntpd', ['/usr/sbin/ntpd', '-p', '/run/ntpd.pid'], 'ntpd', 'reader'],
    ['gpsd', ['/usr/sbin/gpsd', '-n'], 'gpsd', 'feeder'],
    ['python3', ['python3', 'x.py'], 'python3', 'other'],
  ])('%s %j is %s (%s)', (comm, argv, name, role) => {
    expect(describeProcess(comm, argv)).toEqual({ name, role });
  });
});

const NOW = { sec: 1_800_000_000, nsec: 0 };

function snapshot(fields: Partial<ShmSnapshot> = {}): ShmSnapshot {
  return {
    unit: 2,
    mode: 1,
    count: 10,
    clockTimeStampSec: NOW.sec - 2,
    clockTimeStampUSec: 0,
    clockTimeStampNSec: 0,
    receiveTimeStampSec: NOW.sec - 1,
    receiveTimeStampUSec: 0,
    receiveTimeStampNSec: 0,
    leap: 0,
    precision: -10,
    nsamples: 3,
    valid: 1,
    consistent: true,
    ...fields,
  };
}

const feeder = (pid: number): AttachedProcess => ({ pid, name: 'htntp fixed', role: 'feeder', shmId: 7 });
const chronyd: AttachedProcess = { pid: 50, name: 'chronyd', role: 'reader', shmId: 7 };

/** chronyd's view of the refclock refid FIX, as `chronyc -c sources` gives it. */
function refclockSource(fields: Partial<ChronySource>): ChronySource {
  return {
    mode: '#',
    state: '?',
    name: 'FIX',
    stratum: 0,
    poll: 4,
    reach: 0,
    lastRx: undefined,
    adjustedOffset: 0,
    measuredOffset: 0,
    error: 0,
    ...fields,
  };
}

function facts(overrides: Partial<UnitFacts> = {}): UnitFacts {
  return {
    unit: 2,
    segment: {
      state: 'present',
      stat: { shmId: 7, size: 96, perm: 0o666, uid: 0, cuid: 0, cpid: 1, lpid: 1, nattch: 2, removed: false },
      snapshot: snapshot(),
    },
    processes: [feeder(40), chronyd],
    stale: [],
    procComplete: true,
    configured: [
      {
        daemon: 'chrony',
        file: '/etc/chrony/conf.d/htntp.conf',
        line: 1,
        unit: 2,
        refid: 'FIX',
        offset: 0,
        noselect: false,
      },
    ],
    configFiles: ['/etc/chrony/conf.d/htntp.conf'],
    now: NOW,
    maxAge: 10,
    ...overrides,
  };
}

describe('diagnose', () => {
  it('healthy: fed, read, fresh, configured', () => {
    const result = diagnose(facts());
    expect(result).toMatchObject({ verdict: 'healthy', findings: [] });
    expect(result.summary).toBe('fed by htntp fixed[40]; read by chronyd[50]; last sample 1.0 s ago');
  });

  it('unit 0 owned by a user: a problem with the ipcrm fix', () => {
    const base = facts();
    const segment =
      base.segment.state === 'present'
        ? { ...base.segment, stat: { ...base.segment.stat, uid: 1000, perm: 0o600 } }
        : base.segment;
    const result = diagnose({ ...base, unit: 0, segment, configured: [] });
    expect(result.verdict).toBe('problem');
    expect(result.summary).toMatch(/unit 0 is root-only by convention but its segment is owned by uid 1000, not root/);
    expect(result.fix).toBe('remove it (ipcrm -M 0x4e545030) and let root recreate it 0600');
  });

  it('an 80-byte segment: the 32-bit explanation', () => {
    const result = diagnose(
      facts({
        segment: {
          state: 'present',
          stat: { shmId: 7, size: 80, perm: 0o666, uid: 0, cuid: 0, cpid: 1, lpid: 1, nattch: 1, removed: false },
        },
      }),
    );
    expect(result.summary).toMatch(/80 bytes, not 96 .*32-bit/);
  });

  it('two feeders: both pids named', () => {
    const result = diagnose(facts({ processes: [feeder(40), feeder(41), chronyd] }));
    expect(result.summary).toBe(
      '2 feeders write unit 2: htntp fixed[40], htntp fixed[41]; readers get a mix of their samples',
    );
  });

  it('more attachments than visible processes: another PID namespace', () => {
    const base = facts();
    const segment =
      base.segment.state === 'present' ? { ...base.segment, stat: { ...base.segment.stat, nattch: 3 } } : base.segment;
    expect(diagnose({ ...base, segment }).findings.map((finding) => finding.code)).toEqual(['hidden-attachments']);
  });

  it('stale sample with no feeder; leap 3 only warns; chronyd unreachable is unknown, not healthy', () => {
    expect(
      diagnose(
        facts({
          processes: [chronyd],
          segment: {
            ...facts().segment,
            snapshot: snapshot({ receiveTimeStampSec: NOW.sec - 100 }),
          } as UnitFacts['segment'],
        }),
      ).summary,
    ).toMatch(/last sample is 100 s old .* and no feeder is attached/);
    expect(
      diagnose(facts({ segment: { ...facts().segment, snapshot: snapshot({ leap: 3 }) } as UnitFacts['segment'] }))
        .verdict,
    ).toBe('healthy');
    const unknown = diagnose(
      facts({ chrony: { ok: false, reason: 'chronyc -n -c sources failed: 506 Cannot talk to daemon' } }),
    );
    expect(unknown).toMatchObject({ verdict: 'unknown' });
    expect(unknown.summary).toMatch(/could not ask chronyd: .*Cannot talk to daemon/);
  });

  it('chronyd lists the refid with reach 0 while fresh samples are published', () => {
    const source = refclockSource({ reach: 0 });
    const result = diagnose(facts({ chrony: { ok: true, value: { sources: [source], correction: 0 } } }));
    expect(result.summary).toMatch(/chronyd has accepted no sample from refid FIX \(reach 0\)/);
  });

  it("chronyd's offsets are against the clock as corrected: agreement counts the pending correction", () => {
    // Published clock - receive = -1 s; chronyd -x selected it and thinks the clock is 1 s fast (correction -1): it
    // measures 0.
    const source = refclockSource({
      state: '*',
      poll: 0,
      reach: 0o377,
      lastRx: 1,
      adjustedOffset: 0.0002,
      measuredOffset: 1.0002,
      error: 0.0001,
    });
    const segment = {
      ...facts().segment,
      snapshot: snapshot({ clockTimeStampSec: NOW.sec - 2, receiveTimeStampSec: NOW.sec - 1 }),
    } as UnitFacts['segment'];
    expect(
      diagnose(facts({ segment, chrony: { ok: true, value: { sources: [source], correction: -1 } } })).verdict,
    ).toBe('healthy');
    const disagree = diagnose(facts({ segment, chrony: { ok: true, value: { sources: [source], correction: 0 } } }));
    expect(disagree.summary).toContain(
      'chronyd sees refid FIX at 0.000200 s (local - source, as it corrected the clock) but 1.000000 s is published',
    );
  });
});
