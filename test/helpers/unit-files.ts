// contrib/systemd's files as the tests read them: the text, and a unit file's settings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './process.js';

/** A file below contrib/systemd (`htntp.service`, `chrony.service.d/htntp-sock.conf` ...). */
export function contribFile(name: string): string {
  return readFileSync(join(repoRoot, 'contrib/systemd', name), 'utf8');
}

/** `Key=value` settings of a unit file, comments and sections dropped, repeated keys kept in order. */
export function unitSettings(text: string): [string, string][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('[') && line.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}
