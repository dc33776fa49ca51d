/**
 * `edgefleet models push|list|show`: the model registry. `push` sends the ONNX file as is, or, with a
 * sample input (for models whose golden I/O needs concrete shapes), as multipart with the sample's JSON text.
 * Local files are checked before anything is sent, and failures name the path.
 */
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import type { TensorSpec } from '../../../shared/tensors.js';
import type { ModelVersion } from '../client.js';
import type { CliContext } from '../context.js';
import { fields, formatBytes, formatModelRef, indent, orDash, table } from '../format.js';
import { CliError } from '../io.js';
import { parseModelName, parseModelRef, parsePositiveNumber } from '../parse.js';

export function registerModels(program: Command, ctx: CliContext): void {
  const models = program.command('models').description('the model registry: signed model versions');

  models
    .command('push')
    .description('register a new version of a model from an ONNX file (the fleet validates and signs it)')
    .argument('<file>', 'ONNX model file')
    .requiredOption('--name <name>', 'model name (lowercase letters, digits, . _ -)', parseModelName)
    .option(
      '--sample-input <file>',
      'JSON {"inputs":[{"name","shape",["data"]}]} used to compute golden outputs (needed for symbolic dims)',
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
        options: { name: string; sampleInput?: string; expiresInDays?: number; json?: boolean },
        command: Command,
      ) => {
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
        const pushed = await ctx.connect(command).pushModel(options.name, model, {
          sampleInput,
          expiresInDays: options.expiresInDays,
          fileName: basename(file),
        });
        if (options.json) return ctx.printJson(pushed);
        ctx.out(
          `pushed ${pushed.name} v${pushed.version} (sha256 ${pushed.artifact.sha256}, ${pushed.artifact.size} bytes)\n`,
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
          ['NAME', 'LATEST', 'VERSIONS', 'UPDATED'],
          result.models.map((m) => [m.name, String(m.latestVersion), String(m.versionCount), m.updatedAt]),
        ),
      );
    });

  models
    .command('show')
    .description('one model version: artifact, tensors, signature')
    .argument('<name@version>', 'e.g. demo@3', parseModelRef)
    .option('--json', 'print the API response as JSON')
    .action(async (ref: { name: string; version: number }, options: { json?: boolean }, command: Command) => {
      const version = await ctx.connect(command).getModelVersion(ref);
      if (options.json) return ctx.printJson(version);
      ctx.out(modelVersionDetail(version));
    });
}

export function modelVersionDetail(v: ModelVersion): string {
  const m = v.manifest;
  let text = fields([
    ['model', formatModelRef(v)],
    ['created', `${v.createdAt} by ${v.createdBy}`],
    ['expires', m.expiresAt],
    ['sha256', v.artifact.sha256],
    ['size', `${v.artifact.size} bytes (${formatBytes(v.artifact.size)})`],
    ['variant', m.variant],
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
  text += `\ninputs:\n${tensors(m.inputs)}`;
  text += `\noutputs:\n${tensors(m.outputs)}`;
  return text;
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
