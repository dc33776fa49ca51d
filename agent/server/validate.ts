/**
 * Open Inference Protocol v2 request checking, compiled once per served model (the infer path is hot: no
 * schema library per request). Every rejection says what the model expects and what the request sent.
 */
import { ValidationError } from '../../shared/errors.js';
import type { Manifest } from '../../shared/manifest.js';
import {
  DTYPE_OF_OIP,
  elementCount,
  formatDims,
  OIP_DATATYPE,
  shapeMismatch,
  type TensorSpec,
  typedArrayFor,
} from '../../shared/tensors.js';
import type { FeedTensor } from '../runtime/ort.js';

export interface InferRequest {
  id: string | undefined;
  feeds: Record<string, FeedTensor>;
  /** Output names asked for (all when undefined). */
  outputs: string[] | undefined;
}

export interface CompiledModel {
  parse(body: unknown): InferRequest;
}

export function compileModel(manifest: Manifest): CompiledModel {
  const specs = new Map<string, TensorSpec>(manifest.inputs.map((s) => [s.name, s]));
  const outputNames = new Set(manifest.outputs.map((o) => o.name));
  const expected = manifest.inputs
    .map((s) => `${s.name} ${OIP_DATATYPE[s.dtype]} [${formatDims(s.shape)}]`)
    .join(', ');

  return {
    parse(body) {
      if (
        typeof body !== 'object' ||
        body === null ||
        !Array.isArray((body as { inputs?: unknown }).inputs)
      ) {
        throw bad(`the request needs an "inputs" array (expected: ${expected})`);
      }
      const { inputs, id, outputs } = body as { inputs: unknown[]; id?: unknown; outputs?: unknown };
      const feeds: Record<string, FeedTensor> = {};
      let seen = 0;
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i] as {
          name?: unknown;
          shape?: unknown;
          datatype?: unknown;
          data?: unknown;
        } | null;
        if (typeof input !== 'object' || input === null) throw bad(`inputs[${i}] must be an object`);
        const name = input.name;
        const spec = typeof name === 'string' ? specs.get(name) : undefined;
        if (!spec) throw bad(`unknown input ${JSON.stringify(name)}; the model takes: ${expected}`);
        if (feeds[spec.name]) throw bad(`input '${spec.name}' is given twice`);
        if (input.datatype !== OIP_DATATYPE[spec.dtype]) {
          const hint =
            typeof input.datatype === 'string' && DTYPE_OF_OIP[input.datatype]
              ? ''
              : ' (not a known datatype)';
          throw bad(
            `input '${spec.name}' must have datatype ${OIP_DATATYPE[spec.dtype]}, got ${JSON.stringify(input.datatype)}${hint}`,
          );
        }
        const shape = input.shape;
        if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
          throw bad(`input '${spec.name}' needs "shape" as an array of non-negative integers`);
        }
        const mismatch = shapeMismatch(spec.shape, shape as number[]);
        if (mismatch) throw bad(`input '${spec.name}': ${mismatch}`);
        const count = elementCount(shape as number[]);
        const data = typedArrayFor(spec.dtype, count);
        const filled = fill(data, input.data, 0, spec.name);
        if (filled !== count) {
          throw bad(
            `input '${spec.name}' has ${filled} values, shape [${(shape as number[]).join(', ')}] needs ${count}`,
          );
        }
        feeds[spec.name] = { dtype: spec.dtype, data, dims: shape as number[] };
        seen++;
      }
      if (seen !== specs.size) {
        const missing = [...specs.keys()].filter((n) => !feeds[n]);
        throw bad(`missing input(s) ${missing.join(', ')}; the model takes: ${expected}`);
      }
      let wanted: string[] | undefined;
      if (outputs !== undefined) {
        if (!Array.isArray(outputs)) throw bad('"outputs" must be an array of {name}');
        wanted = outputs.map((o, i) => {
          const n = (o as { name?: unknown } | null)?.name;
          if (typeof n !== 'string' || !outputNames.has(n)) {
            throw bad(
              `outputs[${i}] names ${JSON.stringify(n)}; the model's outputs are ${[...outputNames].join(', ')}`,
            );
          }
          return n;
        });
      }
      return { id: typeof id === 'string' ? id : undefined, feeds, outputs: wanted };
    },
  };
}

/** Copy flat or nested row-major values into `out`, returning how many values there were. */
function fill(out: FeedTensor['data'], data: unknown, offset: number, name: string): number {
  if (!Array.isArray(data)) throw bad(`input '${name}' needs "data" as an array of numbers`);
  const big = out instanceof BigInt64Array;
  let n = offset;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v === 'number') {
      if (n < out.length) {
        if (big) (out as BigInt64Array)[n] = BigInt(Math.trunc(v));
        else (out as Float32Array)[n] = v;
      }
      n++;
    } else if (typeof v === 'boolean') {
      if (n < out.length) (out as Uint8Array)[n] = v ? 1 : 0;
      n++;
    } else if (Array.isArray(v)) {
      n = fill(out, v, n, name);
    } else {
      throw bad(`input '${name}' data[${i}] is ${JSON.stringify(v)}, not a number`);
    }
  }
  return n;
}

function bad(message: string): ValidationError {
  return new ValidationError(message, { code: 'invalid_request' });
}
