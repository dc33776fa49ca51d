/**
 * Drift reports over a real LevelDB: each device's latest verdict and since when (from the device's own
 * span, kept while the verdict holds), grouped by version with per-feature counts, a timeline per version,
 * and the drift_share gate's input for a rollout's devices.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DriftReports } from '../../../../fleet-server/drift/reports.js';
import { driftReport as report } from '../../../support/drift.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';

describe('DriftReports', () => {
  let store: TempStore;
  let clock: ReturnType<typeof manualClock>;
  let drift: DriftReports;

  beforeEach(async () => {
    store = await openTempStore();
    clock = manualClock();
    drift = new DriftReports(
      store.db.collection('drift-latest'),
      store.db.collection('drift-history'),
      clock,
    );
  });
  afterEach(() => store.close());

  it("dates a verdict from the device's own span, not its clock, and keeps the start while it holds", async () => {
    const t0 = clock.now().getTime();
    // The device clock is an hour off; it has held "drift" for 20 s by its own clock.
    const first = await drift.record(
      'd1',
      report(1, 'drift', { ts: 5_000_000, since: 4_980_000, drifted: ['a', 'b'] }),
    );
    expect(first.since).toBe(t0 - 20_000);
    clock.advance(30_000);
    const again = await drift.record(
      'd1',
      report(1, 'drift', { ts: 5_030_000, since: 5_029_000, drifted: ['a'] }),
    );
    expect(again.since).toBe(t0 - 20_000); // still the same drift episode
    clock.advance(10_000);
    const cleared = await drift.record('d1', report(1, 'no_drift', { ts: 5_040_000 }));
    expect(cleared.since).toBe(clock.now().getTime());
  });

  it('groups the latest reports by version, with per-feature drift and concept drift', async () => {
    await drift.record('d1', report(1, 'drift', { drifted: ['a'], psi: 0.4 }));
    await drift.record('d2', report(1, 'no_drift', { psi: 0.2 }));
    await drift.record('d3', report(1, 'insufficient_data'));
    await drift.record('d4', report(2, 'no_drift', { concept: true }));
    const [v2, v1] = await drift.byVersion('clf');
    expect(v1).toMatchObject({
      version: 1,
      devices: 3,
      drifting: 1,
      noDrift: 1,
      insufficient: 1,
      share: 0.5,
      conceptDrifting: 0,
    });
    expect(v1!.features).toEqual([
      { name: 'a', drifting: 1, meanPsi: expect.closeTo(0.3, 12) },
      { name: 'b', drifting: 0, meanPsi: expect.closeTo(0.3, 12) },
    ]);
    expect(v2).toMatchObject({ version: 2, devices: 1, drifting: 0, share: 0, conceptDrifting: 1 });
    expect(await drift.models()).toEqual(['clf']);
  });

  it("reads one device's latest report of a model without the others", async () => {
    await drift.record('d1', report(1, 'drift', { drifted: ['a'] }));
    await drift.record('d1', report(2, 'no_drift'));
    await drift.record('d2', report(1, 'drift', { drifted: ['b'] }));
    expect(await drift.device('clf', 'd1')).toMatchObject({
      deviceId: 'd1',
      version: 2,
      verdict: 'no_drift',
    });
    expect(await drift.device('clf', 'd2')).toMatchObject({ deviceId: 'd2', version: 1, verdict: 'drift' });
    expect(await drift.device('clf', 'd3')).toBeUndefined();
    expect(await drift.device('other', 'd1')).toBeUndefined();
  });

  it('feeds the drift_share gate: reports of the rollout version in the window, with a verdict', async () => {
    const since = clock.now().getTime();
    await drift.record('d1', report(2, 'drift', { drifted: ['a'] }));
    await drift.record('d2', report(2, 'no_drift'));
    await drift.record('d3', report(2, 'insufficient_data')); // no verdict: not counted
    await drift.record('d4', report(1, 'drift')); // another version
    expect(await drift.gateInput(['d1', 'd2', 'd3', 'd4', 'd5'], { name: 'clf', version: 2 }, since)).toEqual(
      {
        reporting: 2,
        drifted: 1,
      },
    );
    // Reports older than the analysis window do not count.
    expect(await drift.gateInput(['d1', 'd2'], { name: 'clf', version: 2 }, since + 1)).toEqual({
      reporting: 0,
      drifted: 0,
    });
  });

  it('draws drift over time per version, in buckets', async () => {
    const t0 = clock.now().getTime();
    await drift.record('d1', report(1, 'no_drift', { psi: 0.1 }));
    await drift.record('d2', report(1, 'no_drift', { psi: 0.3 }));
    clock.advance(60_000);
    await drift.record('d1', report(1, 'drift', { drifted: ['a'], psi: 1 }));
    await drift.record('d2', report(1, 'insufficient_data'));
    const points = await drift.timeline('clf', 1, t0, 60_000);
    expect(points).toEqual([
      {
        at: t0,
        reports: 2,
        drifting: 0,
        share: 0,
        psi: { a: expect.closeTo(0.2, 12), b: expect.closeTo(0.2, 12) },
      },
      { at: t0 + 60_000, reports: 2, drifting: 1, share: 1, psi: { a: 1, b: 1 } },
    ]);
    expect(await drift.timeline('clf', 2, t0, 60_000)).toEqual([]);
  });
});
