/**
 * The one sequence that puts a slot's model in service (runtime/serve.ts), over real ONNX Runtime sessions
 * and real slots in a temp dir: self-tested first, the pointer persisted before the serving table changes,
 * the replaced session retired, a failed session released, and no slot's model file ever written.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelHost } from '../../../../agent/runtime/host.js';
import { type LoadedModel, type ModelRuntime, OrtRuntime } from '../../../../agent/runtime/ort.js';
import { loadChecked, serveSlot } from '../../../../agent/runtime/serve.js';
import { type ActivePointer, type Slot, SlotStore } from '../../../../agent/runtime/slots.js';
import { generateSigningKey } from '../../../../shared/crypto/signing.js';
import { MANIFEST_SCHEMA, type Manifest, signManifest } from '../../../../shared/manifest.js';
import { seededMlp } from '../../../../shared/onnx/mlp.js';
import { codeOf } from '../../../support/errors.js';
import { TEST_CPU_PROFILE } from '../../../support/profiles.js';

const INPUT = [0.5, -0.25, 0.75, 0.1];

async function manifestOf(bytes: Uint8Array, version: number, golden: 'right' | 'wrong'): Promise<Manifest> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(INPUT), [1, 4]) });
  await session.release();
  const computed = Array.from(out.output!.data as Float32Array);
  return signManifest(
    {
      schema: MANIFEST_SCHEMA,
      name: 'm',
      version,
      artifact: { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length },
      inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
      outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
      opset: 13,
      createdAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      golden: {
        inputs: [{ name: 'input', dtype: 'float32', shape: [1, 4], data: INPUT }],
        // Softmax outputs are in [0, 1]: 5 is never within 1e-4 of them.
        outputs: [
          { name: 'output', dtype: 'float32', shape: [1, 2], data: golden === 'right' ? computed : [5, 5] },
        ],
        tolerance: { abs: 1e-4, rel: 0 },
      },
    },
    generateSigningKey(),
  );
}

/** The real runtime, noting each session it loads and whether it was released. */
class WatchedRuntime implements ModelRuntime {
  readonly sessions: { loaded: LoadedModel; released: boolean }[] = [];
  private readonly real = new OrtRuntime();
  async load(path: string, profile: typeof TEST_CPU_PROFILE): Promise<LoadedModel> {
    const real = await this.real.load(path, profile);
    const entry = { loaded: real, released: false };
    entry.loaded = {
      ...real,
      release: async () => {
        entry.released = true;
        await real.release();
      },
    };
    this.sessions.push(entry);
    return entry.loaded;
  }
}

describe('serveSlot / loadChecked', () => {
  let slots: SlotStore;
  let runtime: WatchedRuntime;
  let host: ModelHost;
  let root: string;

  const stage = async (slot: Slot, seed: number, version: number, golden: 'right' | 'wrong') => {
    const bytes = seededMlp({ seed, sizes: [4, 8, 2], softmax: true });
    const manifest = await manifestOf(bytes, version, golden);
    const source = join(root, `incoming-${slot}.onnx`);
    await writeFile(source, bytes);
    await slots.stage('m', slot, source, JSON.stringify(manifest));
    return manifest;
  };
  const deps = () => ({ runtime, slots, profile: TEST_CPU_PROFILE, host });
  const slotFiles = async () =>
    Promise.all(
      (['a', 'b'] as const).map(async (s) =>
        createHash('sha256')
          .update(await readFile(slots.modelPath('m', s)))
          .digest('hex'),
      ),
    );

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'agent-serve-'));
    slots = new SlotStore(join(root, 'models'));
    runtime = new WatchedRuntime();
    host = new ModelHost();
  });
  afterEach(async () => {
    for (const s of runtime.sessions) if (!s.released) await s.loaded.release();
  });

  it('serves a self-tested slot, with the pointer written before the serving table changed', async () => {
    const manifest = await stage('a', 1, 1, 'right');
    // Runs inside swap: what the pointer file (slots.ts: <root>/<name>/active.json) says at that moment.
    const pointerAtSwap: unknown[] = [];
    host.onChange(() => {
      pointerAtSwap.push(JSON.parse(readFileSync(join(root, 'models', 'm', 'active.json'), 'utf8')));
    });
    const loaded = await serveSlot(deps(), { name: 'm', slot: 'a', manifest });
    expect(host.get('m')).toMatchObject({ version: 1, slot: 'a', loaded });
    const pointer: ActivePointer = { slot: 'a', version: 1, sha256: manifest.artifact.sha256 };
    expect(pointerAtSwap).toEqual([pointer]);
    expect(await slots.readActive('m')).toEqual(pointer);
  });

  it('retires the session it replaced (released: nothing runs on it)', async () => {
    const first = await stage('a', 1, 1, 'right');
    await serveSlot(deps(), { name: 'm', slot: 'a', manifest: first });
    const second = await stage('b', 2, 2, 'right');
    await serveSlot(deps(), { name: 'm', slot: 'b', manifest: second });
    expect(runtime.sessions.map((s) => s.released)).toEqual([true, false]);
    expect(host.get('m')?.version).toBe(2);
    expect((await slots.readActive('m'))?.slot).toBe('b');
  });

  it('a slot that fails its self-test is not served: its session released, pointer and table untouched', async () => {
    const good = await stage('a', 1, 1, 'right');
    await serveSlot(deps(), { name: 'm', slot: 'a', manifest: good });
    const bad = await stage('b', 2, 2, 'wrong');
    const files = await slotFiles();
    expect(await codeOf(serveSlot(deps(), { name: 'm', slot: 'b', manifest: bad }))).toBe('selftest_failed');
    expect(runtime.sessions.map((s) => s.released)).toEqual([false, true]);
    expect(host.get('m')?.version).toBe(1);
    expect((await slots.readActive('m'))?.slot).toBe('a');
    expect(await slotFiles()).toEqual(files);
  });

  it('a pointer that cannot be written leaves the table as it was and releases the session', async () => {
    const good = await stage('a', 1, 1, 'right');
    await serveSlot(deps(), { name: 'm', slot: 'a', manifest: good });
    const next = await stage('b', 2, 2, 'right');
    const failing = Object.assign(Object.create(slots) as SlotStore, {
      writeActive: async () => {
        throw new Error('EIO: disk gone');
      },
    });
    await expect(
      serveSlot({ ...deps(), slots: failing }, { name: 'm', slot: 'b', manifest: next }),
    ).rejects.toThrow('EIO');
    expect(host.get('m')?.version).toBe(1);
    expect(runtime.sessions.map((s) => s.released)).toEqual([false, true]);
  });

  it('takes a session already checked instead of loading again', async () => {
    const manifest = await stage('a', 1, 1, 'right');
    const candidate = await loadChecked(deps(), { name: 'm', slot: 'a', manifest }, { warm: true });
    await serveSlot(deps(), { name: 'm', slot: 'a', manifest, loaded: candidate });
    expect(runtime.sessions).toHaveLength(1);
    expect(host.get('m')?.loaded).toBe(candidate);
  });

  it('writePointer: false serves without writing the pointer', async () => {
    const manifest = await stage('a', 1, 1, 'right');
    await serveSlot(deps(), { name: 'm', slot: 'a', manifest }, { writePointer: false });
    expect(host.get('m')?.version).toBe(1);
    expect(await slots.readActive('m')).toBeNull();
  });

  it('serving never writes a model file: both slots keep their bytes', async () => {
    const a = await stage('a', 1, 1, 'right');
    const b = await stage('b', 2, 2, 'right');
    const files = await slotFiles();
    await serveSlot(deps(), { name: 'm', slot: 'a', manifest: a });
    await serveSlot(deps(), { name: 'm', slot: 'b', manifest: b });
    await serveSlot(deps(), { name: 'm', slot: 'a', manifest: a });
    expect(await slotFiles()).toEqual(files);
  });
});
