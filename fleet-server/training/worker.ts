/**
 * Runs training jobs off the main thread, so the HTTP path is never blocked by TF.js or ORT.
 *
 * `runInWorker` starts one worker_threads Worker per job (this file, loaded through tsx), sends the input
 * with its typed arrays transferred (the caller's arrays are detached unless `copy` is set), relays
 * progress, and resolves with the result (the ONNX bytes transferred back). When loaded as a worker,
 * this module runs the job it is sent and reports `progress`, then `result` or `error`.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { EdgefleetError } from '../../shared/errors.js';
import {
  type ProgressListener,
  runTrainingJob,
  type TrainingJobInput,
  type TrainingJobResult,
} from './job.js';
import type { EpochProgress } from './train.js';

/** Marks a Worker started by runInWorker, so importing this module elsewhere never serves jobs. */
const WORKER_MARK = 'edgefleetTrainingWorker';

type ToWorker = { type: 'run'; input: TrainingJobInput };
type FromWorker =
  | { type: 'progress'; progress: EpochProgress }
  | { type: 'result'; result: TrainingJobResult }
  | {
      type: 'error';
      error: { name: string; code: string; message: string; retryable: boolean; stack?: string };
    };

/** A job that failed inside the worker, re-raised on the calling thread with the worker's code and message. */
export class TrainingJobError extends EdgefleetError {
  override readonly name = 'TrainingJobError';
  readonly workerStack: string | undefined;
  constructor(code: string, message: string, options: { retryable: boolean; stack?: string }) {
    super(code, message, { retryable: options.retryable });
    this.workerStack = options.stack;
  }
}

export function runInWorker(
  input: TrainingJobInput,
  onProgress?: ProgressListener,
  options: { copy?: boolean; signal?: AbortSignal } = {},
): Promise<TrainingJobResult> {
  if (options.signal?.aborted)
    return Promise.reject(
      new TrainingJobError('interrupted', 'training was stopped before it started', { retryable: true }),
    );
  const features = transferable(input.features, options.copy ?? false);
  const labels = transferable(input.labels, options.copy ?? false);
  const worker = new Worker(bootstrap(new URL('./worker.ts', import.meta.url)), {
    eval: true,
    workerData: { [WORKER_MARK]: true },
  });
  return new Promise<TrainingJobResult>((resolve, reject) => {
    let settled = false;
    const onAbort = () =>
      settle(() =>
        reject(
          new TrainingJobError('interrupted', 'training was stopped (the fleet server is shutting down)', {
            retryable: true,
          }),
        ),
      );
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      fn();
      void worker.terminate();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'progress':
          onProgress?.(message.progress);
          return;
        case 'result':
          settle(() => resolve(message.result));
          return;
        case 'error': {
          const e = message.error;
          const stack = e.stack === undefined ? {} : { stack: e.stack };
          settle(() =>
            reject(
              new TrainingJobError(e.code, `${e.name}: ${e.message}`, { retryable: e.retryable, ...stack }),
            ),
          );
          return;
        }
        default: {
          const never: never = message;
          settle(() =>
            reject(new Error(`unexpected message from training worker: ${JSON.stringify(never)}`)),
          );
        }
      }
    });
    worker.on('error', (err) =>
      settle(() => reject(new TrainingJobError('training_worker_crashed', err.message, { retryable: true }))),
    );
    worker.on('exit', (code) =>
      settle(() =>
        reject(
          new TrainingJobError(
            'training_worker_crashed',
            `training worker exited (code ${code}) before a result`,
            {
              retryable: true,
            },
          ),
        ),
      ),
    );
    const message: ToWorker = { type: 'run', input: { ...input, features, labels } };
    worker.postMessage(message, [features.buffer as ArrayBuffer, labels.buffer as ArrayBuffer]);
  });
}

/**
 * Source of a worker that loads tsx, then this TypeScript module. Workers do not inherit the parent's tsx
 * loader, and on Node 20 `execArgv: ['--import', 'tsx']` does not reach the worker's entry (checked:
 * "Unknown file extension .ts"), so the worker registers tsx's ESM hooks itself before importing.
 * Specifiers are absolute URLs: an eval'd worker would otherwise resolve them from the process's cwd.
 */
function bootstrap(entry: URL): string {
  // tsx's package exports resolve `tsx` to dist/loader.mjs; its ESM API lives beside it. (The `require`
  // condition's index.cjs cannot be used here: it fails to load inside a worker.)
  const loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx'));
  const api = new URL('./esm/api/index.mjs', loader).href;
  return `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
}

/** A typed array that owns its whole (non-shared) buffer, so transferring it moves exactly its data. */
function transferable<T extends Float32Array | Int32Array | Uint8Array>(a: T, copy: boolean): T {
  const whole = a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer;
  return copy || !whole ? (a.slice() as T) : a;
}

function serveJobs(port: NonNullable<typeof parentPort>): void {
  port.once('message', async (message: ToWorker) => {
    try {
      const result = await runTrainingJob(message.input, (progress) =>
        port.postMessage({ type: 'progress', progress }),
      );
      const onnx = transferable(result.onnx, false);
      port.postMessage({ type: 'result', result: { ...result, onnx } } satisfies FromWorker, [
        onnx.buffer as ArrayBuffer,
      ]);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const error: Extract<FromWorker, { type: 'error' }>['error'] = {
        name: e.name,
        code: err instanceof EdgefleetError ? err.code : 'training_failed',
        message: e.message,
        retryable: err instanceof EdgefleetError ? err.retryable : false,
      };
      if (e.stack !== undefined) error.stack = e.stack;
      port.postMessage({ type: 'error', error } satisfies FromWorker);
    }
  });
}

if (parentPort && (workerData as Record<string, unknown> | null)?.[WORKER_MARK] === true)
  serveJobs(parentPort);
