/**
 * The serving table's hand-over rule: a model replaced by an activation or rollback keeps its session until
 * the last request running on it is done, so a switch under traffic never fails a request.
 */
import { describe, expect, it } from 'vitest';
import { ModelHost, type ServingModel } from '../../../../agent/runtime/host.js';
import type { Manifest } from '../../../../shared/manifest.js';

function model(version: number, released: number[]): ServingModel {
  return {
    name: 'm',
    version,
    slot: version % 2 ? 'a' : 'b',
    manifest: {} as Manifest,
    loaded: {
      provider: 'cpu',
      skipped: [],
      run: async () => ({}),
      release: async () => {
        released.push(version);
      },
    },
  };
}

describe('ModelHost', () => {
  it('releases a replaced model only after the requests still using it are done', () => {
    const released: number[] = [];
    const host = new ModelHost();
    host.swap(model(1, released));
    const first = host.use('m')!;
    const second = host.use('m')!;
    const previous = host.swap(model(2, released))!;
    host.retire(previous);
    expect(released).toEqual([]);
    host.done(first);
    expect(released).toEqual([]);
    host.done(second);
    expect(released).toEqual([1]);
    // New requests get the new model.
    expect(host.use('m')?.version).toBe(2);
  });

  it('releases at once when nothing uses the replaced model', () => {
    const released: number[] = [];
    const host = new ModelHost();
    host.swap(model(1, released));
    host.done(host.use('m')!);
    host.retire(host.swap(model(2, released))!);
    expect(released).toEqual([1]);
  });

  it('never releases the model that is serving', () => {
    const released: number[] = [];
    const host = new ModelHost();
    const serving = model(1, released);
    host.swap(serving);
    host.retire(serving);
    expect(released).toEqual([]);
    expect(host.use('m')).toBe(serving);
  });

  it('a release error goes to the handler, not to the caller', async () => {
    let handled!: (err: unknown) => void;
    const error = new Promise<unknown>((resolve) => {
      handled = resolve;
    });
    const host = new ModelHost((err) => handled(err));
    const failing = model(1, []);
    failing.loaded.release = async () => {
      throw new Error('already disposed');
    };
    host.swap(failing);
    expect(() => host.retire(host.swap(model(2, []))!)).not.toThrow();
    expect(((await error) as Error).message).toBe('already disposed');
  });
});
