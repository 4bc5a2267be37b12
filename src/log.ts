// One line per event on stderr, readable by people and by journald: `text` is
// `level event key=value ...` (journald adds the time), `json` is one object per line.
// Every line passes through redactCredentials: proxy and URL credentials never reach a log.
import { fstatSync } from 'node:fs';
import { realtime } from './clock.js';
import { formatUtc } from './time.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  format?: 'text' | 'json';
  /** Lowest level written (default info). */
  level?: LogLevel;
  /**
   * Prefix text lines with the syslog priority (`<4>` for warn ...), which journald turns
   * into the entry's priority (default: when stderr is the journal stream, see stderrIsJournal).
   */
  syslogPriority?: boolean;
  write?: (line: string) => void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

// scheme://userinfo@ up to the last @ of the authority (passwords may hold a raw @;
// a token alone is a credential too)
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"']+@/gi;
// user:password@host without a scheme, as `--proxy user:pass@proxy:3128` is often written
const BARE_USERINFO = /(^|[\s"'=(<,[])[^\s/?#@:"'=]+:[^\s/?#"']*@(?=[\w[])/g;
// Authorization / Proxy-Authorization header values
const AUTHORIZATION = /\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]+/gi;

/**
 * systemd sets JOURNAL_STREAM=<dev>:<inode> for a service whose stderr goes to the
 * journal; a child whose stderr was redirected elsewhere inherits the variable, hence
 * the comparison with stderr itself (as sd_journal_stream_fd's documentation advises).
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (match === null) return false;
  try {
    const stat = fstatSync(2, { bigint: true });
    return stat.dev === BigInt(match[1] ?? '') && stat.ino === BigInt(match[2] ?? '');
  } catch {
    return false;
  }
}

/** Replaces URL credentials (user:pass@) and Authorization values with `***`. */
export function redactCredentials(text: string): string {
  return text.replace(URL_USERINFO, '$1***@').replace(BARE_USERINFO, '$1***@').replace(AUTHORIZATION, '$1***');
}

function textValue(value: unknown): string {
  const text = typeof value === 'string' ? value : value instanceof Error ? value.message : JSON.stringify(value);
  return text !== undefined && /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text ?? String(value));
}

function jsonValue(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const code = (value as NodeJS.ErrnoException).code;
  return code === undefined ? value.message : `${value.message} (${code})`;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const {
    format = 'text',
    level = 'info',
    syslogPriority = stderrIsJournal(),
    write = (line: string) => process.stderr.write(`${line}\n`),
  } = options;
  const emit = (lineLevel: LogLevel, event: string, fields: LogFields = {}): void => {
    if (RANK[lineLevel] < RANK[level]) return;
    if (format === 'json') {
      const plain = Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, jsonValue(value)]));
      write(redactCredentials(JSON.stringify({ time: formatUtc(realtime()), level: lineLevel, event, ...plain })));
      return;
    }
    const pairs = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${textValue(value)}`);
    const prefix = syslogPriority ? `<${SYSLOG_PRIORITY[lineLevel]}>` : '';
    write(prefix + redactCredentials([lineLevel, event, ...pairs].join(' ')));
  };
  return {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
  };
}

/** Discards everything: the default for library callers. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
