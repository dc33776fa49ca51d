/**
 * The fleet server's layers, lowest first, and the folder (or top-level file) each unit of code belongs to.
 * A unit may import a unit of its own layer or of a lower one, never a higher one, and no two units may import
 * each other, however indirectly. `shared/` sits below every layer. test/unit/fleet-server/layers.test.ts reads
 * every import of fleet-server/ (type-only ones too: they couple as much) and fails on an arrow against this
 * order or a cycle between units, naming the file and the import. A new folder is declared here first.
 *
 * - store: LevelDB collections, files, artifacts, ids, locks. Knows no domain record.
 * - records: one kind of record each, and the rules that keep it consistent (devices, models, the sample pool,
 *   drift reports, telemetry windows, the audit log). They do not know the workflows that use them.
 * - workflows: long-running work over records (rollouts, training runs, the retrain loop): record, pure
 *   step/reconcile, driver.
 * - views: read models joined across records and workflows (a version's lineage, the fleet overview), so that
 *   no record or workflow has to import another to answer a screen.
 * - edges: how the outside reaches the fleet: the HTTP API, the MQTT broker, the console.
 * - root: the composition root, `main.ts`, the only place that creates stores, brokers and servers, with its
 *   config.
 * - entry: programs that start the root. `cli/` is the `edgefleet` command: its `serve` starts main.ts and its
 *   other commands talk to a running fleet over HTTP (cli/client.ts), so it sits above the root rather than
 *   among the edges — the root never imports it. `demo.ts` is such a program too: it starts the fleet and
 *   drives it through the CLI's API client.
 */

export const LAYERS = ['store', 'records', 'workflows', 'views', 'edges', 'root', 'entry'] as const;

export type Layer = (typeof LAYERS)[number];

/** Unit → layer. A unit is a folder of fleet-server/ (`name/`) or a file at its top (`name.ts`). */
export const FLEET_UNITS: Readonly<Record<string, Layer>> = {
  'store/': 'store',
  'devices/': 'records',
  'registry/': 'records',
  'pool/': 'records',
  'drift/': 'records',
  'telemetry/': 'records',
  'audit/': 'records',
  'rollouts/': 'workflows',
  'training/': 'workflows',
  'retrain/': 'workflows',
  'views/': 'views',
  'api/': 'edges',
  'broker/': 'edges',
  'console/': 'edges',
  'config.ts': 'root',
  'code-version.ts': 'root',
  'main.ts': 'root',
  'layers.ts': 'root',
  'cli/': 'entry',
  'demo.ts': 'entry',
};
