/**
 * Adaptive micro-batching (the idea of Triton's dynamic batcher, without its delay): a request that finds
 * the model idle runs at once, so latency at low load is untouched; requests that arrive while a run is in
 * flight wait for it and then run together as ONE batch along the batch dimension, and the outputs are split
 * back per request. Under concurrency this trades N small runs for one larger run, which is where an edge
 * device's CPU goes (onnxruntime-node runs a session on the main thread).
 *
 * Only models whose every input and output has a symbolic first dimension are batched; requests are grouped
 * only with others whose remaining dimensions match. Everything else runs alone, exactly as before.
 */
import { elementCount, type TensorSpec, type TypedData, typedArrayFor } from '../../shared/tensors.js';
import type { FeedTensor, LoadedModel, OutputTensor } from './ort.js';

interface Pending {
  feeds: Record<string, FeedTensor>;
  rows: number;
  key: string;
  resolve: (out: Record<string, OutputTensor>) => void;
  reject: (err: unknown) => void;
}

export class MicroBatcher {
  private readonly batchable: boolean;
  private readonly queue: Pending[] = [];
  private running = false;
  /** Batches run and requests served through them, for metrics and tests. */
  readonly counters = { batches: 0, batchedRequests: 0 };

  constructor(
    private readonly model: LoadedModel,
    private readonly inputs: TensorSpec[],
    outputs: TensorSpec[],
    private readonly maxBatchRows: number,
  ) {
    const symbolicFirst = (t: TensorSpec) => t.shape.length > 0 && typeof t.shape[0] === 'string';
    this.batchable = maxBatchRows > 1 && inputs.every(symbolicFirst) && outputs.every(symbolicFirst);
  }

  run(feeds: Record<string, FeedTensor>): Promise<Record<string, OutputTensor>> {
    if (!this.batchable) return this.model.run(feeds);
    const first = feeds[this.inputs[0]!.name]!;
    const rows = first.dims[0]!;
    const key = this.inputs.map((i) => feeds[i.name]!.dims.slice(1).join('x')).join('|');
    return new Promise((resolve, reject) => {
      this.queue.push({ feeds, rows, key, resolve, reject });
      if (!this.running) this.next();
    });
  }

  private next(): void {
    const group = this.takeGroup();
    if (group.length === 0) {
      this.running = false;
      return;
    }
    this.running = true;
    this.dispatch(group).finally(() => this.next());
  }

  /** The oldest request plus every queued request with the same trailing dims, up to maxBatchRows rows. */
  private takeGroup(): Pending[] {
    if (this.queue.length === 0) return [];
    const head = this.queue[0]!;
    const group: Pending[] = [];
    let rows = 0;
    for (let i = 0; i < this.queue.length; ) {
      const p = this.queue[i]!;
      if (p.key === head.key && (group.length === 0 || rows + p.rows <= this.maxBatchRows)) {
        group.push(p);
        rows += p.rows;
        this.queue.splice(i, 1);
      } else {
        i++;
      }
    }
    return group;
  }

  private async dispatch(group: Pending[]): Promise<void> {
    if (group.length === 1) {
      const only = group[0]!;
      try {
        only.resolve(await this.model.run(only.feeds));
      } catch (err) {
        only.reject(err);
      }
      return;
    }
    try {
      const out = await this.model.run(concatenate(this.inputs, group));
      this.counters.batches++;
      this.counters.batchedRequests += group.length;
      let offset = 0;
      for (const p of group) {
        p.resolve(sliceRows(out, offset, p.rows));
        offset += p.rows;
      }
    } catch (err) {
      for (const p of group) p.reject(err);
    }
  }
}

function concatenate(inputs: TensorSpec[], group: Pending[]): Record<string, FeedTensor> {
  const totalRows = group.reduce((n, p) => n + p.rows, 0);
  const feeds: Record<string, FeedTensor> = {};
  for (const spec of inputs) {
    const sample = group[0]!.feeds[spec.name]!;
    const dims = [totalRows, ...sample.dims.slice(1)];
    const data = typedArrayFor(spec.dtype, elementCount(dims));
    let at = 0;
    for (const p of group) {
      const part = p.feeds[spec.name]!.data;
      (data as Float32Array).set(part as Float32Array, at);
      at += part.length;
    }
    feeds[spec.name] = { dtype: spec.dtype, data, dims };
  }
  return feeds;
}

function sliceRows(
  out: Record<string, OutputTensor>,
  startRow: number,
  rows: number,
): Record<string, OutputTensor> {
  const result: Record<string, OutputTensor> = {};
  for (const name in out) {
    const t = out[name]!;
    const rowSize = elementCount(t.dims.slice(1));
    const data = t.data as TypedData;
    result[name] = {
      dtype: t.dtype,
      data: data.subarray(startRow * rowSize, (startRow + rows) * rowSize),
      dims: [rows, ...t.dims.slice(1)],
    };
  }
  return result;
}
