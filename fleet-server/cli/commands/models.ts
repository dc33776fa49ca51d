/**
 * `edgefleet models push|list|versions|show|promote|lineage`: the model registry. `push` sends the ONNX file as
 * is, or, with a sample input (for models whose golden I/O needs concrete shapes), as multipart with the
 * sample's JSON text; `--variant` names the build, `--add-to` adds it to an existing version.
 * Local files are checked before anything is sent, and failures name the path.
 */
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { TensorSpec } from '../../../shared/tensors.js';
import type { LineageView, ModelRef, ModelVariant, ModelVersion } from '../client.js';
import type { CliContext } from '../context.js';
import { fields, formatBytes, formatMetrics, formatModelRef, indent, orDash, table } from '../format.js';
import { CliError } from '../io.js';
import {
  parseModelName,
  parseModelRef,
  parsePositiveNumber,
  parseVariantName,
  parseVersionRef,
  VERSION_ALIASES,
  type VersionAlias,
} from '../parse.js';

export function registerModels(program: Command, ctx: CliContext): void {
  const models = program.command('models').description('the model registry: signed model versions');

  models
    .command('push')
    .description(
      'register a new version of a model from an ONNX file, or another variant of an existing version (the fleet validates and signs it)',
    )
    .argument('<file>', 'ONNX model file')
    .requiredOption('--name <name>', 'model name (lowercase letters, digits, . _ -)', parseModelName)
    .option(
      '--variant <variant>',
      "which build this is (e.g. fp16, or a per-profile build): devices get the first variant their profile accepts (default 'default')",
      parseVariantName,
    )
    // Not `--version`: that is the program's own flag, which commander reads wherever it appears.
    .option(
      '--add-to <version>',
      'add the file as a variant of this existing version (number or alias) instead of a new version; needs --variant',
      parseVersionRef,
    )
    .option(
      '--sample-input <file>',
      'JSON {"inputs":[{"name","shape",["data"]}]} used to compute golden outputs (needed for symbolic dims)',
    )
    .option(
      '--reference-stats <file>',
      'JSON reference statistics (edgefleet.reference-stats/v1) so devices monitor drift for this version',
    )
    .option(
      '--expires-in-days <days>',
      'validity of the signed manifest (default: the fleet default)',
      parsePositiveNumber,
    )
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        file: string,
        options: {
          name: string;
          sampleInput?: string;
          referenceStats?: string;
          expiresInDays?: number;
          variant?: string;
          addTo?: number | VersionAlias;
          json?: boolean;
        },
        command: Command,
      ) => {
        if (options.addTo !== undefined && options.variant === undefined) {
          throw new CliError(
            '--add-to adds a variant to an existing version: name the variant with --variant',
          );
        }
        const model = await readLocal(ctx, file, 'model file');
        let sampleInput: string | undefined;
        if (options.sampleInput !== undefined) {
          sampleInput = (await readLocal(ctx, options.sampleInput, 'sample input')).toString('utf8');
          try {
            JSON.parse(sampleInput);
          } catch (err) {
            throw new CliError(
              `sample input ${options.sampleInput} is not valid JSON: ${(err as Error).message}`,
            );
          }
        }
        let referenceStats: string | undefined;
        if (options.referenceStats !== undefined) {
          referenceStats = (await readLocal(ctx, options.referenceStats, 'reference statistics')).toString(
            'utf8',
          );
          try {
            JSON.parse(referenceStats);
          } catch (err) {
            throw new CliError(
              `reference statistics ${options.referenceStats} are not valid JSON: ${(err as Error).message}`,
            );
          }
        }
        const pushed = await ctx.connect(command).pushModel(options.name, model, {
          sampleInput,
          referenceStats,
          expiresInDays: options.expiresInDays,
          fileName: basename(file),
          variant: options.variant,
          addTo: options.addTo,
        });
        if (options.json) return ctx.printJson(pushed);
        if (options.addTo !== undefined) {
          const added = pushed.variants.find((v) => v.variant === options.variant) ?? pushed.variants.at(-1)!;
          return ctx.out(
            `added variant ${added.variant} to ${pushed.name} v${pushed.version} (sha256 ${added.artifact.sha256}, ${added.artifact.size} bytes); variants: ${pushed.variants.map((v) => v.variant).join(', ')}\n`,
          );
        }
        const variant = options.variant && options.variant !== 'default' ? ` variant ${options.variant}` : '';
        ctx.out(
          `pushed ${pushed.name} v${pushed.version}${variant} (sha256 ${pushed.artifact.sha256}, ${pushed.artifact.size} bytes)\n`,
        );
      },
    );

  models
    .command('list')
    .description('models and their latest versions')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).listModels();
      if (options.json) return ctx.printJson(result);
      if (result.models.length === 0) return ctx.out('no models\n');
      ctx.out(
        table(
          ['NAME', 'LATEST', 'PRODUCTION', 'CANDIDATE', 'VERSIONS', 'UPDATED'],
          result.models.map((m) => [
            m.name,
            String(m.latestVersion),
            orDash(m.production),
            orDash(m.candidate),
            String(m.versionCount),
            m.updatedAt,
          ]),
        ),
      );
    });

  models
    .command('versions')
    .description("a model's versions, with their variants and aliases")
    .argument('<name>', 'model name', parseModelName)
    .option('--json', 'print the API response as JSON')
    .action(async (name: string, options: { json?: boolean }, command: Command) => {
      const client = ctx.connect(command);
      const result = await client.listModelVersions(name);
      if (options.json) return ctx.printJson(result);
      const aliases = await client.getAliases(name);
      ctx.out(
        table(
          ['VERSION', 'VARIANTS', 'ALIASES', 'CREATED', 'BY'],
          result.versions.map((v) => [
            String(v.version),
            v.variants.map((x) => x.variant).join(', '),
            orDash(
              Object.values(aliases.aliases)
                .filter((a) => a?.version === v.version)
                .map((a) => a!.alias)
                .join(', '),
            ),
            v.createdAt,
            v.createdBy,
          ]),
        ),
      );
    });

  models
    .command('show')
    .description('one model version: artifact, tensors, signature, aliases, lineage')
    .argument('<name@version>', 'e.g. demo@3 or demo@production', parseModelRef)
    .option('--json', 'print the API response as JSON')
    .action(async (ref: ModelRef, options: { json?: boolean }, command: Command) => {
      const version = await ctx.connect(command).getModelVersion(ref);
      if (options.json) return ctx.printJson(version);
      ctx.out(modelVersionDetail(version));
    });

  models
    .command('promote')
    .description('point an alias (default production) at a version')
    .argument('<name@version>', 'e.g. demo@3 or demo@candidate', parseModelRef)
    .addOption(
      new Option('--alias <alias>', 'the alias to move').choices([...VERSION_ALIASES]).default('production'),
    )
    .option('--json', 'print the API response as JSON')
    .action(async (ref: ModelRef, options: { alias: VersionAlias; json?: boolean }, command: Command) => {
      const client = ctx.connect(command);
      const version =
        typeof ref.version === 'number' ? ref.version : (await client.getModelVersion(ref)).version;
      const moved = await client.setAlias(ref.name, options.alias, version);
      if (options.json) return ctx.printJson(moved);
      const from = moved.previous === null ? '(unset)' : `v${moved.previous}`;
      ctx.out(
        !moved.moved
          ? `${ref.name} ${options.alias} is already v${version}\n`
          : `${ref.name} ${options.alias}: ${from} -> v${moved.version}\n`,
      );
    });

  models
    .command('lineage')
    .description(
      'where a version came from and where it went: devices -> snapshot -> run -> version -> rollouts',
    )
    .argument('<name@version>', 'e.g. demo@3 or demo@production', parseModelRef)
    .option('--json', 'print the API response as JSON')
    .action(async (ref: ModelRef, options: { json?: boolean }, command: Command) => {
      const lineage = await ctx.connect(command).getLineage(ref);
      if (options.json) return ctx.printJson(lineage);
      ctx.out(lineageDetail(lineage));
    });
}

export function lineageDetail(l: LineageView): string {
  const v = l.version;
  const aliases = v.aliases.length > 0 ? ` (${v.aliases.join(', ')})` : '';
  if (!l.snapshot && !l.run) {
    return `${fields([
      ['version', `${v.name}@${v.version}${aliases}, pushed ${v.createdAt} by ${v.createdBy}`],
      ['rollouts', lineageRollouts(l)],
    ])}(pushed, not trained by the fleet: no snapshot or training run behind it)\n`;
  }
  const sources = l.sources
    .map((s) => `${s.source} (${s.kind}, ${s.samples} sample${s.samples === 1 ? '' : 's'})`)
    .join('\n           ');
  const s = l.snapshot;
  const run = l.run;
  const lineage = v.lineage;
  return fields([
    ['devices', orDash(sources)],
    [
      'snapshot',
      s
        ? `${s.id}: ${s.count} samples, ${s.labeled} labeled, ${s.timeRange.from} .. ${s.timeRange.to}`
        : `${lineage?.snapshot ?? '-'} (record missing)`,
    ],
    [
      'run',
      run
        ? `${run.id}: ${run.status} on ${orDash(run.backend)}, by ${run.createdBy} at ${run.createdAt}`
        : `${lineage?.run ?? '-'} (record missing)`,
    ],
    [
      'version',
      `${v.name}@${v.version}${aliases}: ${formatMetrics(lineage?.metrics)} (seed ${orDash(lineage?.seed)}, code ${orDash(lineage?.codeVersion)})`,
    ],
    ['rollouts', lineageRollouts(l)],
  ]);
}

function lineageRollouts(l: LineageView): string {
  if (l.rollouts.length === 0) return 'none';
  return l.rollouts
    .map((r) => `${r.id}: ${r.phase}, ${r.summary.active}/${r.summary.total} active, ${r.createdAt}`)
    .join('\n           ');
}

export function modelVersionDetail(v: ModelVersion): string {
  const m = v.manifest;
  let text = fields([
    ['model', formatModelRef(v)],
    ['created', `${v.createdAt} by ${v.createdBy}`],
    ['expires', m.expiresAt],
    ['sha256', v.artifact.sha256],
    ['size', `${v.artifact.size} bytes (${formatBytes(v.artifact.size)})`],
    ['aliases', orDash(v.aliases?.join(', '))],
    ['variants', v.variants.map((x) => x.variant).join(', ')],
    ['opset', String(m.opset)],
    ['signed by', m.signatures.map((s) => s.keyid.slice(0, 16)).join(', ')],
    [
      'labels',
      orDash(
        Object.entries(m.labels ?? {})
          .map(([k, val]) => `${k}=${val}`)
          .join(', '),
      ),
    ],
  ]);
  const tensors = (specs: readonly TensorSpec[]) =>
    indent(
      table(
        ['NAME', 'DTYPE', 'SHAPE'],
        specs.map((s) => [s.name, s.dtype, `[${s.shape.join(', ')}]`]),
      ),
    );
  if (v.variants.length > 1) text += `\nvariants:\n${indent(variantTable(v.variants))}`;
  text += `\ninputs:\n${tensors(m.inputs)}`;
  text += `\noutputs:\n${tensors(m.outputs)}`;
  const l = v.lineage;
  if (l) {
    const champion = l.champion
      ? l.champion.metrics
        ? `v${l.champion.version}: ${formatMetrics(l.champion.metrics)}`
        : `v${l.champion.version}: ${l.champion.reason}`
      : 'none';
    text += `\nlineage:\n${indent(
      fields([
        ['task', l.task],
        ['snapshot', l.snapshot],
        ['run', l.run],
        ['backend', l.backend],
        ['seed', String(l.seed)],
        ['code', l.codeVersion],
        ['rows', `${l.trainRows} train, ${l.holdoutRows} holdout`],
        ['metrics', formatMetrics(l.metrics)],
        ['champion', champion],
        ['started', `${l.startedAt}, took ${(l.durationMs / 1000).toFixed(1)} s`],
      ]),
    )}`;
  }
  return text;
}

function variantTable(variants: readonly ModelVariant[]): string {
  return table(
    ['VARIANT', 'SHA256', 'SIZE', 'CREATED', 'BY'],
    variants.map((x) => [
      x.variant,
      x.artifact.sha256,
      formatBytes(x.artifact.size),
      x.createdAt,
      x.createdBy,
    ]),
  );
}

export async function readLocal(ctx: CliContext, path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(resolve(ctx.io.cwd, path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (err as Error).message;
    throw new CliError(`cannot read ${what} ${path}: ${reason}`);
  }
}
