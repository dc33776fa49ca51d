/**
 * The CLI and the console speak to the fleet through the wire contract (shared/api/) only: this reads every
 * import (static, re-export and dynamic) of fleet-server/cli/ and fleet-server/console/src/ and fails on one
 * that reaches a server module — a stored record's type used as an API type would freeze the database into
 * the wire again. The console must also import shared/api as types only (`import type`), so zod stays out of
 * the browser bundle. The CLI's `serve` command starts the server itself: its two doors to it are named below.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');

/** cli → server modules it may load: `edgefleet serve` runs the fleet server in the CLI's process. */
const CLI_SERVER_DOORS: Record<string, string[]> = {
  'fleet-server/cli/commands/serve.ts': ['fleet-server/config.ts', 'fleet-server/main.ts'],
  'fleet-server/cli/io.ts': ['fleet-server/main.ts'],
};

interface ImportLine {
  specifier: string;
  typeOnly: boolean;
}

/** Every module specifier a source text imports or re-exports, and whether the statement is type-only. */
function importsOf(text: string): ImportLine[] {
  const out: ImportLine[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(statement)) out.push({ specifier: m[3]!, typeOnly: m[2] !== undefined });
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g))
    out.push({ specifier: m[1]!, typeOnly: false });
  return out;
}

/** The repository path a relative specifier names (`.js` written for `.ts`, extensionless in the console). */
function target(file: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null; // a package
  const path = relative(ROOT, resolve(ROOT, dirname(file), specifier));
  return path.replace(/\.js$/, '.ts');
}

/** Why this import breaks the contract rule, or null. */
function violation(file: string, line: ImportLine): string | null {
  const to = target(file, line.specifier);
  if (to === null) return null;
  const console = file.startsWith('fleet-server/console/src/');
  const own = console ? 'fleet-server/console/src/' : 'fleet-server/cli/';
  if (to.startsWith('fleet-server/') && !to.startsWith(own)) {
    const doors = CLI_SERVER_DOORS[file] ?? [];
    if (!console && doors.some((d) => to === d || `${to}.ts` === d)) return null;
    return `${file} imports the server's ${to} ('${line.specifier}'): use shared/api/ types`;
  }
  if (console && to.startsWith('shared/api/') && !line.typeOnly)
    return `${file} imports ${to} as a value ('${line.specifier}'): the console takes shared/api types only (import type), so zod is not bundled`;
  return null;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

describe('the CLI and the console import the wire contract, not server records', () => {
  const files = [...sources('fleet-server/cli'), ...sources('fleet-server/console/src')];

  it('no import from cli/ or console/ reaches a server module', () => {
    const problems: string[] = [];
    let toContract = 0;
    for (const file of files) {
      for (const line of importsOf(readFileSync(join(ROOT, file), 'utf8'))) {
        const problem = violation(file, line);
        if (problem) problems.push(problem);
        if (target(file, line.specifier)?.startsWith('shared/api/')) toContract++;
      }
    }
    // The scan sees the imports it is meant to judge: the client's and the console's of the contract.
    expect(files).toEqual(
      expect.arrayContaining(['fleet-server/cli/client.ts', 'fleet-server/console/src/api.ts']),
    );
    expect(toContract).toBeGreaterThan(10);
    expect(problems).toEqual([]);
  });

  it('names what the rule refuses', () => {
    const cli = 'fleet-server/cli/client.ts';
    const view = 'fleet-server/console/src/views/rollouts.tsx';
    const check = (file: string, text: string) =>
      importsOf(text)
        .map((l) => violation(file, l))
        .filter((v) => v !== null);
    expect(check(cli, "import type { RolloutRecord } from '../rollouts/record.js';")).toEqual([
      expect.stringContaining('fleet-server/rollouts/record.ts'),
    ]);
    expect(check(cli, "export type { X } from '../devices/registry.js';")).toHaveLength(1);
    expect(check(cli, "const m = await import('../main.js');")).toHaveLength(1);
    expect(check(cli, "import type { Rollout } from '../../shared/api/rollouts.js';")).toEqual([]);
    expect(check(view, "import { RolloutSchema } from '../../../../shared/api/rollouts';")).toEqual([
      expect.stringContaining('import type'),
    ]);
    expect(check(view, "import type { Rollout } from '../../../../shared/api/rollouts';")).toEqual([]);
    expect(check(view, "import type { RolloutRecord } from '../../../rollouts/record';")).toHaveLength(1);
    expect(
      check('fleet-server/cli/commands/serve.ts', "import type { FleetServer } from '../../main.js';"),
    ).toEqual([]);
  });
});
