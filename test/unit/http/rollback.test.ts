// Time rollback with expired keys: servers on loopback answering with certificates that chain
// to a trusted CA but are valid only long ago (or only in the future), and Dates inside that
// window. With the local clock known to be right (kernel synchronised, after the floor) they
// are refused; while it is not, they are judged at their own Date, marked time-unverified,
// and the floor still bars any time before it. The kernel's word is injected (the host's
// cannot be changed by a test); the local clock itself is right throughout.
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { realtime } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';
import { ServerClock } from '../../../src/server-clock/server-clock.js';
import { measureOffset } from '../../../src/sources/http/measure.js';
import type { TestCertificate } from '../../helpers/http/tls.js';
import { useTlsServers } from '../../helpers/http/tls-servers.js';
import { expectNear, SYNCHRONISED, UNSYNCHRONISED } from '../../helpers/http/kernel-clock.js';

const DAY = 86_400;
const now = realtime().sec;
const PAST = -632 * DAY;
const FUTURE = 206 * DAY;

const servers = useTlsServers();
let root: TestCertificate;

const CA = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
const LEAF = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
];

/** A server certificate valid for 60 days around now + `shift`, under the trusted root. */
const certificateAround = (shift: number): TestCertificate =>
  servers.authority.issue(
    { subject: '127.0.0.1', notBefore: now + shift - 30 * DAY, notAfter: now + shift + 30 * DAY, extensions: LEAF },
    root,
  );

const serve = (offset: number, count: number, certificate = certificateAround(offset)): Promise<string[]> =>
  servers.serve(offset, certificate, count);

beforeAll(() => {
  // Valid across every window used here.
  root = servers.authority.issue({
    subject: 'htntp rollback root',
    notBefore: now - 1000 * DAY,
    notAfter: now + 1000 * DAY,
    extensions: CA,
  });
});

const capture = (): { lines: string[]; logger: ReturnType<typeof createLogger> } => {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: 'warn', write: (line) => lines.push(line) }) };
};

describe('the local clock synchronised and after the floor', () => {
  const options = { ...SYNCHRONISED, clockFile: null, probes: 2 };

  it('refuses three servers with expired certificates and Dates 632 days back', async () => {
    const result = await measureOffset(await serve(PAST, 3), { ...options, ca: root.cert });
    expect(result.offset).toBeNull();
    for (const server of result.servers) {
      expect(server.status).toBe('failed');
      expect(server.reason).toMatch(
        new RegExp(
          '^tls: CERT_HAS_EXPIRED certificate expired at the local clock, which is known to be right ' +
            String.raw`\(the kernel says .*synchronised.*\): refused`,
        ),
      );
    }
  });

  it('publishes nothing toward three expired servers: two honest of five are no majority', async () => {
    const { lines, logger } = capture();
    const urls = [...(await serve(PAST, 3)), ...(await serve(0.2, 2))];
    const result = await measureOffset(urls, { ...options, ca: root.cert, logger });
    // The refused servers count against the majority of all five (interval.ts): no estimate, and none toward them.
    expect(result.offset).toBeNull();
    expect(result.reason).toMatch(/^no majority/);
    expect(result.servers.map((server) => server.status).slice(0, 3)).toEqual(['failed', 'failed', 'failed']);
    expect(result.servers.map((server) => server.tls)).toEqual([null, null, null, 'verified', 'verified']);
    for (const server of result.servers.slice(3)) expect(server.status).not.toBe('failed');
    expect(result.timeUnverified).toBe(false);
    expect(result.alarm).toBeNull();
    expect(lines.join('\n')).not.toMatch(/local clock is (behind|ahead)/);
  });

  it("publishes the four honest servers' time over three expired ones", async () => {
    const urls = [...(await serve(PAST, 3)), ...(await serve(0.2, 4))];
    const result = await measureOffset(urls, { ...options, ca: root.cert });
    // Does not move toward the expired keys beyond the clock's own error.
    expectNear(result, 0.2);
    expect(result.servers.map((server) => [server.status, server.tls])).toEqual([
      ['failed', null],
      ['failed', null],
      ['failed', null],
      ['ok', 'verified'],
      ['ok', 'verified'],
      ['ok', 'verified'],
      ['ok', 'verified'],
    ]);
    expect(result.alarm).toBeNull();
  });

  it("publishes the one honest server's time over two expired ones", async () => {
    const urls = [...(await serve(PAST, 2)), ...(await serve(-0.3, 1))];
    const result = await measureOffset(urls, { ...options, ca: root.cert });
    expectNear(result, -0.3);
    expect(result.servers.map((server) => server.status)).toEqual(['failed', 'failed', 'ok']);
  });

  it('refuses certificates not yet valid, with Dates 206 days ahead', async () => {
    const result = await measureOffset(await serve(FUTURE, 3), { ...options, ca: root.cert });
    expect(result.offset).toBeNull();
    for (const server of result.servers)
      expect(server.reason).toMatch(
        /^tls: CERT_NOT_YET_VALID certificate not yet valid at the local clock, which is known to be right/,
      );
  });

  it('refuses them through a CONNECT proxy as well: four of seven servers', async () => {
    const urls = [...(await serve(PAST, 4)), ...(await serve(0.1, 3))];
    const result = await measureOffset(urls, { ...options, ca: root.cert, proxy: servers.proxy.uri });
    // Three honest of seven are no majority of all of them: nothing is published, nothing toward the four.
    expect(result.offset).toBeNull();
    expect(result.reason).toMatch(/^no majority/);
    expect(result.servers.map((server) => server.status).slice(0, 4)).toEqual(['failed', 'failed', 'failed', 'failed']);
    for (const server of result.servers.slice(0, 4))
      expect(server.reason).toMatch(/^tls: CERT_HAS_EXPIRED .*known to be right/);
    for (const server of result.servers.slice(4)) {
      expect(server.status).not.toBe('failed');
      expect(server.tls).toBe('verified');
      expect(Math.abs((server.offset ?? NaN) - 0.1)).toBeLessThanOrEqual((server.error ?? NaN) + 1e-3);
    }
  });

  it('keeps ServerClock from becoming ready on three expired servers', async () => {
    const clock = new ServerClock({ servers: await serve(PAST, 3), ca: root.cert, ...SYNCHRONISED, clockFile: null });
    try {
      // Each server refused by the gate, as measureOffset() refuses it.
      const refused = new RegExp(
        String.raw`no server gave a usable Date \(3 failed\).*` +
          'CERT_HAS_EXPIRED certificate expired at the local clock, which is known to be right',
      );
      await expect(clock.ready()).rejects.toThrow(refused);
    } finally {
      clock.close();
    }
  });
});

describe('the local clock not known to be right: the kernel says unsynchronised', () => {
  const options = { ...UNSYNCHRONISED, clockFile: null, probes: 2 };

  it('takes not-yet-valid certificates as time-unverified and raises the alarm against the honest ones', async () => {
    const { lines, logger } = capture();
    const urls = [...(await serve(FUTURE, 3)), ...(await serve(0, 2))];
    const result = await measureOffset(urls, { ...options, ca: root.cert, logger });
    // The majority and window rules as before: three agreeing servers make the time.
    expectNear(result, FUTURE);
    expect(result.timeUnverified).toBe(true);
    expect(result.servers.map((server) => [server.status, server.tls])).toEqual([
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
      ['falseticker', 'verified'],
      ['falseticker', 'verified'],
    ]);
    expect(result.alarm).toMatch(
      /^3 server\(s\) verified only at their own Date agree and 2 verified at the local clock disagree with them/,
    );
    expect(lines.filter((line) => /http alarm/.test(line))).toHaveLength(1);
  });

  it('still publishes no time before the floor: three expired servers 632 days back', async () => {
    const result = await measureOffset(await serve(PAST, 3), { ...options, ca: root.cert });
    expect(result.offset).toBeNull();
    expect(result.reason).toMatch(/before the floor .*: not published/);
    expect(result.servers.map((server) => [server.status, server.tls])).toEqual([
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
      ['ok', 'time-unverified'],
    ]);
  });

  it('keeps ServerClock from becoming ready on them too: its sweep concludes under the same floor', async () => {
    const updates: number[] = [];
    const clock = new ServerClock({ servers: await serve(PAST, 3), ca: root.cert, ...options });
    clock.on('update', (update) => updates.push(update.offset));
    try {
      await expect(clock.ready()).rejects.toThrow(/before the floor .*: not published/);
      // Not even the sweep's interim conclusions published the time 632 days back.
      expect(updates).toEqual([]);
    } finally {
      clock.close();
    }
  });
});

describe('the local clock before the floor (the kernel saying synchronised)', () => {
  it('takes servers after the floor, time-unverified, and refuses a time before it', async () => {
    const clockFile = join(servers.authority.dir, 'clock');
    writeFileSync(clockFile, '');
    // Saved as last good 10 days from now: the local clock reads before it.
    utimesSync(clockFile, now + 10 * DAY, now + 10 * DAY);
    const options = { ...SYNCHRONISED, clockFile, probes: 2, ca: root.cert };
    const later = servers.authority.issue(
      { subject: '127.0.0.1', notBefore: now + 15 * DAY, notAfter: now + 25 * DAY, extensions: LEAF },
      root,
    );
    const ahead = await measureOffset(await serve(20 * DAY, 3, later), options);
    expectNear(ahead, 20 * DAY);
    expect(ahead.servers.every((server) => server.tls === 'time-unverified')).toBe(true);
    const behind = await measureOffset(await serve(5 * DAY, 3), options);
    expect(behind.offset).toBeNull();
    expect(behind.reason).toMatch(
      new RegExp(`before the floor .*the last-good time in ${clockFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
  });
});
