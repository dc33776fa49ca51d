/**
 * The fleet server's layers point one way (fleet-server/layers.ts): read every import of the source, fail on
 * an arrow against the order or a cycle between folders, naming the file and the import. And the trees keep
 * apart: shared/ imports neither agent/ nor fleet-server/, which never import each other.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FLEET_UNITS, LAYERS } from '../../../fleet-server/layers.js';
import { checkBoundaries, checkLayers, readImports } from '../../support/import-graph.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const imports = readImports(ROOT, ['shared', 'agent', 'fleet-server']);

describe('import graph', () => {
  it('is read from the source it checks', () => {
    // The premise: an empty or unresolved graph would pass everything below.
    expect(imports).toContainEqual(
      expect.objectContaining({ from: 'fleet-server/main.ts', to: 'fleet-server/api/app.ts' }),
    );
    expect(imports).toContainEqual(
      expect.objectContaining({
        from: 'fleet-server/main.ts',
        to: 'fleet-server/store/db.ts',
        typeOnly: false,
      }),
    );
    expect(imports.filter((i) => i.from.startsWith('fleet-server/') && i.to).length).toBeGreaterThan(300);
  });

  it('declares every folder and top-level file of fleet-server/ in a layer, and none that is gone', () => {
    const present = readdirSync(join(ROOT, 'fleet-server'), { withFileTypes: true })
      .filter((e) => e.isDirectory() || /\.tsx?$/.test(e.name))
      .map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
    expect(Object.keys(FLEET_UNITS).sort()).toEqual(present.sort());
  });

  it("README's architecture shows every unit of fleet-server/ in its layer", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    // The layer diagram: one line per layer, highest first, continuation lines indented.
    const diagram = /```\n(entry .*?)\n```/s.exec(readme)?.[1] ?? '';
    expect(diagram, 'README.md has a layer diagram starting with "entry"').not.toBe('');
    const lineOf = new Map<string, string>();
    let layer = '';
    for (const line of diagram.split('\n')) {
      if (!line.startsWith(' ')) layer = line.split(' ')[0]!;
      lineOf.set(layer, `${lineOf.get(layer) ?? ''} ${line}`);
    }
    const misplaced = Object.entries(FLEET_UNITS)
      .filter(([unit, layer]) => !(lineOf.get(layer) ?? '').includes(` ${unit}`))
      .map(([unit, layer]) => `${unit} (${layer})`);
    expect(misplaced, 'show them in their layer in README.md').toEqual([]);
  });

  it(`fleet-server keeps ${LAYERS.join(' → ')}, with no cycle between folders`, () => {
    const problems = checkLayers(imports, {
      base: 'fleet-server/',
      layers: LAYERS,
      units: FLEET_UNITS,
      declaredIn: 'fleet-server/layers.ts',
    });
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('shared/ imports neither agent/ nor fleet-server/, and those two never import each other', () => {
    const problems = checkBoundaries(imports, {
      'shared/': [],
      'agent/': ['shared/'],
      'fleet-server/': ['shared/'],
    });
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
