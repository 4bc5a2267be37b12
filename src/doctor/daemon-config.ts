// The SHM units the time daemons' config files register: chrony (`refclock SHM N`),
// ntpsec (`refclock shm unit N`) and classic ntpd or ntpsec's legacy form
// (`server 127.127.28.N` + `fudge 127.127.28.N refid X time1 T`). Paths are parameters so
// a diagnosis can be pointed at any files (tests, chroots).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type ConfigDaemon = 'chrony' | 'ntpd';

export interface ConfiguredUnit {
  daemon: ConfigDaemon;
  file: string;
  /** 1-based line number */
  line: number;
  unit: number;
  refid?: string;
  /** Seconds the daemon adds to every sample (chrony `offset`, ntpd `time1`). */
  offset: number;
  noselect: boolean;
}

/** A SOCK refclock: chrony's `refclock SOCK /path` line or ntpd-rs's `[[source]] mode = "sock"`. */
export interface ChronySockConfig {
  daemon: 'chrony' | 'ntpd-rs';
  file: string;
  line: number;
  path: string;
  refid?: string;
}

export interface ConfigPaths {
  /** Files or directories (searched recursively for *.conf) of chrony. */
  chrony: readonly string[];
  /** ntp.conf files of ntpsec or classic ntpd. */
  ntp: readonly string[];
  /** ntp.toml files of ntpd-rs. */
  ntpdRs?: readonly string[];
}

export const DEFAULT_CONFIG_PATHS: ConfigPaths = {
  chrony: ['/etc/chrony'],
  ntp: ['/etc/ntpsec/ntp.conf', '/etc/ntp.conf'],
  ntpdRs: ['/etc/ntpd-rs/ntp.toml'],
};

export interface DaemonConfig {
  units: ConfiguredUnit[];
  /** The files that were read. */
  files: string[];
  /** chronyd command sockets named by `bindcmdaddress /path`. */
  chronySockets: string[];
  /** chrony SOCK refclocks. */
  socks: ChronySockConfig[];
}

function confFiles(path: string): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return [];
  }
  if (stat.isFile()) return [path];
  if (!stat.isDirectory()) return [];
  return readdirSync(path)
    .sort()
    .flatMap((name) => {
      const child = join(path, name);
      try {
        const childStat = statSync(child);
        if (childStat.isDirectory()) return confFiles(child);
        return name.endsWith('.conf') ? [child] : [];
      } catch {
        return [];
      }
    });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function lines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** The value after `name` in a list of words, if any. */
function wordAfter(words: string[], name: string): string | undefined {
  const index = words.findIndex((word) => word.toLowerCase() === name);
  return index === -1 ? undefined : words[index + 1];
}

function parseChrony(file: string, result: DaemonConfig): void {
  lines(file).forEach((text, index) => {
    const words = text
      .replace(/[#!;%].*$/, '')
      .trim()
      .split(/\s+/);
    const directive = words[0]?.toLowerCase();
    if (directive === 'bindcmdaddress' && words[1]?.startsWith('/')) result.chronySockets.push(words[1]);
    if (directive === 'refclock' && words[1]?.toUpperCase() === 'SOCK' && words[2] !== undefined) {
      const refid = wordAfter(words, 'refid');
      result.socks.push({
        daemon: 'chrony',
        file,
        line: index + 1,
        path: words[2],
        ...(refid === undefined ? {} : { refid }),
      });
    }
    if (directive !== 'refclock' || words[1]?.toUpperCase() !== 'SHM') return;
    const unit = Number((words[2] ?? '').split(':')[0]);
    if (!Number.isInteger(unit)) return;
    result.units.push(refclockEntry('chrony', file, index, unit, words, 'offset'));
  });
}

/** One refclock line's unit: its refid, its constant correction (`offsetWord`) and noselect. */
function refclockEntry(
  daemon: ConfigDaemon,
  file: string,
  index: number,
  unit: number,
  words: string[],
  offsetWord: string,
): ConfiguredUnit {
  const refid = wordAfter(words, 'refid');
  return {
    daemon,
    file,
    line: index + 1,
    unit,
    ...(refid === undefined ? {} : { refid }),
    offset: Number(wordAfter(words, offsetWord) ?? 0),
    noselect: words.includes('noselect'),
  };
}

function parseNtp(file: string, result: DaemonConfig): void {
  const fudges = new Map<number, { refid?: string; offset: number }>();
  const found: ConfiguredUnit[] = [];
  lines(file).forEach((text, index) => {
    const words = text.replace(/#.*$/, '').trim().split(/\s+/);
    const directive = words[0]?.toLowerCase();
    const legacy = /^127\.127\.28\.(\d+)$/.exec(words[1] ?? '');
    if ((directive === 'server' || directive === 'peer' || directive === 'pool') && legacy) {
      found.push({
        daemon: 'ntpd',
        file,
        line: index + 1,
        unit: Number(legacy[1]),
        offset: 0,
        noselect: words.includes('noselect'),
      });
    } else if (directive === 'fudge' && legacy) {
      const refid = wordAfter(words, 'refid');
      fudges.set(Number(legacy[1]), {
        ...(refid === undefined ? {} : { refid }),
        offset: Number(wordAfter(words, 'time1') ?? 0),
      });
    } else if (directive === 'refclock' && words[1]?.toLowerCase() === 'shm') {
      found.push(refclockEntry('ntpd', file, index, Number(wordAfter(words, 'unit') ?? 0), words, 'time1'));
    }
  });
  for (const entry of found) {
    const fudge = fudges.get(entry.unit);
    result.units.push(fudge === undefined ? entry : { ...entry, ...fudge });
  }
}

/** A TOML basic or literal string value of one line, as ntp.toml writes paths and modes. */
function tomlString(value: string): string | undefined {
  const match = /^"((?:[^"\\]|\\.)*)"|^'([^']*)'/.exec(value.trim());
  if (match === null) return undefined;
  return match[2] ?? (match[1] ?? '').replace(/\\(["\\])/g, '$1');
}

/** ntpd-rs's `[[source]]` tables with `mode = "sock"`: their `path` (keys of one line each). */
function parseNtpdRs(file: string, result: DaemonConfig): void {
  let source: { line: number; mode?: string; path?: string } | undefined;
  const flush = (): void => {
    if (source?.mode === 'sock' && source.path !== undefined)
      result.socks.push({ daemon: 'ntpd-rs', file, line: source.line, path: source.path });
    source = undefined;
  };
  lines(file).forEach((text, index) => {
    const line = text.trim();
    if (line.startsWith('[')) {
      flush();
      if (/^\[\[\s*source\s*\]\]/.test(line)) source = { line: index + 1 };
      return;
    }
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (source === undefined || pair === null) return;
    const value = tomlString(pair[2] ?? '');
    if (pair[1] === 'mode' && value !== undefined) source.mode = value;
    if (pair[1] === 'path' && value !== undefined) source.path = value;
  });
  flush();
}

/** Every SHM unit registered in the given config files (missing files are skipped). */
export function readDaemonConfig(paths: ConfigPaths = DEFAULT_CONFIG_PATHS): DaemonConfig {
  const result: DaemonConfig = { units: [], files: [], chronySockets: [], socks: [] };
  for (const file of paths.chrony.flatMap(confFiles)) {
    result.files.push(file);
    parseChrony(file, result);
  }
  for (const file of paths.ntp.flatMap(confFiles)) {
    result.files.push(file);
    parseNtp(file, result);
  }
  for (const file of (paths.ntpdRs ?? []).filter(isFile)) {
    result.files.push(file);
    parseNtpdRs(file, result);
  }
  return result;
}
