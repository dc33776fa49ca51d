/**
 * The models being served right now, by name. The inference API reads from here on every request; the
 * updater swaps entries atomically on activation (a request sees the old model or the new, never neither).
 */
import type { Manifest } from '../../shared/manifest.js';
import type { ActiveModel } from '../../shared/protocol/messages.js';
import type { LoadedModel } from './ort.js';
import type { Slot } from './slots.js';

export interface ServingModel {
  name: string;
  version: number;
  slot: Slot;
  manifest: Manifest;
  loaded: LoadedModel;
}

export class ModelHost {
  private readonly models = new Map<string, ServingModel>();
  private readonly listeners: (() => void)[] = [];

  get(name: string): ServingModel | undefined {
    return this.models.get(name);
  }

  all(): ServingModel[] {
    return [...this.models.values()];
  }

  versionOf(name: string): number | null {
    return this.models.get(name)?.version ?? null;
  }

  /** Put `model` in service; returns the one it replaced (the caller releases it). */
  swap(model: ServingModel): ServingModel | undefined {
    const previous = this.models.get(model.name);
    this.models.set(model.name, model);
    for (const listener of this.listeners) listener();
    return previous;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  active(): ActiveModel[] {
    return this.all().map((m) => ({
      name: m.name,
      version: m.version,
      executionProvider: m.loaded.provider,
    }));
  }
}
