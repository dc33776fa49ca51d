/**
 * The import-graph checker the layers test relies on, on a tiny fake tree written to a temp dir: it must see
 * every form of import (type-only ones included), resolve them, and name each arrow against the order and
 * each cycle between units — or the layers test could pass on a graph it never read.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBoundaries, checkLayers, type LayerRules, readImports } from '../../support/import-graph.js';

const root = mkdtempSync(join(tmpdir(), 'edgefleet-layers-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function tree(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

tree({
  'lib/pure.ts': 'export const x = 1;\n',
  'srv/low/a.ts':
    "import { x } from '../../lib/pure.js';\nimport { b } from './b.js';\nexport const a = x + b;\n",
  'srv/low/b.ts': "import type { T } from '../high/t.js';\nexport const b = 2;\nexport type U = T;\n",
  'srv/high/t.ts': "export type { a } from '../low/a.js';\nexport type T = number;\n",
  'srv/high/ui.tsx':
    "import { h } from 'preact';\nexport const el = <div>{h}</div>;\nexport type Q = typeof import('../low/b.js');\n",
  'srv/top.ts':
    "import './high/t.js';\nexport async function go() {\n  return import('./low/a.js');\n}\nimport { gone } from './low/gone.js';\n",
  'srv/odd/c.ts': "import { a } from '../low/a.js';\nexport const c = a;\n",
  'other/d.ts': "import { c } from '../srv/odd/c.js';\nexport const d = c;\n",
});

const imports = readImports(root, ['lib', 'srv', 'other']);
const rules: LayerRules = {
  base: 'srv/',
  layers: ['low', 'high', 'top'],
  units: { 'low/': 'low', 'high/': 'high', 'top.ts': 'top' },
  declaredIn: 'layers.ts',
};

describe('import graph checker', () => {
  it('reads every form of import, tree by tree in the order given, resolves relative ones, and marks the type-only ones', () => {
    const seen = imports.map(({ from, specifier, to, line, typeOnly }) => ({
      from,
      specifier,
      to,
      line,
      typeOnly,
    }));
    expect(seen).toEqual([
      { from: 'srv/high/t.ts', specifier: '../low/a.js', to: 'srv/low/a.ts', line: 1, typeOnly: true },
      { from: 'srv/high/ui.tsx', specifier: 'preact', to: undefined, line: 1, typeOnly: false },
      { from: 'srv/high/ui.tsx', specifier: '../low/b.js', to: 'srv/low/b.ts', line: 3, typeOnly: true },
      { from: 'srv/low/a.ts', specifier: '../../lib/pure.js', to: 'lib/pure.ts', line: 1, typeOnly: false },
      { from: 'srv/low/a.ts', specifier: './b.js', to: 'srv/low/b.ts', line: 2, typeOnly: false },
      { from: 'srv/low/b.ts', specifier: '../high/t.js', to: 'srv/high/t.ts', line: 1, typeOnly: true },
      { from: 'srv/odd/c.ts', specifier: '../low/a.js', to: 'srv/low/a.ts', line: 1, typeOnly: false },
      { from: 'srv/top.ts', specifier: './high/t.js', to: 'srv/high/t.ts', line: 1, typeOnly: false },
      { from: 'srv/top.ts', specifier: './low/a.js', to: 'srv/low/a.ts', line: 3, typeOnly: false },
      { from: 'srv/top.ts', specifier: './low/gone.js', to: null, line: 5, typeOnly: false },
      { from: 'other/d.ts', specifier: '../srv/odd/c.js', to: 'srv/odd/c.ts', line: 1, typeOnly: false },
    ]);
    expect(imports.find((i) => i.from === 'lib/pure.ts')).toBeUndefined();
  });

  it('names an arrow against the order, a cycle between units, an undeclared unit and a dead import', () => {
    expect(checkLayers(imports, rules)).toEqual([
      "arrow against the layers: srv/low/b.ts:1 imports (type-only) '../high/t.js' — low/ is low, high/ is high",
      'srv/odd/ is in no layer (srv/odd/c.ts): declare it in layers.ts',
      "srv/top.ts:5 imports './low/gone.js', which resolves to no file",
      "cycle between units high/ → low/ → high/: srv/high/t.ts:1 imports (type-only) '../low/a.js'; srv/low/b.ts:1 imports (type-only) '../high/t.js'",
    ]);
  });

  it('passes the same tree once the arrow and the strays are gone', () => {
    const kept = imports.filter(
      (i) => i.from !== 'srv/low/b.ts' && i.from !== 'srv/odd/c.ts' && i.to !== null,
    );
    expect(checkLayers(kept, rules)).toEqual([]);
  });

  it('names an import from one tree into another the rules do not allow', () => {
    expect(checkBoundaries(imports, { 'lib/': [], 'srv/': ['lib/'], 'other/': ['lib/'] })).toEqual([
      "other/d.ts:1 imports '../srv/odd/c.js': other/ may import lib/, not srv/",
    ]);
    expect(checkBoundaries(imports, { 'lib/': [], 'srv/': ['lib/'], 'other/': ['lib/', 'srv/'] })).toEqual(
      [],
    );
  });
});
