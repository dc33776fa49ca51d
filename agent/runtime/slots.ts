/**
 * Model slots on disk. Each model name has two slots and a pointer:
 *   <root>/<name>/a/{model.onnx,manifest.json}   <root>/<name>/b/…   <root>/<name>/active.json
 * Invariants: updates write only into the slot the pointer does not name; the pointer is replaced
 * atomically; the slot it leaves keeps the previous model (rollback without download).
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgefleetError } from '../../shared/errors.js';
import { type Manifest, ManifestSchema } from '../../shared/manifest.js';
import { fsyncDir, writeFileAtomic } from '../files.js';

export type Slot = 'a' | 'b';

export interface ActivePointer {
  slot: Slot;
  version: number;
  sha256: string;
}

export function otherSlot(slot: Slot): Slot {
  return slot === 'a' ? 'b' : 'a';
}

export class SlotStore {
  constructor(private readonly root: string) {}

  modelPath(name: string, slot: Slot): string {
    return join(this.root, name, slot, 'model.onnx');
  }

  async names(): Promise<string[]> {
    try {
      return (await readdir(this.root, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      return [];
    }
  }

  async readActive(name: string): Promise<ActivePointer | null> {
    try {
      return JSON.parse(await readFile(join(this.root, name, 'active.json'), 'utf8')) as ActivePointer;
    } catch {
      return null;
    }
  }

  async writeActive(name: string, pointer: ActivePointer): Promise<void> {
    await writeFileAtomic(join(this.root, name, 'active.json'), JSON.stringify(pointer));
  }

  /** The slot an update may write into: never the one the pointer names. */
  async inactiveSlot(name: string): Promise<Slot> {
    const active = await this.readActive(name);
    return active ? otherSlot(active.slot) : 'a';
  }

  async readManifest(name: string, slot: Slot): Promise<Manifest | null> {
    try {
      const parsed = ManifestSchema.safeParse(
        JSON.parse(await readFile(join(this.root, name, slot, 'manifest.json'), 'utf8')),
      );
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  /**
   * Put a verified artifact into `slot` with its manifest. Refuses the active slot. Idempotent across a
   * crash: when `source` already is the slot's model file (renamed before the crash), only the manifest
   * is (re)written.
   */
  async stage(name: string, slot: Slot, source: string, manifestText: string): Promise<void> {
    const active = await this.readActive(name);
    if (active?.slot === slot) {
      throw new EdgefleetError(
        'active_slot_refused',
        `refusing to stage into the active slot ${name}/${slot}`,
      );
    }
    const dir = join(this.root, name, slot);
    const target = this.modelPath(name, slot);
    if (source !== target) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await rename(source, target);
      await fsyncDir(dir);
    }
    await writeFileAtomic(join(dir, 'manifest.json'), manifestText);
  }
}
