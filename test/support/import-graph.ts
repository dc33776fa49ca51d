/**
 * The repository's import graph, read from the source with the TypeScript compiler's parser (no type
 * checking, no regexes): every `import`/`export … from`, `import x = require()`, `import()` call and
 * `import('…')` type, with relative specifiers resolved to files. And two checks over it: the layer order of
 * a tree of units (fleet-server/layers.ts) and which trees may import which (shared/, agent/, fleet-server/).
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export interface Import {
  /** Importing file, relative to the repository root, with `/` separators. */
  from: string;
  /** The specifier as written. */
  specifier: string;
  /** The file it resolves to (relative to the root); null when relative and no file matches. Packages: undefined. */
  to: string | null | undefined;
  line: number;
  /** `import type`, `export type`, all-`type` named imports or an `import('…')` type: coupling all the same. */
  typeOnly: boolean;
}

const SOURCE = /\.(ts|tsx|mts|cts)$/;

/** Every import of every TypeScript file under `dirs` (relative to `root`), node_modules skipped. */
export function readImports(root: string, dirs: readonly string[]): Import[] {
  const imports: Import[] = [];
  for (const dir of dirs) {
    const entries = readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' });
    for (const entry of entries.sort()) {
      if (!SOURCE.test(entry) || entry.split(sep).includes('node_modules')) continue;
      const file = toPosix(join(dir, entry));
      imports.push(...importsOf(root, file, ts.sys.readFile(join(root, file)) ?? ''));
    }
  }
  return imports;
}

/** The imports of one file's text; `file` is relative to `root`, which resolves relative specifiers. */
export function importsOf(root: string, file: string, text: string): Import[] {
  const kind = file.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, kind);
  const found: Import[] = [];
  const add = (literal: ts.StringLiteralLike, typeOnly: boolean) => {
    const specifier = literal.text;
    found.push({
      from: file,
      specifier,
      to: specifier.startsWith('.') ? resolveRelative(root, file, specifier) : undefined,
      line: source.getLineAndCharacterOfPosition(literal.getStart(source)).line + 1,
      typeOnly,
    });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteralLike(node.moduleSpecifier)) {
      add(node.moduleSpecifier, importIsTypeOnly(node.importClause));
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteralLike(node.moduleSpecifier)
    ) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteralLike(node.moduleReference.expression)
    ) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      add(node.arguments[0], false);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteralLike(node.argument.literal)
    ) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function importIsTypeOnly(clause: ts.ImportClause | undefined): boolean {
  if (!clause) return false; // `import './x.js'`: run for its effects
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return (
    !clause.name &&
    named !== undefined &&
    ts.isNamedImports(named) &&
    named.elements.length > 0 &&
    named.elements.every((e) => e.isTypeOnly)
  );
}

/** NodeNext's rule as this repository writes it (`./x.js` → x.ts or x.tsx), plus the console's bare paths. */
function resolveRelative(root: string, file: string, specifier: string): string | null {
  const target = resolve(root, dirname(file), specifier);
  const stem = target.replace(/\.(js|jsx|mjs|cjs)$/, '');
  const candidates =
    stem === target
      ? [target, `${target}.ts`, `${target}.tsx`, join(target, 'index.ts'), join(target, 'index.tsx')]
      : [`${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}.cts`, target];
  const hit = candidates.find((c) => statSync(c, { throwIfNoEntry: false })?.isFile());
  return hit ? toPosix(relative(root, hit)) : null;
}

function toPosix(path: string): string {
  return path.split(sep).join('/');
}

function describe(i: Import): string {
  return `${i.from}:${i.line} imports${i.typeOnly ? ' (type-only)' : ''} '${i.specifier}'`;
}

export interface LayerRules {
  /** The tree the rules cover, with a trailing slash: `fleet-server/`. */
  base: string;
  /** Lowest first. */
  layers: readonly string[];
  /** Unit → layer; a unit is a folder under `base` (`name/`) or a file at its top (`name.ts`). */
  units: Readonly<Record<string, string>>;
  /** Where the units are declared, for the message about an undeclared one. */
  declaredIn: string;
}

/** The unit a path under `base` belongs to: its first folder (`rollouts/`) or, at the top, the file itself. */
export function unitOf(base: string, path: string): string {
  const rest = path.slice(base.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash + 1);
}

/**
 * What breaks the layer order among the imports of files under `rules.base`, one message per problem: a file
 * in an undeclared unit, a relative import that resolves to nothing, an arrow from a lower layer to a higher
 * one, and each cycle between units (with the imports that close it). Imports within a unit are free;
 * imports leaving `base` are `checkBoundaries`' business. Empty when the graph keeps the order.
 */
export function checkLayers(imports: readonly Import[], rules: LayerRules): string[] {
  const problems: string[] = [];
  const rank = (unit: string) => {
    const layer = rules.units[unit];
    return layer === undefined ? -1 : rules.layers.indexOf(layer);
  };
  const undeclared = new Set<string>();
  // unit → unit → the first import that makes the arrow (enough to name it in a cycle).
  const arrows = new Map<string, Map<string, Import>>();
  for (const i of imports) {
    if (!i.from.startsWith(rules.base)) continue;
    const from = unitOf(rules.base, i.from);
    if (rank(from) === -1 && !undeclared.has(from)) {
      undeclared.add(from);
      problems.push(`${rules.base}${from} is in no layer (${i.from}): declare it in ${rules.declaredIn}`);
    }
    if (i.to === null) {
      problems.push(`${describe(i)}, which resolves to no file`);
      continue;
    }
    if (i.to === undefined || !i.to.startsWith(rules.base)) continue;
    const to = unitOf(rules.base, i.to);
    if (to === from) continue;
    if (rank(from) !== -1 && rank(to) !== -1 && rank(from) < rank(to)) {
      problems.push(
        `arrow against the layers: ${describe(i)} — ${from} is ${rules.units[from]}, ${to} is ${rules.units[to]}`,
      );
    }
    const out = arrows.get(from) ?? new Map<string, Import>();
    if (!out.has(to)) out.set(to, i);
    arrows.set(from, out);
  }
  for (const cycle of unitCycles(arrows)) {
    const path = [...cycle.map((i) => unitOf(rules.base, i.from)), unitOf(rules.base, cycle[0]!.from)];
    problems.push(`cycle between units ${path.join(' → ')}: ${cycle.map(describe).join('; ')}`);
  }
  return problems;
}

/** One cycle per strongly connected component of more than one unit (Tarjan), as the imports that close it. */
function unitCycles(arrows: ReadonlyMap<string, ReadonlyMap<string, Import>>): Import[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of arrows.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component);
    }
  };
  for (const v of [...arrows.keys()].sort()) if (!index.has(v)) connect(v);
  return components.map((component) => {
    // The shortest way from the component's first unit (by name) back to itself, staying inside it.
    const members = new Set(component);
    const start = [...component].sort()[0]!;
    const via = new Map<string, { from: string; i: Import }>();
    const queue = [start];
    for (let k = 0; k < queue.length; k++) {
      const v = queue[k]!;
      for (const [w, i] of arrows.get(v) ?? []) {
        if (!members.has(w) || via.has(w)) continue;
        via.set(w, { from: v, i });
        if (w === start) break;
        queue.push(w);
      }
      if (via.has(start)) break;
    }
    const cycle: Import[] = [];
    let at = start;
    do {
      const step = via.get(at)!;
      cycle.unshift(step.i);
      at = step.from;
    } while (at !== start);
    return cycle;
  });
}

/**
 * Imports from one tree into another that `allowed` does not list (tree → the trees it may import), e.g.
 * `shared/` importing `agent/`. Targets in no listed tree (package.json, packages) are not this check's.
 */
export function checkBoundaries(
  imports: readonly Import[],
  allowed: Readonly<Record<string, readonly string[]>>,
): string[] {
  const trees = Object.keys(allowed);
  const treeOf = (path: string) => trees.find((t) => path.startsWith(t));
  const problems: string[] = [];
  for (const i of imports) {
    const from = treeOf(i.from);
    const to = i.to ? treeOf(i.to) : undefined;
    if (!from || !to || to === from || allowed[from]!.includes(to)) continue;
    const may = allowed[from]!.length ? allowed[from]!.join(', ') : 'no other tree';
    problems.push(`${describe(i)}: ${from} may import ${may}, not ${to}`);
  }
  return problems;
}
