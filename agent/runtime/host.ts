/**
 * The models being served right now, by name. The inference API reads from here on every request; the
 * updater swaps entries atomically on activation and rollback (a request sees the old model or the new, never
 * neither). A replaced model's session is released only once no request is still running on it: requests
 * bracket their work with `use`/`done`, and the updater hands the replaced model to `retire`.
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
  /** Requests running on each model (entries only while non-zero). */
  private readonly inUse = new Map<ServingModel, number>();
  /** Replaced models waiting for their last request before their session is released. */
  private readonly retiring = new Set<ServingModel>();

  constructor(private readonly onReleaseError: (err: unknown) => void = () => undefined) {}

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

  /** The model serving `name` for one request; pair with `done` once the request no longer needs it. */
  use(name: string): ServingModel | undefined {
    const model = this.models.get(name);
    if (model) this.inUse.set(model, (this.inUse.get(model) ?? 0) + 1);
    return model;
  }

  done(model: ServingModel): void {
    const n = (this.inUse.get(model) ?? 1) - 1;
    if (n > 0) {
      this.inUse.set(model, n);
      return;
    }
    this.inUse.delete(model);
    if (this.retiring.delete(model)) this.release(model);
  }

  /** Release a model `swap` replaced: now if no request uses it, else when the last one is done. */
  retire(model: ServingModel): void {
    if (this.models.get(model.name) === model) return; // still (or again) serving
    if (this.inUse.has(model)) this.retiring.add(model);
    else this.release(model);
  }

  private release(model: ServingModel): void {
    model.loaded.release().catch(this.onReleaseError);
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  active(): ActiveModel[] {
    return this.all().map((m) => ({
      name: m.name,
      version: m.version,
      executionProvider: m.loaded.provider,
      providersSkipped: m.loaded.skipped.map((s) => ({
        provider: s.provider,
        reason: s.reason.slice(0, 300),
      })),
    }));
  }
}
