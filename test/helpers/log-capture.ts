// A logger that keeps its lines, for asserting on events.
import { createLogger, type Logger, type LoggerOptions } from '../../src/log.js';

export interface MemoryLogger {
  logger: Logger;
  lines: string[];
  /** `level event` of each text line. */
  events(): string[];
}

export function memoryLogger(options: Omit<LoggerOptions, 'write'> = {}): MemoryLogger {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', syslogPriority: false, ...options, write: (line) => lines.push(line) });
  const events = (): string[] =>
    lines.map((line) => {
      if (line.startsWith('{')) {
        const parsed = JSON.parse(line) as { level: string; event: string };
        return `${parsed.level} ${parsed.event}`;
      }
      return /^(\w+ [a-z][a-z -]*?)(?= \w+=|$)/.exec(line)?.[1] ?? line;
    });
  return { logger, lines, events };
}
