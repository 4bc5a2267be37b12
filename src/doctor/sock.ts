// doctor for chrony's SOCK refclock sockets: the path is a Unix datagram socket, who
// listens on it (/proc/net/unix gives the inode of a bound path, /proc/PID/fd the process
// holding that inode), whether a non-root feeder may write it, whether a chrony config
// names it, and what chronyd makes of its refid.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { sockPermissionFix } from '../sock.js';
import type { ChronySockConfig } from './daemon-config.js';
import type { Answer, ChronySource, ChronyView } from './daemon-query.js';
import { finish, type Finding, type Verdict } from './diagnose.js';
import { mayWrite, type FeederProcess } from './processes.js';

/** Processes that bind a SOCK refclock socket: chronyd, ntpd-rs (its daemon binary is ntp-daemon). */
const SOCK_READERS = new Set(['chronyd', 'ntp-daemon', 'ntpd-rs']);

export interface SockFacts {
  path: string;
  /** lstat of the path, undefined if absent. */
  stat?: { socket: boolean; mode: number; uid: number; gid: number };
  /** The processes holding the socket bound at the path. */
  holders: { pid: number; name: string }[];
  /** /proc showed every process (root). */
  procComplete: boolean;
  configured: ChronySockConfig[];
  configFiles: string[];
  chrony?: Answer<ChronyView>;
  /** htntp feeders whose command line sends to this path. */
  feeders: FeederProcess[];
}

export interface SockDiagnosis {
  path: string;
  verdict: Verdict;
  summary: string;
  fix?: string;
  findings: Finding[];
  exists: boolean;
  mode?: string;
  uid?: number;
  gid?: number;
  holders: { pid: number; name: string }[];
  feeders: FeederProcess[];
  configured: ChronySockConfig[];
  chrony?: ChronySource;
}

/** Inodes of the Unix sockets bound to `path` (/proc/net/unix: the inode is field 7, the path field 8). */
function boundInodes(path: string, procRoot: string): Set<string> {
  const inodes = new Set<string>();
  let table: string;
  try {
    table = readFileSync(join(procRoot, 'net', 'unix'), 'utf8');
  } catch {
    return inodes;
  }
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[7] === path && fields[6] !== undefined) inodes.add(fields[6]);
  }
  return inodes;
}

function holdersOf(inodes: Set<string>, procRoot: string): { pid: number; name: string }[] {
  if (inodes.size === 0) return [];
  const holders: { pid: number; name: string }[] = [];
  for (const entry of readdirSync(procRoot).filter((name) => /^\d+$/.test(name))) {
    let fds: string[];
    try {
      fds = readdirSync(join(procRoot, entry, 'fd'));
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(join(procRoot, entry, 'fd', fd)))?.[1] ?? '');
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let name = '?';
    try {
      name = readFileSync(join(procRoot, entry, 'comm'), 'utf8').trim();
    } catch {
      // gone meanwhile
    }
    holders.push({ pid: Number(entry), name });
  }
  return holders;
}

export function sockFacts(
  path: string,
  options: {
    procRoot?: string;
    configured: ChronySockConfig[];
    configFiles: string[];
    chrony?: Answer<ChronyView>;
    feeders: readonly FeederProcess[];
  },
): SockFacts {
  const procRoot = options.procRoot ?? '/proc';
  let stat: SockFacts['stat'];
  try {
    const found = lstatSync(path);
    stat = { socket: found.isSocket(), mode: found.mode & 0o777, uid: found.uid, gid: found.gid };
  } catch {
    stat = undefined;
  }
  return {
    path,
    stat,
    holders: stat?.socket ? holdersOf(boundInodes(path, procRoot), procRoot) : [],
    procComplete: process.geteuid?.() === 0,
    configured: options.configured.filter((entry) => entry.path === path),
    configFiles: options.configFiles,
    chrony: options.chrony,
    feeders: options.feeders.filter((feeder) => feeder.socks.includes(path)),
  };
}

const named = (processes: readonly { pid: number; name: string }[]): string =>
  processes.map((entry) => `${entry.name}[${entry.pid}]`).join(', ');

/** The socket's own findings: there, a socket, listened on, and writable by its feeders. */
function socketFindings(facts: SockFacts, where: string, findings: Finding[]): void {
  const { path, stat } = facts;
  if (stat === undefined) {
    findings.push({
      severity: 'problem',
      code: 'sock-absent',
      message:
        facts.configured.length > 0
          ? `no socket at ${path}, configured in ${where}`
          : `no socket at ${path} and no chrony or ntpd-rs config names it`,
      fix:
        'the time daemon creates the socket when it starts with it in its config (chrony: refclock SOCK <path>; ' +
        'ntpd-rs: [[source]] mode = "sock"): start or restart it; the feeder\'s --sock must be the same path',
    });
    return;
  }
  if (!stat.socket) {
    findings.push({
      severity: 'problem',
      code: 'sock-not-socket',
      message: `${path} exists but is not a socket`,
      fix: 'remove it and restart the time daemon, which creates the socket there',
    });
    return;
  }
  if (facts.procComplete && facts.holders.length === 0) {
    findings.push({
      severity: 'problem',
      code: 'sock-stale',
      message: `nothing listens on ${path}: a leftover socket file (the time daemon stopped without removing it)`,
      fix: 'start the time daemon (it replaces the file); datagrams sent there are lost',
    });
  } else if (facts.holders.length > 0 && !facts.holders.some((holder) => SOCK_READERS.has(holder.name))) {
    findings.push({
      severity: 'warning',
      code: 'sock-not-daemon',
      message: `${path} is held by ${named(facts.holders)}, not chronyd or ntpd-rs`,
    });
  }
  feederFindings(facts, stat, findings);
  if (facts.configured.length === 0) {
    findings.push({
      severity: 'warning',
      code: 'sock-config-not-found',
      message: `no searched config names ${path} (searched: ${facts.configFiles.join(', ') || 'none found'})`,
    });
  }
}

/** Whether the socket's feeders may write it, and whether there is one. */
function feederFindings(facts: SockFacts, stat: NonNullable<SockFacts['stat']>, findings: Finding[]): void {
  const { path } = facts;
  const owner = `0${stat.mode.toString(8)} uid ${stat.uid} gid ${stat.gid}`;
  const denied = facts.feeders.filter((feeder) => !mayWrite(feeder, stat));
  if (denied.length > 0) {
    const ids = denied
      .map(
        (feeder) =>
          `${feeder.name}[${feeder.pid}] (uid ${feeder.uid}, ` +
          `groups ${[feeder.gid, ...feeder.groups.filter((group) => group !== feeder.gid)].join(' ')})`,
      )
      .join(', ');
    findings.push({
      severity: 'problem',
      code: 'sock-denied',
      message: `${ids} may not write ${path} (${owner}): every sample gets EACCES`,
      fix: sockPermissionFix(path),
    });
  } else if (facts.procComplete && facts.feeders.length === 0) {
    findings.push({
      severity: 'problem',
      code: 'sock-no-feeder',
      message: `no feeder sends to ${path}: no running htntp has --sock ${path}`,
      fix:
        `start htntp with --sock ${path} (systemd: in HTNTP_HTTP_OPTS of /etc/default/htntp, or the gps ` +
        `instance's env file, then systemctl restart htntp)`,
    });
  }
  if (facts.feeders.length === 0 && (stat.mode & 0o022) === 0) {
    findings.push({
      severity: 'warning',
      code: 'sock-private',
      message: `${path} is ${owner}: a feeder that is not root gets EACCES (the daemon never chmods it)`,
      fix: sockPermissionFix(path),
    });
  }
}

/** What chronyd makes of each configured refid: listed, and taking samples. */
function chronyFindings(facts: SockFacts, findings: Finding[]): ChronySource | undefined {
  let source: ChronySource | undefined;
  for (const entry of facts.configured.filter((configured) => configured.daemon === 'chrony')) {
    if (facts.chrony === undefined || entry.refid === undefined) continue;
    if (!facts.chrony.ok) {
      findings.push({
        severity: 'unchecked',
        code: 'chrony-unreachable',
        message: `could not ask chronyd: ${facts.chrony.reason}`,
      });
      continue;
    }
    source = facts.chrony.value.sources.find((candidate) => candidate.mode === '#' && candidate.name === entry.refid);
    if (source === undefined) {
      findings.push({
        severity: 'problem',
        code: 'chrony-missing',
        message: `chronyd does not list refid ${entry.refid} of ${entry.file}:${entry.line}`,
        fix: 'chronyd reads its config at start: restart it (systemctl restart chrony)',
      });
    } else if (source.reach === 0) {
      const why =
        facts.feeders.length === 0
          ? `no feeder sends to ${facts.path}`
          : `the datagrams of ${named(facts.feeders)} do not arrive: see its log (socket unavailable ... hint=)`;
      findings.push({
        severity: 'problem',
        code: 'chrony-no-samples',
        message: `chronyd has taken no sample from refid ${entry.refid} (reach 0): ${why}`,
        fix: findings.find((finding) => finding.severity === 'problem')?.fix ?? `start htntp with --sock ${facts.path}`,
      });
    }
  }
  return source;
}

export function diagnoseSock(facts: SockFacts): SockDiagnosis {
  const { path, stat } = facts;
  const findings: Finding[] = [];
  const where = facts.configured
    .map(
      (entry) =>
        `${entry.file}:${entry.line} (${entry.daemon}${entry.refid === undefined ? '' : ` refid ${entry.refid}`})`,
    )
    .join(', ');
  socketFindings(facts, where, findings);
  const source = chronyFindings(facts, findings);
  const { verdict, summary, fix } = finish(
    findings,
    () =>
      [
        facts.feeders.length > 0 ? `fed by ${named(facts.feeders)}` : undefined,
        facts.holders.length > 0 ? `held by ${named(facts.holders)}` : undefined,
        source === undefined
          ? undefined
          : `chronyd: ${source.name} reach ${source.reach.toString(8)} state ${source.state}`,
      ]
        .filter((part): part is string => part !== undefined)
        .join('; ') || 'nothing wrong seen',
  );
  return {
    path,
    verdict,
    summary,
    ...(fix === undefined ? {} : { fix }),
    findings,
    exists: stat !== undefined,
    ...(stat === undefined ? {} : { mode: `0${stat.mode.toString(8)}`, uid: stat.uid, gid: stat.gid }),
    holders: facts.holders,
    feeders: facts.feeders,
    configured: facts.configured,
    ...(source === undefined ? {} : { chrony: source }),
  };
}
