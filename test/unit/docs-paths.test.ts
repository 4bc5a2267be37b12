// Every repository path that README.md and docs/*.md name exists: in prose, code spans and
// code blocks, paths under the package's own folders (`src/...`, `test/...`, `.ci/run`),
// and every relative Markdown link, read from the document's own folder.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/process.js';

const FOLDERS = ['src', 'test', 'docs', 'bench', 'contrib', 'native', 'scripts', '.ci', 'bin', 'examples'];

/**
 * A path that starts at one of FOLDERS, not inside a longer path or URL (`/usr/bin/x`,
 * `node_modules/.bin`). It runs on over `{a,b}`, `*` and `<name>` so that those can be read.
 */
const REPO_PATH = new RegExp(
  `(?<![\\w./@-])(?:${FOLDERS.map((folder) => folder.replace('.', '\\.')).join('|')})/[\\w.@*{},<>/-]*`,
  'g',
);

/** `[text](target)`: a link whose target is neither a URL, a mail address nor an anchor. */
const RELATIVE_LINK = /\]\((?![a-z][a-z+.-]*:|#)([^)\s]+)\)/g;

interface PathReference {
  /** `docs/x.md:12` */
  where: string;
  /** The path as written. */
  written: string;
  /** Repository-relative path to check, `{a,b}` and `*` still in it. */
  path: string;
}

function documents(): string[] {
  const docs = readdirSync(join(repoRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

/** The path as the repository spells it: no trailing punctuation, `:line` or `#anchor`. */
function trimmed(written: string): string {
  return written
    .replace(/#.*$/, '')
    .replace(/:\d+(?:-\d+)?$/, '')
    .replace(/[.,;:]+$/, '');
}

function pathReferences(document: string, text: string): PathReference[] {
  const found: PathReference[] = [];
  text.split('\n').forEach((line, index) => {
    const where = `${document}:${index + 1}`;
    for (const match of line.matchAll(REPO_PATH)) {
      found.push({ where, written: match[0], path: trimmed(match[0]) });
    }
    for (const match of line.matchAll(RELATIVE_LINK)) {
      const target = match[1] ?? '';
      const path = join(dirname(document), trimmed(target));
      // The paths REPO_PATH found already, when the link names them from the root.
      if (!found.some((reference) => reference.where === where && reference.path === path)) {
        found.push({ where, written: target, path });
      }
    }
  });
  return found;
}

/** `test/{unit,sim}` -> `test/unit`, `test/sim`. */
function expandBraces(path: string): string[] {
  const group = /\{([^{}]*)\}/.exec(path);
  if (group === null) return [path];
  const [whole, inner = ''] = group;
  return inner.split(',').flatMap((choice) => expandBraces(path.replace(whole, choice)));
}

/** Whether a path exists; `*` matches within one name, `<name>` stands for any entry. */
function exists(path: string): boolean {
  let candidates = [repoRoot];
  for (const segment of path.split('/').filter((part) => part !== '')) {
    if (!/[*<]/.test(segment)) {
      candidates = candidates.map((base) => join(base, segment)).filter((candidate) => existsSync(candidate));
      continue;
    }
    const pattern = new RegExp(
      `^${segment
        .split(/(\*|<[^>]*>)/)
        .map((part) => (part === '*' || part.startsWith('<') ? '.*' : part.replace(/[.+?^$()[\]\\|]/g, '\\$&')))
        .join('')}$`,
    );
    candidates = candidates.flatMap((base) =>
      statSync(base).isDirectory()
        ? readdirSync(base)
            .filter((name) => pattern.test(name))
            .map((name) => join(base, name))
        : [],
    );
  }
  return candidates.length > 0;
}

function missingPaths(references: readonly PathReference[]): string[] {
  return references
    .filter((reference) => !expandBraces(reference.path).every(exists))
    .map((reference) => `${reference.where} ${reference.written}`);
}

describe('repository paths named in the documents', () => {
  it('finds the paths the README names, so the check below has something to check', () => {
    const references = pathReferences('README.md', readFileSync(join(repoRoot, 'README.md'), 'utf8'));
    expect(references.map((reference) => reference.path)).toEqual(
      expect.arrayContaining(['.ci/run', 'docs/install.md', 'src/feeder.ts']),
    );
  });

  it('reads braces, globs, placeholders, anchors, line numbers and relative links', () => {
    const references = pathReferences(
      'docs/x.md',
      [
        'see `test/{unit,sim}` and `test/e2e/c/*.c`, `src/sources/<name>/`, src/feeder.ts:12.',
        '[link](service.md#install) [up](../package.json) [web](https://example.com/src/x) /usr/bin/x',
        '`test/c/*.c` and [gone](ntp.conf.example)',
      ].join('\n'),
    );
    expect(references.map((reference) => reference.path)).toEqual([
      'test/{unit,sim}',
      'test/e2e/c/*.c',
      'src/sources/<name>/',
      'src/feeder.ts',
      'docs/service.md',
      'package.json',
      'test/c/*.c',
      'docs/ntp.conf.example',
    ]);
    expect(missingPaths(references)).toEqual(['docs/x.md:3 test/c/*.c', 'docs/x.md:3 ntp.conf.example']);
  });

  it.each(documents())('%s names only paths that exist', (document) => {
    const references = pathReferences(document, readFileSync(join(repoRoot, document), 'utf8'));
    expect(missingPaths(references)).toEqual([]);
  });
});
