// One line per event on stderr, readable by people and by journald: `text` is
// `level event key=value ...`, `json` is one object per line.
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
  write?: (line: string) => void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function textValue(value: unknown): string {
  const text = typeof value === 'string' ? value : value instanceof Error ? value.message : JSON.stringify(value);
  return text !== undefined && /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text ?? String(value));
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const { format = 'text', level = 'info', write = (line: string) => process.stderr.write(`${line}\n`) } = options;
  const emit = (lineLevel: LogLevel, event: string, fields: LogFields = {}): void => {
    if (RANK[lineLevel] < RANK[level]) return;
    if (format === 'json') {
      const plain = Object.fromEntries(
        Object.entries(fields).map(([key, value]) => [key, value instanceof Error ? value.message : value]),
      );
      write(JSON.stringify({ time: new Date().toISOString(), level: lineLevel, event, ...plain }));
      return;
    }
    const pairs = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${textValue(value)}`);
    write([lineLevel, event, ...pairs].join(' '));
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
