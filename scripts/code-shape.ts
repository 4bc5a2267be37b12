// Prints the longest functions and files of the given folders (default src/), and how many
// lines pass 120 characters: the figures to compare before and after a reshaping.
// Usage: npx tsx scripts/code-shape.ts [--top N] [--json] [folder ...]
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
/** Past this a function should be cut into named parts. */
const LONG_FUNCTION = 80;
const MAX_LINE = 120;

interface FunctionShape {
  name: string;
  /** `src/x.ts:12` */
  where: string;
  lines: number;
}

interface FileShape {
  path: string;
  lines: number;
  longLines: number;
}

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.[cm]?tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

function nameOf(node: ts.Node): string | undefined {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name !== undefined && (ts.isIdentifier(named.name) || ts.isPrivateIdentifier(named.name))) {
    return named.name.text;
  }
  if (named.name !== undefined && ts.isStringLiteral(named.name)) return named.name.text;
  return undefined;
}

/**
 * What a reader calls the function: `Class.method`, the variable or property it is assigned
 * to, or for a callback the function it is written in.
 */
function functionName(node: ts.FunctionLikeDeclaration, enclosing: string | undefined): string {
  const owner = ts.isClassLike(node.parent) ? `${nameOf(node.parent) ?? '<class>'}.` : '';
  if (ts.isConstructorDeclaration(node)) return `${owner}constructor`;
  const own = nameOf(node);
  if (own !== undefined) {
    const accessor = ts.isGetAccessorDeclaration(node) ? 'get ' : ts.isSetAccessorDeclaration(node) ? 'set ' : '';
    return `${accessor}${owner}${own}`;
  }
  const holder = node.parent;
  if (ts.isVariableDeclaration(holder) || ts.isPropertyAssignment(holder) || ts.isPropertyDeclaration(holder)) {
    return `${ts.isPropertyDeclaration(holder) ? owner : ''}${nameOf(holder) ?? '<anonymous>'}`;
  }
  // describe('title', () => ...) and it('title', ...): the call and its title.
  if (ts.isCallExpression(holder)) {
    const [title] = holder.arguments;
    if (title !== undefined && ts.isStringLiteralLike(title)) {
      return `${holder.expression.getText()}('${title.text.slice(0, 40)}')`;
    }
  }
  return enclosing === undefined ? '<anonymous>' : `<callback in ${enclosing}>`;
}

function functionShapes(path: string, text: string): FunctionShape[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const shapes: FunctionShape[] = [];
  const visit = (node: ts.Node, enclosing: string | undefined): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const name = functionName(node, enclosing);
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      shapes.push({ name, where: `${path}:${first + 1}`, lines: last - first + 1 });
      ts.forEachChild(node, (child) => visit(child, name.replace(/^<callback in (.*)>$/, '$1')));
      return;
    }
    ts.forEachChild(node, (child) => visit(child, enclosing));
  };
  visit(source, undefined);
  return shapes;
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '15' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const top = Number(values.top);
  if (!Number.isInteger(top) || top < 1) throw new RangeError(`--top takes a positive whole number, not ${values.top}`);
  const folders = positionals.length === 0 ? ['src'] : positionals;

  const functions: FunctionShape[] = [];
  const files: FileShape[] = [];
  for (const file of folders.flatMap((folder) => sourceFiles(join(repoRoot, folder)))) {
    const path = relative(repoRoot, file);
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    files.push({ path, lines: lines.length, longLines: lines.filter((line) => line.length > MAX_LINE).length });
    functions.push(...functionShapes(path, text));
  }
  functions.sort((a, b) => b.lines - a.lines || a.where.localeCompare(b.where));
  files.sort((a, b) => b.lines - a.lines || a.path.localeCompare(b.path));

  const summary = {
    folders,
    files: files.length,
    lines: files.reduce((sum, file) => sum + file.lines, 0),
    functions: functions.length,
    functionsOver80Lines: functions.filter((shape) => shape.lines > LONG_FUNCTION).length,
    linesOver120Chars: files.reduce((sum, file) => sum + file.longLines, 0),
  };
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ summary, functions: functions.slice(0, top), files: files.slice(0, top) }, null, 2)}\n`,
    );
    return;
  }
  const out: string[] = [
    `${folders.join(' ')}: ${summary.files} files, ${summary.lines} lines, ${summary.functions} functions, ` +
      `${summary.functionsOver80Lines} over ${LONG_FUNCTION} lines, ` +
      `${summary.linesOver120Chars} lines over ${MAX_LINE} chars`,
    '',
    `longest functions (lines, name, where):`,
    ...functions
      .slice(0, top)
      .map((shape) => `${String(shape.lines).padStart(5)}  ${shape.name.padEnd(40)} ${shape.where}`),
    '',
    `longest files (lines, lines over ${MAX_LINE} chars, path):`,
    ...files
      .slice(0, top)
      .map((file) => `${String(file.lines).padStart(5)} ${String(file.longLines).padStart(4)}  ${file.path}`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

main();
