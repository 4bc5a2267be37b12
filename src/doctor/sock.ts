// doctor for chrony's SOCK refclock sockets: the path is a Unix datagram socket, who
// listens on it (/proc/net/unix gives the inode of a bound path, /proc/PID/fd the process
// holding that inode), whether a non-root feeder may write it, whether a chrony config
// names it, and what chronyd makes of its refid.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ChronySockConfig } from './daemon-config.js';
import type { Answer, ChronySource, ChronyView } from './daemon-query.js';
import { finish, type Finding, type Verdict } from './diagnose.js';

export interface SockFacts {
  path: string;
  /** lstat of the path, undefined if absent. */
  stat?: { socket: boolean; mode: number; uid: number };
  /** The processes holding the socket bound at the path. */
  holders: { pid: number; name: string }[];
  /** /proc showed every process (root). */
  procComplete: boolean;
  configured: ChronySockConfig[];
  configFiles: string[];
  chrony?: Answer<ChronyView>;
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
  holders: { pid: number; name: string }[];
  configured: ChronySockConfig[];
  chrony?: ChronySource;
}

/** Inodes of the Unix sockets bound to `path` (/proc/net/unix: the inode is field 7, the path field 8). */
function boundInodes(path: string, procRoot: string): Set<string> {
  const inodes = new Set<string>();
  let table = '';
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

export function sockFacts(path: string, options: { procRoot?: string; configured: ChronySockConfig[]; configFiles: string[]; chrony?: Answer<ChronyView> }): SockFacts {
  const procRoot = options.procRoot ?? '/proc';
  let stat: SockFacts['stat'];
  try {
    const found = lstatSync(path);
    stat = { socket: found.isSocket(), mode: found.mode & 0o777, uid: found.uid };
  } catch {
    stat = undefined;
  }
  return {
    path,
    ...(stat === undefined ? {} : { stat }),
    holders: stat?.socket ? holdersOf(boundInodes(path, procRoot), procRoot) : [],
    procComplete: process.geteuid?.() === 0,
    configured: options.configured.filter((entry) => entry.path === path),
    configFiles: options.configFiles,
    ...(options.chrony === undefined ? {} : { chrony: options.chrony }),
  };
}

export function diagnoseSock(facts: SockFacts): SockDiagnosis {
  const { path, stat } = facts;
  const findings: Finding[] = [];
  const where = facts.configured.map((entry) => `${entry.file}:${entry.line}${entry.refid === undefined ? '' : ` (refid ${entry.refid})`}`).join(', ');
  let source: ChronySource | undefined;
  if (stat === undefined) {
    findings.push({
      severity: 'problem',
      code: 'sock-absent',
      message: facts.configured.length > 0 ? `no socket at ${path}, configured in ${where}` : `no socket at ${path} and no chrony config names it`,
      fix: 'chronyd creates the socket when it starts with `refclock SOCK <path>` in its config: start (or restart) chronyd; the feeder\'s --sock must be the same path',
    });
  } else if (!stat.socket) {
    findings.push({ severity: 'problem', code: 'sock-not-socket', message: `${path} exists but is not a socket`, fix: 'remove it and restart chronyd, which creates the socket there' });
  } else {
    if (facts.procComplete && facts.holders.length === 0) {
      findings.push({ severity: 'problem', code: 'sock-stale', message: `nothing listens on ${path}: a leftover socket file (chronyd stopped without removing it)`, fix: 'start chronyd (it replaces the file); datagrams sent there are lost' });
    } else if (facts.holders.length > 0 && !facts.holders.some((holder) => holder.name === 'chronyd')) {
      findings.push({ severity: 'warning', code: 'sock-not-chronyd', message: `${path} is held by ${facts.holders.map((holder) => `${holder.name}[${holder.pid}]`).join(', ')}, not chronyd` });
    }
    if ((stat.mode & 0o002) === 0) {
      findings.push({
        severity: 'warning',
        code: 'sock-private',
        message: `${path} is 0${stat.mode.toString(8)} owned by uid ${stat.uid}: a feeder running as another user gets EACCES (chronyd never chmods it)`,
        fix: 'run the feeder as root (htntp --user drops privileges only after opening its sinks), or as the owner',
      });
    }
    if (facts.configured.length === 0) {
      findings.push({ severity: 'warning', code: 'sock-config-not-found', message: `no searched chrony config names ${path} (searched: ${facts.configFiles.join(', ') || 'none found'})` });
    }
  }
  for (const entry of facts.configured) {
    if (facts.chrony === undefined || entry.refid === undefined) continue;
    if (!facts.chrony.ok) {
      findings.push({ severity: 'unchecked', code: 'chrony-unreachable', message: `could not ask chronyd: ${facts.chrony.reason}` });
      continue;
    }
    source = facts.chrony.value.sources.find((candidate) => candidate.mode === '#' && candidate.name === entry.refid);
    if (source === undefined) {
      findings.push({ severity: 'problem', code: 'chrony-missing', message: `chronyd does not list refid ${entry.refid} of ${entry.file}:${entry.line}`, fix: 'restart chronyd to read its config' });
    } else if (source.reach === 0) {
      findings.push({ severity: 'warning', code: 'chrony-no-samples', message: `chronyd has accepted no sample from refid ${entry.refid} (reach 0): no feeder sends to ${path}, or its datagrams are refused` });
    }
  }
  const { verdict, summary, fix } = finish(findings, () =>
    [facts.holders.length > 0 ? `held by ${facts.holders.map((holder) => `${holder.name}[${holder.pid}]`).join(', ')}` : undefined, source === undefined ? undefined : `chronyd: ${source.name} reach ${source.reach.toString(8)} state ${source.state}`]
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
    ...(stat === undefined ? {} : { mode: `0${stat.mode.toString(8)}`, uid: stat.uid }),
    holders: facts.holders,
    configured: facts.configured,
    ...(source === undefined ? {} : { chrony: source }),
  };
}
