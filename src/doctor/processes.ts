// Which processes are attached to which SysV segment, from /proc/<pid>/maps: a SysV
// attachment shows as `/SYSV<key in 8 hex digits> (deleted)` with the segment's shmid in
// the inode column, so a process still attached to a removed segment of the same key is
// told apart from one attached to the current segment. Only the processes whose maps
// this user may read are seen (all of them as root).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a process does with an SHM refclock segment, from its name and command line. */
export type ProcessRole = 'feeder' | 'reader' | 'monitor' | 'other';

export interface AttachedProcess {
  pid: number;
  /** comm (chronyd, ntpd, gpsd, node ...), or `htntp <command>` for htntp. */
  name: string;
  role: ProcessRole;
  /** The segment the process maps (the maps inode column). */
  shmId: number;
}

const READERS = new Set(['chronyd', 'ntpd']);
const WRITERS = new Set(['gpsd', 'ntpd_driver', 'ptp4l', 'phc2sys']);
const MONITORS = new Set(['ntpshmmon', 'ipcs']);
const HTNTP_FEEDERS = new Set(['http', 'gps', 'fixed']);
const HTNTP_COMMANDS = new Set([...HTNTP_FEEDERS, 'status', 'doctor', 'config']);

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined; // gone, or not ours to read
  }
}

/** htntp's command from its argv (`node .../htntp.js http ...`, or a title `htntp http ...`). */
function htntpCommand(argv: string[]): string | undefined {
  const index = argv.findIndex((arg) => /(^|\/)htntp(\.js)?$/.test(arg));
  if (index === -1) return undefined;
  // `http` is the default command: without a known command word, that is what runs.
  return argv.slice(index + 1).find((arg) => HTNTP_COMMANDS.has(arg)) ?? 'http';
}

export function describeProcess(comm: string, argv: string[]): { name: string; role: ProcessRole } {
  const command = htntpCommand(argv.flatMap((arg) => arg.split(' ')));
  if (command !== undefined) return { name: `htntp ${command}`, role: HTNTP_FEEDERS.has(command) ? 'feeder' : 'monitor' };
  if (READERS.has(comm)) return { name: comm, role: 'reader' };
  if (WRITERS.has(comm)) return { name: comm, role: 'feeder' };
  if (MONITORS.has(comm)) return { name: comm, role: 'monitor' };
  return { name: comm, role: 'other' };
}

/** Every SysV attachment visible under `procRoot`, by key. One entry per process and segment. */
export function sysvAttachments(procRoot = '/proc'): Map<number, AttachedProcess[]> {
  const byKey = new Map<number, AttachedProcess[]>();
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return byKey;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const maps = readText(join(procRoot, entry, 'maps'));
    if (maps === undefined || !maps.includes('/SYSV')) continue;
    const pid = Number(entry);
    const comm = (readText(join(procRoot, entry, 'comm')) ?? '').trim();
    const argv = (readText(join(procRoot, entry, 'cmdline')) ?? '').split('\0').filter(Boolean);
    const who = describeProcess(comm, argv);
    const seen = new Set<string>();
    for (const line of maps.split('\n')) {
      const match = /^\S+\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\/SYSV([0-9a-f]{8})\b/.exec(line);
      if (match === null) continue;
      const shmId = Number(match[1]);
      const key = Number.parseInt(match[2] ?? '', 16);
      if (seen.has(`${key}:${shmId}`)) continue;
      seen.add(`${key}:${shmId}`);
      const list = byKey.get(key) ?? [];
      list.push({ pid, ...who, shmId });
      byKey.set(key, list);
    }
  }
  return byKey;
}
