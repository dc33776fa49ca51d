/**
 * The work behind each update state: verify the manifest, download (resumable, capped), verify the artifact
 * and stage it into the inactive slot, load + self-test, activate or start shadowing, and switch an active
 * model back to the other slot for a rollback. Each returns the machine's next event; none of them decides
 * what happens next. Errors become `failed` events with a specific reason code. Every slot switch goes
 * through `serveSlot` (runtime/serve.ts): self-tested, pointer written before the serving table, the replaced
 * session retired, never released under a request.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { EnrollResponse } from '../../shared/api/enroll.js';
import { EdgefleetError } from '../../shared/errors.js';
import type { FirmwareProfile } from '../../shared/firmware-profile.js';
import { type Manifest, ManifestError, verifyArtifact, verifyManifest } from '../../shared/manifest.js';
import type { ModelRef, Reason } from '../../shared/protocol/messages.js';
import type { ModelHost } from '../runtime/host.js';
import type { LoadedModel, ModelRuntime } from '../runtime/ort.js';
import { loadChecked, type SlotModel, serveSlot } from '../runtime/serve.js';
import type { ShadowRunner } from '../runtime/shadow.js';
import { otherSlot, type SlotStore } from '../runtime/slots.js';
import type { UpdateEvent, UpdateRecord } from './machine.js';

export interface EffectDeps {
  identity: EnrollResponse;
  profile: FirmwareProfile;
  downloadsDir: string;
  slots: SlotStore;
  host: ModelHost;
  runtime: ModelRuntime;
  /** Where shadowing candidates run beside the active model. */
  shadow: ShadowRunner;
  maxManifestBytes: number;
  downloadAttempts: number;
  now: () => Date;
  /** Awaited after the first downloaded chunk is on disk (crash-test hook; resolves at once normally). */
  afterFirstChunk: () => Promise<void>;
  /** Backoff between download attempts, ms (injectable so tests need not wait). */
  retryDelayMs: (attempt: number) => number;
}

export class UpdateEffects {
  /** Sessions loaded and self-tested, waiting for activation, by command id. */
  private readonly ready = new Map<string, LoadedModel>();

  constructor(private readonly deps: EffectDeps) {}

  manifestOf(record: UpdateRecord): Manifest {
    return verifyManifest(record.manifestText, this.verifyOptions());
  }

  private verifyOptions() {
    return {
      trustedKeys: this.deps.identity.trustedKeys,
      maxManifestBytes: this.deps.maxManifestBytes,
      installedVersion: null,
      now: this.deps.now(),
      profile: this.deps.profile,
    };
  }

  async verifyManifest(record: UpdateRecord): Promise<UpdateEvent> {
    try {
      const manifest = verifyManifest(record.manifestText, {
        ...this.verifyOptions(),
        installedVersion: (name) => this.deps.host.versionOf(name),
      });
      return {
        type: 'manifest_ok',
        model: { name: manifest.name, version: manifest.version },
        sha256: manifest.artifact.sha256,
      };
    } catch (err) {
      if (err instanceof ManifestError && err.code === 'version_already_installed') {
        const serving = this.deps.host.get(record.model.name);
        return { type: 'already_installed', provider: serving?.loaded.provider ?? null };
      }
      return failed(err);
    }
  }

  partPath(record: UpdateRecord): string {
    return join(this.deps.downloadsDir, `${record.sha256}.part`);
  }

  async download(record: UpdateRecord): Promise<UpdateEvent> {
    let manifest: Manifest;
    try {
      manifest = this.manifestOf(record);
    } catch (err) {
      return failed(err);
    }
    await mkdir(this.deps.downloadsDir, { recursive: true });
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.deps.downloadAttempts; attempt++) {
      try {
        await this.downloadOnce(record, manifest);
        return { type: 'downloaded' };
      } catch (err) {
        lastError = err;
        if (err instanceof EdgefleetError && !err.retryable) return failed(err);
        if (attempt < this.deps.downloadAttempts) {
          await new Promise((resolve) => setTimeout(resolve, this.deps.retryDelayMs(attempt)));
        }
      }
    }
    return failed(
      new EdgefleetError(
        'download_failed',
        `download failed ${this.deps.downloadAttempts} times: ${(lastError as Error)?.message}`,
      ),
    );
  }

  private async downloadOnce(record: UpdateRecord, manifest: Manifest): Promise<void> {
    const part = this.partPath(record);
    const expected = manifest.artifact.size;
    let have = Math.max(0, await sizeOf(part));
    if (have > expected) {
      await rm(part, { force: true });
      have = 0;
    }
    if (have === expected) return;
    const { username, password } = this.deps.identity.mqtt;
    const res = await fetch(record.artifactUrl, {
      headers: {
        authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
        ...(have > 0 ? { range: `bytes=${have}-` } : {}),
      },
    });
    if (res.status === 416) {
      await rm(part, { force: true });
      throw new EdgefleetError('download_restart', 'the server refused the resume range; starting over', {
        retryable: true,
      });
    }
    if (res.status === 200) {
      have = 0; // no range support (or none asked): the body is the whole artifact
    } else if (res.status !== 206) {
      const retryable = res.status >= 500 || res.status === 429;
      throw new EdgefleetError('download_failed', `artifact download answered HTTP ${res.status}`, {
        retryable,
      });
    }
    if (!res.body)
      throw new EdgefleetError('download_failed', 'artifact download has no body', { retryable: true });
    const handle = await open(part, have > 0 ? 'a' : 'w');
    let written = have;
    let firstChunk = true;
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        written += chunk.length;
        if (written > expected) {
          throw new EdgefleetError(
            'artifact_size_mismatch',
            `the server sent more than the manifest's ${expected} bytes`,
          );
        }
        await handle.write(chunk);
        if (firstChunk) {
          firstChunk = false;
          await handle.sync();
          await this.deps.afterFirstChunk();
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (written !== expected) {
      throw new EdgefleetError('download_incomplete', `download ended at ${written} of ${expected} bytes`, {
        retryable: true,
      });
    }
  }

  async verifyAndStage(record: UpdateRecord): Promise<UpdateEvent> {
    try {
      const manifest = this.manifestOf(record);
      const slot = await this.deps.slots.inactiveSlot(manifest.name);
      const part = this.partPath(record);
      const inSlot = this.deps.slots.modelPath(manifest.name, slot);
      // After a crash the artifact may already have been moved into the slot.
      const source = (await sizeOf(part)) >= 0 ? part : (await sizeOf(inSlot)) >= 0 ? inSlot : null;
      if (!source) throw new EdgefleetError('artifact_missing', 'the downloaded artifact is gone');
      verifyArtifact(manifest, { size: await sizeOf(source), sha256: await sha256File(source) });
      await this.deps.slots.stage(manifest.name, slot, source, record.manifestText);
      return { type: 'staged', slot };
    } catch (err) {
      return failed(err);
    }
  }

  async loadAndSelfTest(record: UpdateRecord): Promise<UpdateEvent> {
    try {
      const manifest = this.manifestOf(record);
      const loaded = await loadChecked(this.deps, this.slotModel(record, manifest), { warm: true });
      this.ready.set(record.commandId, loaded);
      return { type: 'loaded', provider: loaded.provider };
    } catch (err) {
      return failed(err);
    }
  }

  /** The staged slot of an install record (set at `staged`, before any state that loads it). */
  private slotModel(record: UpdateRecord, manifest: Manifest): SlotModel {
    return { name: manifest.name, slot: record.slot!, manifest };
  }

  async activate(record: UpdateRecord): Promise<UpdateEvent> {
    try {
      // Verified against the pinned key at `received`; parse again without the version rule (the pointer may
      // already name this version when a crash interrupted the switch).
      const manifest = this.manifestOf(record);
      // A shadowing candidate is already loaded (and self-tested) beside the active model. Without one
      // (restarted mid-activation) the staged model, which passed its self-test before, is loaded and checked again.
      const loaded = this.ready.get(record.commandId) ?? this.deps.shadow.take(record.model)?.loaded;
      this.ready.delete(record.commandId);
      await serveSlot(this.deps, { ...this.slotModel(record, manifest), loaded });
      return { type: 'activated' };
    } catch (err) {
      return failed(err);
    }
  }

  /** Load the self-tested candidate beside the active model and start mirroring traffic to it. */
  async startShadow(record: UpdateRecord): Promise<UpdateEvent> {
    let loaded: LoadedModel | undefined;
    try {
      const manifest = this.manifestOf(record);
      loaded = this.ready.get(record.commandId);
      this.ready.delete(record.commandId);
      // Restarted while shadowing: load and check the staged candidate again.
      loaded ??= await loadChecked(this.deps, this.slotModel(record, manifest));
      const replaced = this.deps.shadow.set({
        model: { name: manifest.name, version: manifest.version },
        loaded,
        percent: record.shadowPercent ?? 100,
        output: manifest.outputs[0]!.name,
      });
      if (replaced && replaced.loaded !== loaded) await replaced.loaded.release().catch(() => undefined);
      return { type: 'shadow_started' };
    } catch (err) {
      await loaded?.release().catch(() => undefined);
      return failed(err);
    }
  }

  /**
   * Leave `model` when it is the active one: switch back to the model kept in the other slot (no download),
   * after loading and self-testing it. `switched: false` when `model` is not the active version (nothing to
   * leave). A failure names why; the active model then keeps serving.
   */
  async rollbackActive(model: ModelRef): Promise<RollbackOutcome> {
    try {
      const pointer = await this.deps.slots.readActive(model.name);
      if (!pointer || pointer.version !== model.version) return { ok: true, switched: false };
      const slot = otherSlot(pointer.slot);
      const manifest = await this.deps.slots.readManifest(model.name, slot);
      if (!manifest) {
        return refused('no_previous_model', `no previous model of ${model.name} is kept on this device`);
      }
      // The other slot may hold a newer candidate staged since (it overwrote the previous model): never
      // "roll back" forward to a version the fleet has not activated.
      if (manifest.version >= model.version) {
        return refused(
          'no_previous_model',
          `the other slot of ${model.name} holds v${manifest.version}, not a version older than v${model.version}: the previous model is gone`,
        );
      }
      await serveSlot(this.deps, { name: model.name, slot, manifest });
      return { ok: true, switched: true };
    } catch (err) {
      return { ok: false, reason: reasonOf(err) };
    }
  }

  async discard(record: UpdateRecord): Promise<void> {
    const loaded = this.ready.get(record.commandId);
    this.ready.delete(record.commandId);
    await loaded?.release().catch(() => undefined);
    await this.deps.shadow
      .take(record.model)
      ?.loaded.release()
      .catch(() => undefined);
    if (record.sha256) await rm(this.partPath(record), { force: true });
  }
}

/** What a rollback of the active model came to: switched back, nothing to leave, or refused with a reason. */
export type RollbackOutcome = { ok: true; switched: boolean } | { ok: false; reason: Reason };

function refused(code: string, message: string): RollbackOutcome {
  return { ok: false, reason: { code, message } };
}

function failed(err: unknown): UpdateEvent {
  return { type: 'failed', reason: reasonOf(err) };
}

export function reasonOf(err: unknown): Reason {
  if (err instanceof EdgefleetError) return { code: err.code, message: err.message.slice(0, 2000) };
  return { code: 'internal_error', message: String((err as Error)?.message ?? err).slice(0, 2000) };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return -1;
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
