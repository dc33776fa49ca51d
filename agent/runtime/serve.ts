/**
 * The one way a model in a slot goes into service: load the slot's model, self-test it on the manifest's golden
 * set, write the active pointer, swap it into the serving table, retire what it replaced. Activation, a
 * rollback to the other slot and serving from disk at start all go through here, so their order is one:
 *  - nothing is served that has not passed its self-test in this process (a failed session is released);
 *  - the pointer is persisted BEFORE the serving table changes: after a crash the agent serves what it last
 *    served or what it was switching to, never a model the pointer does not name;
 *  - only the pointer is written, atomically: the slots' model files are never touched here, so the slot
 *    that is active stays as it is (staging into the inactive slot is `SlotStore.stage`'s job);
 *  - a replaced session is retired, released only once no request runs on it.
 */
import type { FirmwareProfile } from '../../shared/firmware-profile.js';
import type { Manifest } from '../../shared/manifest.js';
import type { ModelHost } from './host.js';
import type { LoadedModel, ModelRuntime } from './ort.js';
import { selfTest, warmUp } from './selftest.js';
import type { Slot, SlotStore } from './slots.js';

export interface SlotLoading {
  runtime: ModelRuntime;
  slots: SlotStore;
  profile: FirmwareProfile;
}

export interface SlotServing extends SlotLoading {
  host: ModelHost;
}

/** A slot's model and the manifest it was staged with. */
export interface SlotModel {
  name: string;
  slot: Slot;
  manifest: Manifest;
}

/**
 * Load the model in `target.slot` and self-test it; `warm` also runs the warm-up, so the first live requests
 * do not pay the cold start. A session that fails its self-test (or warm-up) is released before this throws.
 */
export async function loadChecked(
  deps: SlotLoading,
  target: SlotModel,
  options: { warm?: boolean } = {},
): Promise<LoadedModel> {
  const loaded = await deps.runtime.load(deps.slots.modelPath(target.name, target.slot), deps.profile);
  try {
    await selfTest(loaded, target.manifest.golden);
    if (options.warm) await warmUp(loaded, target.manifest.golden);
  } catch (err) {
    await loaded.release().catch(() => undefined);
    throw err;
  }
  return loaded;
}

/**
 * Put `target` in service. `loaded` is a session of it that already passed its self-test in this process
 * (a candidate loaded earlier, a shadow); without one, the slot is loaded and self-tested here. The session
 * is this function's from then on: released if it does not go into service. `writePointer: false` when the
 * pointer already names this slot (serving from disk at start): nothing is written then.
 */
export async function serveSlot(
  deps: SlotServing,
  target: SlotModel & { loaded?: LoadedModel | undefined },
  options: { writePointer?: boolean } = {},
): Promise<LoadedModel> {
  const loaded = target.loaded ?? (await loadChecked(deps, target));
  const { name, slot, manifest } = target;
  try {
    if (options.writePointer ?? true) {
      // Persisted before the serving table changes.
      await deps.slots.writeActive(name, {
        slot,
        version: manifest.version,
        sha256: manifest.artifact.sha256,
      });
    }
  } catch (err) {
    await loaded.release().catch(() => undefined);
    throw err;
  }
  const previous = deps.host.swap({ name, version: manifest.version, slot, manifest, loaded });
  // Released once the requests still running on it are done (never under a request in flight).
  if (previous) deps.host.retire(previous);
  return loaded;
}
