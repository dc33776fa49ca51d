/**
 * Chooses the TensorFlow.js backend for training: native TensorFlow (GPU, then CPU) when its package is
 * installed, else the WASM backend, else the pure-JS `cpu` backend. The choice is returned, never stored:
 * callers pass `{ tf }` on. (TF.js keeps one global engine per thread; that is TF.js's state, not ours.)
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export type Tf = typeof import('@tensorflow/tfjs');
export const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface TfBackend {
  tf: Tf;
  backend: BackendName;
}

// Specifiers held in a variable so TypeScript does not require the (optional, uninstalled) packages.
const NATIVE_PACKAGE: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

/**
 * Load TF.js on the best available backend, or on `force` (which then must work: no fallback).
 * Fallback order: tensorflow-gpu → tensorflow → wasm → cpu.
 */
export async function loadTf(force?: BackendName): Promise<TfBackend> {
  const order: readonly BackendName[] = force ? [force] : BACKENDS;
  const failures: string[] = [];
  for (const backend of order) {
    try {
      return { tf: await tryBackend(backend), backend };
    } catch (err) {
      failures.push(`${backend}: ${(err as Error).message}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could be loaded (${failures.join('; ')})`);
}

async function tryBackend(backend: BackendName): Promise<Tf> {
  switch (backend) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      // The native packages re-export tfjs with their backend registered and selected.
      const tf = (await import(NATIVE_PACKAGE[backend])) as Tf;
      await tf.ready();
      return tf;
    }
    case 'wasm': {
      const tf = await import('@tensorflow/tfjs');
      const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
      const require = createRequire(import.meta.url);
      setWasmPaths(
        `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`,
      );
      if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
      await tf.ready();
      return tf;
    }
    case 'cpu': {
      const tf = await import('@tensorflow/tfjs');
      if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
      await tf.ready();
      return tf;
    }
    default: {
      const never: never = backend;
      throw new Error(`unknown backend ${String(never)}`);
    }
  }
}
