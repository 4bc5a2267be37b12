// Where the external programs of the end-to-end tests are, and the HTNTP_E2E rule:
// with HTNTP_E2E=required (CI) a missing program FAILS the test; otherwise the test
// skips and says why. Never a silent skip.
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it, type TestContext } from 'vitest';

/**
 * Every external program (and the one preload library) the tests and benchmarks start, by
 * name or by path: `.ci/run`'s self-check reads this list (`scripts/test-tools.ts`) and
 * fails on one that no package it installs or extracts provides, and
 * test/unit/tools-declared.test.ts fails on a program started by name that is not here.
 */
export const toolNames = [
  'chronyd',
  'chronyc',
  'ntpd', // ntpsec's, extracted side by side (it conflicts with the chrony package)
  'ntptime', // ntpsec's, beside its ntpd
  'ntpq', // ntpsec's, beside its ntpd (a Python program: see toolEnvironment)
  'ntpshmmon', // gpsd's, extracted side by side (the gpsd package; gpsd-clients lacks it)
  'gpsd', // the GPS benchmark's anchor, beside ntpshmmon; never run as a service
  'socat',
  'htpdate',
  'unshare',
  'ip',
  'cc',
  'make', // node-gyp's builds of the addon and the prebuilds
  'g++',
  'python3', // node-gyp; a datagram socket bound by another program
  'stdbuf',
  'setpriv', // runs a feeder as nobody
  'nsenter', // ntpq inside ntpd's network namespace (doctor)
  'chgrp', // the chrony drop-in's ExecStartPost= (SOCK under the units), doctor's fix
  'chmod',
  'mkfifo', // the GPS benchmark's FIFO to gpsd
  'id',
  'getent', // the feeder's --user/--group lookups
  'ipcs',
  'ipcrm',
  'openssl', // the throwaway CA of the HTTPS tests
  'sh',
  'bash',
  'tar',
  'npm', // comes with Node.js
  'nginx',
  'apache2',
  'lighttpd',
  'haproxy',
  'squid',
  'tinyproxy',
  'libfaketime', // the preload library that shifts a server's clock
  // the prebuilt addons: cross compilers and qemu-user for arm64 / armv7 (package tests)
  'aarch64-linux-gnu-gcc',
  'aarch64-linux-gnu-g++',
  'arm-linux-gnueabihf-gcc',
  'arm-linux-gnueabihf-g++',
  'qemu-aarch64-static',
  'qemu-arm-static',
  'systemd-analyze',
] as const;

export type ToolName = (typeof toolNames)[number];

/** Tools that come with Node.js, which `.ci/run` requires of the host rather than installs. */
export const toolsWithNode: readonly ToolName[] = ['npm'];

export const e2eRequired = process.env.HTNTP_E2E === 'required';

/** Where `.ci/run` extracts ntpsec (`usr/sbin/ntpd` below it). */
export const ntpsecRoot = process.env.HTNTP_NTPSEC_ROOT ?? '/opt/htntp-ntpsec';

/**
 * Where `.ci/run` extracts chrony (`usr/sbin/chronyd`, `usr/bin/chronyc`): installing the
 * chrony package would remove the host's ntpsec, ntp or systemd-timesyncd. Used before PATH.
 */
export const chronyRoot = process.env.HTNTP_CHRONY_ROOT ?? '/opt/htntp-chrony';

/**
 * Where `.ci/run` extracts gpsd (`usr/bin/ntpshmmon`, `usr/sbin/gpsd`): the gpsd package
 * would install a service. Used before PATH.
 */
export const gpsdRoot = process.env.HTNTP_GPSD_ROOT ?? '/opt/htntp-gpsd';

/** The trees `.ci/run` extracts packages into. */
export const extractionRoots: readonly string[] = [ntpsecRoot, chronyRoot, gpsdRoot];

const extracted: Partial<Record<ToolName, string>> = {
  ntpd: join(ntpsecRoot, 'usr/sbin/ntpd'),
  chronyd: join(chronyRoot, 'usr/sbin/chronyd'),
  chronyc: join(chronyRoot, 'usr/bin/chronyc'),
  ntptime: join(ntpsecRoot, 'usr/sbin/ntptime'),
  ntpq: join(ntpsecRoot, 'usr/bin/ntpq'),
  ntpshmmon: join(gpsdRoot, 'usr/bin/ntpshmmon'),
  gpsd: join(gpsdRoot, 'usr/sbin/gpsd'),
};

/** ntpsec's own tools, taken only from its extraction: a system ntpd may be classic ntp. */
const onlyExtracted: readonly ToolName[] = ['ntpd', 'ntptime', 'ntpq'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  // sbin too: chronyd and ip live there and a non-login PATH may lack it.
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find(executable);
}

/** libfaketime.so.1 in the multiarch library directory (/usr/lib/<triplet>/faketime). */
function findLibfaketime(): string | undefined {
  const roots = ['/usr/lib', '/usr/local/lib'];
  for (const root of roots) {
    const direct = join(root, 'faketime', 'libfaketime.so.1');
    if (existsSync(direct)) return direct;
    let entries: string[];
    try {
      entries = readdirSync(root);
    } catch {
      continue;
    }
    const found = entries
      .map((entry) => join(root, entry, 'faketime', 'libfaketime.so.1'))
      .find((path) => existsSync(path));
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The tool's absolute path, or undefined. */
export function findTool(name: ToolName): string | undefined {
  if (name === 'libfaketime') return findLibfaketime();
  const path = extracted[name];
  if (path !== undefined && executable(path)) return path;
  return onlyExtracted.includes(name) ? undefined : onPath(name);
}

/**
 * What the environment of a run of the tool must add: ntpsec's ntpq is Python, and its
 * extracted `ntp` module (and the libntpc.so `.ci/run` links beside it) are not on the
 * interpreter's path.
 */
export function toolEnvironment(name: ToolName): Record<string, string> {
  if (name !== 'ntpq') return {};
  const modules = join(ntpsecRoot, 'usr/lib/python3/dist-packages');
  return { PYTHONPATH: [modules, process.env.PYTHONPATH].filter(Boolean).join(delimiter) };
}

/**
 * ntpsec's ntpq as extracted, as a command: `env` with its toolEnvironment, then the
 * script. Undefined when it is not there.
 */
export function ntpqCommand(): string[] | undefined {
  const ntpq = findTool('ntpq');
  if (ntpq === undefined) return undefined;
  // The loader path too: the C library's own directory, should the link beside the module be missing.
  const library = `LD_LIBRARY_PATH=${join(ntpsecRoot, 'usr/lib/x86_64-linux-gnu/ntp')}`;
  return [
    '/usr/bin/env',
    ...Object.entries(toolEnvironment('ntpq')).map(([name, value]) => `${name}=${value}`),
    library,
    ntpq,
  ];
}

/** Every declared tool and where it is found here (undefined: not found). */
export function toolInventory(): { name: ToolName; path: string | undefined }[] {
  return toolNames.map((name) => ({ name, path: findTool(name) }));
}

const installHint: Record<ToolName, string> = {
  chronyd:
    `apt-get download chrony && dpkg-deb -x it into ${chronyRoot} (or set HTNTP_CHRONY_ROOT, or apt-get ` +
    `install chrony where no other time daemon is installed); .ci/run does it`,
  chronyc: `as chronyd (${chronyRoot}/usr/bin/chronyc)`,
  ntpd:
    `apt-get download ntpsec python3-ntp && dpkg-deb -x each into ${ntpsecRoot} (or set HTNTP_NTPSEC_ROOT); ` +
    `.ci/run does it`,
  ntptime: `apt-get download ntpsec && dpkg-deb -x it into ${ntpsecRoot}; .ci/run does it`,
  ntpq: `as ntpd (${ntpsecRoot}/usr/bin/ntpq)`,
  ntpshmmon: `apt-get download gpsd && dpkg-deb -x it into ${gpsdRoot} (or HTNTP_GPSD_ROOT); .ci/run does it`,
  gpsd: `as ntpshmmon (${gpsdRoot}/usr/sbin/gpsd)`,
  socat: 'apt-get install socat',
  htpdate: 'apt-get install htpdate',
  unshare: 'apt-get install util-linux',
  ip: 'apt-get install iproute2',
  cc: 'apt-get install build-essential',
  make: 'apt-get install build-essential',
  'g++': 'apt-get install build-essential',
  python3: 'apt-get install python3',
  stdbuf: 'apt-get install coreutils',
  setpriv: 'apt-get install util-linux',
  nsenter: 'apt-get install util-linux',
  chgrp: 'apt-get install coreutils',
  chmod: 'apt-get install coreutils',
  mkfifo: 'apt-get install coreutils',

  id: 'apt-get install coreutils',
  getent: 'apt-get install libc-bin',
  ipcs: 'apt-get install util-linux',
  ipcrm: 'apt-get install util-linux',
  openssl: 'apt-get install openssl',
  sh: 'apt-get install dash',
  bash: 'apt-get install bash',
  tar: 'apt-get install tar',
  npm: 'install Node.js >= 20 with its npm',
  nginx: 'apt-get install nginx-light (or nginx)',
  apache2: 'apt-get install apache2',
  lighttpd: 'apt-get install lighttpd',
  haproxy: 'apt-get install haproxy',
  squid: 'apt-get install squid',
  tinyproxy: 'apt-get install tinyproxy',
  libfaketime: 'apt-get install faketime',
  'aarch64-linux-gnu-gcc': 'apt-get install g++-aarch64-linux-gnu',
  'aarch64-linux-gnu-g++': 'apt-get install g++-aarch64-linux-gnu',
  'arm-linux-gnueabihf-gcc': 'apt-get install g++-arm-linux-gnueabihf',
  'arm-linux-gnueabihf-g++': 'apt-get install g++-arm-linux-gnueabihf',
  'qemu-aarch64-static': 'apt-get install qemu-user-static',
  'qemu-arm-static': 'apt-get install qemu-user-static',
  'systemd-analyze': 'apt-get install systemd',
};

/** Tools a daemon needs beyond itself. ntpd runs as root in its own network namespace. */
const companions: Partial<Record<ToolName, ToolName[]>> = {
  ntpd: ['unshare', 'ip'],
  chronyd: ['chronyc'],
  ntpshmmon: ['stdbuf'],
  // Every web server runs with its clock shifted.
  nginx: ['libfaketime'],
  apache2: ['libfaketime'],
  lighttpd: ['libfaketime'],
};

/** Why these tools cannot be used here (undefined: all present). */
export function missingTools(names: readonly ToolName[]): string | undefined {
  const wanted = [...new Set(names.flatMap((name) => [name, ...(companions[name] ?? [])]))];
  const reasons = wanted
    .filter((name) => findTool(name) === undefined)
    .map((name) => `${name} not found (${installHint[name]})`);
  if (wanted.some((name) => name === 'ntpd' || name === 'chronyd') && process.getuid?.() !== 0) {
    reasons.push('the daemons must run as root (chronyd -u root, ntpd in its own network namespace)');
  }
  return reasons.length === 0 ? undefined : reasons.join('; ');
}

/**
 * In a test: the tool's path. Missing: fails under HTNTP_E2E=required, otherwise skips the
 * test with the reason (shown by the reporter and on stderr).
 */
export function e2eTool(context: TestContext, name: ToolName): string {
  const reason = missingTools([name]);
  const path = findTool(name);
  if (reason === undefined && path !== undefined) return path;
  const message = `${reason ?? `${name} not found`}`;
  if (e2eRequired) throw new Error(`HTNTP_E2E=required: ${message}`);
  process.stderr.write(`[htntp e2e] skipping "${context.task.name}": ${message}\n`);
  return context.skip(message);
}

/**
 * describe() for a suite that can only run when `reason` is undefined. Otherwise: under
 * HTNTP_E2E=required the suite holds one failing test (`need`) naming the reason; else it
 * is skipped with the reason in its title and on stderr. Never a silent skip.
 */
export function describeIf(title: string, need: string, reason: string | undefined, body: () => void): void {
  if (reason === undefined) {
    describe(title, body);
  } else if (e2eRequired) {
    describe(title, () => {
      it(need, () => {
        throw new Error(`HTNTP_E2E=required: ${reason}`);
      });
    });
  } else {
    process.stderr.write(`[htntp e2e] skipping "${title}": ${reason}\n`);
    describe.skip(`${title} [skipped: ${reason}]`, body);
  }
}

/** describe() for a suite that needs `tools` (see describeIf). */
export function describeE2e(title: string, tools: readonly ToolName[], body: () => void): void {
  describeIf(title, `needs ${tools.join(', ')}`, missingTools(tools), body);
}
