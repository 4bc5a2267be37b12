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
  if (command !== undefined)
    return { name: `htntp ${command}`, role: HTNTP_FEEDERS.has(command) ? 'feeder' : 'monitor' };
  if (READERS.has(comm)) return { name: comm, role: 'reader' };
  if (WRITERS.has(comm)) return { name: comm, role: 'feeder' };
  if (MONITORS.has(comm)) return { name: comm, role: 'monitor' };
  return { name: comm, role: 'other' };
}

/** The process directories under `procRoot` (none if it cannot be read). */
function pidEntries(procRoot: string): string[] {
  try {
    return readdirSync(procRoot).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
}

/** Every SysV attachment visible under `procRoot`, by key. One entry per process and segment. */
export function sysvAttachments(procRoot = '/proc'): Map<number, AttachedProcess[]> {
  const byKey = new Map<number, AttachedProcess[]>();
  for (const entry of pidEntries(procRoot)) {
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

/** An htntp feeder found by its command line: where it writes and as whom it runs now. */
export interface FeederProcess {
  pid: number;
  /** `htntp http`, `htntp gps`, `htntp fixed` */
  name: string;
  /** SHM units it writes (`--unit`/`-u`, or the command's default without --sock). */
  units: number[];
  /** SOCK paths it sends to (`--sock`). */
  socks: string[];
  /** Effective ids from /proc/PID/status: after a --user drop, the dropped ones. */
  uid: number;
  gid: number;
  groups: number[];
}

/** The values of a repeatable option in argv: `--name V` and `--name=V` (and a short alias). */
function optionValues(argv: readonly string[], long: string, short?: string): string[] {
  const values: string[] = [];
  argv.forEach((arg, index) => {
    if ((arg === long || (short !== undefined && arg === short)) && argv[index + 1] !== undefined)
      values.push(argv[index + 1] ?? '');
    else if (arg.startsWith(`${long}=`)) values.push(arg.slice(long.length + 1));
  });
  return values;
}

/** Effective uid, gid and supplementary groups from a /proc/PID/status text. */
export function parseStatusIds(status: string): { uid: number; gid: number; groups: number[] } | undefined {
  const field = (name: string): number[] | undefined =>
    new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/).filter(Boolean).map(Number);
  const uid = field('Uid')?.[1];
  const gid = field('Gid')?.[1];
  if (uid === undefined || gid === undefined) return undefined;
  return { uid, gid, groups: field('Groups') ?? [] };
}

/** Every htntp feeder visible under `procRoot`, from /proc/PID/cmdline and status. */
export function htntpFeeders(procRoot = '/proc'): FeederProcess[] {
  const feeders: FeederProcess[] = [];
  for (const entry of pidEntries(procRoot)) {
    if (Number(entry) === process.pid) continue;
    const argv = (readText(join(procRoot, entry, 'cmdline')) ?? '').split('\0').filter(Boolean);
    const who = describeProcess((readText(join(procRoot, entry, 'comm')) ?? '').trim(), argv);
    if (who.role !== 'feeder' || !who.name.startsWith('htntp ')) continue;
    const ids = parseStatusIds(readText(join(procRoot, entry, 'status')) ?? '');
    if (ids === undefined) continue;
    // `htntp http` retitles itself: its whole command line is then one space-joined string.
    const words = argv.flatMap((arg) => arg.split(' '));
    const socks = optionValues(words, '--sock');
    const explicit = optionValues(words, '--unit', '-u').map(Number).filter(Number.isInteger);
    const defaultUnit = who.name === 'htntp gps' ? 0 : 2;
    const units = explicit.length > 0 ? explicit : socks.length > 0 ? [] : [defaultUnit];
    // --dry-run writes nothing anywhere.
    const dryRun = words.includes('--dry-run');
    feeders.push({
      pid: Number(entry),
      name: who.name,
      units: dryRun ? [] : units,
      socks: dryRun ? [] : socks,
      ...ids,
    });
  }
  return feeders;
}

/** Whether a process with these ids may write a file of this owner and mode (root may). */
export function mayWrite(
  ids: { uid: number; gid: number; groups: readonly number[] },
  file: { uid: number; gid: number; mode: number },
): boolean {
  if (ids.uid === 0) return true;
  if (ids.uid === file.uid) return (file.mode & 0o200) !== 0;
  if (ids.gid === file.gid || ids.groups.includes(file.gid)) return (file.mode & 0o020) !== 0;
  return (file.mode & 0o002) !== 0;
}
