// Stamps the build time into dist/build-time.json: the floor below which no time is
// published (src/floor.ts). SOURCE_DATE_EPOCH (reproducible builds) when set: never later
// than the build itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const epoch = process.env.SOURCE_DATE_EPOCH;
const seconds = epoch !== undefined && /^\d+$/.test(epoch) ? Number(epoch) : Math.floor(Date.now() / 1000);
const file = join(root, 'dist', 'build-time.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify({ builtAt: new Date(seconds * 1000).toISOString() })}\n`);
process.stdout.write(`stamp-build: ${file} ${new Date(seconds * 1000).toISOString()}\n`);
