/**
 * The update driver with an in-memory record store and scripted effects (the effects' real I/O is covered by
 * test/integration/agent): persistence before effects, idempotent command ids (also when a command arrives
 * twice at once, as a persistent MQTT session plus the fleet's re-send deliver it), one update at a time in
 * arrival order, and recovery of unfinished records.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ModelHost } from '../../../../agent/runtime/host.js';
import { UpdateDriver, type UpdateStore } from '../../../../agent/updater/driver.js';
import type { RollbackOutcome, UpdateEffects } from '../../../../agent/updater/effects.js';
import type { UpdateEvent, UpdateRecord } from '../../../../agent/updater/machine.js';
import {
  type ActivateCommand,
  type InstallCommand,
  PROTOCOL_VERSION,
  type RollbackCommand,
  type UpdateMessage,
  type UpdateState,
} from '../../../../shared/protocol/messages.js';
import { HAPPY_PATH } from '../../../support/update-states.js';

const HAPPY = [...HAPPY_PATH];

class MemoryStore implements UpdateStore {
  readonly records = new Map<string, UpdateRecord>();
  /** Every persisted (commandId, state), in order. */
  readonly puts: [string, UpdateState][] = [];

  async get(id: string) {
    await Promise.resolve();
    return this.records.get(id);
  }
  async put(record: UpdateRecord) {
    await Promise.resolve();
    this.records.set(record.commandId, structuredClone(record));
    this.puts.push([record.commandId, record.state]);
  }
  async all() {
    return [...this.records.values()].map((r) => structuredClone(r));
  }
}

/** A deferred per effect call, so a test decides when (and how) each piece of work ends. */
interface Call {
  kind: string;
  commandId: string;
  /** The state persisted for this command when the effect started. */
  persisted: UpdateState | undefined;
  finish(event?: UpdateEvent): void;
}

const DEFAULT_EVENT: Record<string, UpdateEvent> = {
  verifyManifest: { type: 'manifest_ok', model: { name: 'm', version: 2 }, sha256: 'ab'.repeat(32) },
  download: { type: 'downloaded' },
  verifyAndStage: { type: 'staged', slot: 'b' },
  loadAndSelfTest: { type: 'loaded', provider: 'cpu' },
  activate: { type: 'activated' },
  startShadow: { type: 'shadow_started' },
};

function harness(
  options: {
    store?: MemoryStore;
    auto?: boolean;
    maxReentries?: number;
    /** What switching the active model back comes to (default: switched). */
    rollbackOutcome?: RollbackOutcome;
  } = {},
) {
  const store = options.store ?? new MemoryStore();
  const reports: UpdateMessage[] = [];
  const calls: Call[] = [];
  const waiters: (() => void)[] = [];
  const persistedStates: UpdateState[] = [];
  const effect =
    (kind: string) =>
    (record: UpdateRecord): Promise<UpdateEvent> =>
      new Promise((resolve) => {
        const call: Call = {
          kind,
          commandId: record.commandId,
          persisted: store.records.get(record.commandId)?.state,
          finish: (event) => resolve(event ?? DEFAULT_EVENT[kind]!),
        };
        calls.push(call);
        for (const w of waiters.splice(0)) w();
        if (options.auto !== false) call.finish();
      });
  const discarded: string[] = [];
  const effects = {
    verifyManifest: effect('verifyManifest'),
    download: effect('download'),
    verifyAndStage: effect('verifyAndStage'),
    loadAndSelfTest: effect('loadAndSelfTest'),
    activate: effect('activate'),
    startShadow: effect('startShadow'),
    rollbackActive: async (model: { name: string; version: number }): Promise<RollbackOutcome> => {
      calls.push({
        kind: 'rollbackActive',
        commandId: `${model.name}@${model.version}`,
        persisted: undefined,
        finish: () => undefined,
      });
      for (const w of waiters.splice(0)) w();
      return options.rollbackOutcome ?? { ok: true, switched: true };
    },
    discard: async (record: UpdateRecord) => {
      discarded.push(record.commandId);
    },
  } as unknown as UpdateEffects;
  let ids = 0;
  const driver = new UpdateDriver({
    store,
    effects,
    host: new ModelHost(),
    reporter: { update: (m) => reports.push(m) },
    maxReentries: options.maxReentries ?? 3,
    log: pino({ level: 'silent' }),
    newId: () => `msg-${++ids}`,
    now: () => 1_700_000_000_000,
    afterPersist: async (state) => {
      persistedStates.push(state);
    },
  });
  /** Resolve when `count` effect calls have been made (bounded: says which never came). */
  const callsReached = async (count: number): Promise<Call[]> => {
    const deadline = Date.now() + 5_000;
    while (calls.length < count) {
      if (Date.now() > deadline)
        throw new Error(`only ${calls.length} effect calls were made, waited for ${count}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return calls;
  };
  const chainOf = (commandId: string) => reports.filter((r) => r.commandId === commandId).map((r) => r.state);
  return { driver, store, reports, calls, discarded, persistedStates, callsReached, chainOf };
}

function shadowCommand(id: string, version = 2): InstallCommand {
  return { ...command(id, version), mode: 'shadow', shadowPercent: 50 };
}

function activate(id: string, version = 2): ActivateCommand {
  return { v: PROTOCOL_VERSION, type: 'activate', id, ts: 1, rolloutId: 'r', model: { name: 'm', version } };
}

const REASON = { code: 'gate_failed', message: 'p95_latency_ratio 3 not <= 1.2' };

function rollback(id: string, version = 2): RollbackCommand {
  return {
    v: PROTOCOL_VERSION,
    type: 'rollback',
    id,
    ts: 1,
    rolloutId: 'r',
    model: { name: 'm', version },
    reason: REASON,
  };
}

function command(id: string, version = 2): InstallCommand {
  return {
    v: PROTOCOL_VERSION,
    type: 'install',
    id,
    ts: 1,
    rolloutId: `r-${id}`,
    manifest: JSON.stringify({ name: 'm', version }),
    artifactUrl: 'http://fleet.invalid/api/v1/artifacts/x',
    mode: 'activate',
    shadowPercent: 100,
  };
}

describe('update driver', () => {
  it('persists each state before running its work, and reports every state once', async () => {
    const h = harness();
    await h.driver.submit(command('c1'));
    await h.driver.idle();
    expect(h.chainOf('c1')).toEqual(HAPPY);
    expect(h.store.puts.map(([, s]) => s)).toEqual(HAPPY);
    expect(h.persistedStates).toEqual(HAPPY.slice(1)); // `received` is persisted by submit itself
    // Each effect saw the state it works for already on disk.
    expect(h.calls.map((c) => [c.kind, c.persisted])).toEqual([
      ['verifyManifest', 'received'],
      ['download', 'downloading'],
      ['verifyAndStage', 'verifying'],
      ['loadAndSelfTest', 'loading'],
      ['activate', 'activating'],
    ]);
    expect(h.discarded).toEqual(['c1']);
    expect(h.reports[0]).toMatchObject({
      type: 'update',
      rolloutId: 'r-c1',
      model: { name: 'm', version: 2 },
    });
  });

  it('a failure is persisted and reported with its reason, then cleaned up', async () => {
    const h = harness({ auto: false });
    await h.driver.submit(command('c1'));
    const [verify] = await h.callsReached(1);
    verify!.finish({ type: 'failed', reason: { code: 'signature_invalid', message: 'bad sig' } });
    await h.driver.idle();
    expect(h.chainOf('c1')).toEqual(['received', 'failed']);
    expect(h.reports.at(-1)?.reason).toEqual({ code: 'signature_invalid', message: 'bad sig' });
    expect(h.store.records.get('c1')).toMatchObject({
      state: 'failed',
      reason: { code: 'signature_invalid' },
    });
    expect(h.discarded).toEqual(['c1']);
  });

  it('a finished command id re-reports its final state and does nothing else', async () => {
    const h = harness();
    await h.driver.submit(command('c1'));
    await h.driver.idle();
    const callsBefore = h.calls.length;
    const putsBefore = h.store.puts.length;
    await h.driver.submit(command('c1'));
    await h.driver.idle();
    expect(h.calls.length).toBe(callsBefore);
    expect(h.store.puts.length).toBe(putsBefore);
    expect(h.chainOf('c1')).toEqual([...HAPPY, 'active']);
  });

  it('a command id still in progress is neither restarted nor reported twice', async () => {
    const h = harness({ auto: false });
    await h.driver.submit(command('c1'));
    const [verify] = await h.callsReached(1);
    await h.driver.submit(command('c1'));
    verify!.finish();
    for (let n = 2; n <= 5; n++) (await h.callsReached(n))[n - 1]!.finish();
    await h.driver.idle();
    expect(h.calls.map((c) => c.kind)).toEqual([
      'verifyManifest',
      'download',
      'verifyAndStage',
      'loadAndSelfTest',
      'activate',
    ]);
    expect(h.chainOf('c1')).toEqual(HAPPY);
  });

  it('the same command delivered twice at once runs once', async () => {
    // A persistent session delivers the queued command on reconnect while the fleet re-sends it to pending
    // devices: both arrive before the first is persisted.
    const h = harness();
    await Promise.all([h.driver.submit(command('c1')), h.driver.submit(command('c1'))]);
    await h.driver.idle();
    expect(h.calls.filter((c) => c.kind === 'download')).toHaveLength(1);
    expect(h.chainOf('c1')).toEqual(HAPPY);
  });

  it('runs one update at a time, in arrival order', async () => {
    const h = harness({ auto: false });
    await h.driver.submit(command('c1', 2));
    await h.driver.submit(command('c2', 3));
    await h.driver.submit(command('c3', 4));
    // c1 does all its work before c2 starts any, and c2 before c3.
    for (let n = 1; n <= 15; n++) {
      const calls = await h.callsReached(n);
      const running = calls[n - 1]!;
      expect(running.commandId).toBe(`c${Math.ceil(n / 5)}`);
      running.finish();
    }
    await h.driver.idle();
    const order = h.reports.map((r) => r.commandId);
    expect(order).toEqual([
      ...Array<string>(7).fill('c1'),
      ...Array<string>(7).fill('c2'),
      ...Array<string>(7).fill('c3'),
    ]);
    expect([...h.store.records.values()].map((r) => [r.commandId, r.seq])).toEqual([
      ['c1', 1],
      ['c2', 2],
      ['c3', 3],
    ]);
  });

  it('a failed update does not block the next one', async () => {
    const h = harness({ auto: false });
    await h.driver.submit(command('c1'));
    await h.driver.submit(command('c2', 3));
    const [first] = await h.callsReached(1);
    first!.finish({ type: 'failed', reason: { code: 'manifest_expired', message: 'old' } });
    for (let n = 2; n <= 6; n++) (await h.callsReached(n))[n - 1]!.finish();
    await h.driver.idle();
    expect(h.chainOf('c1')).toEqual(['received', 'failed']);
    expect(h.chainOf('c2')).toEqual(HAPPY);
  });
});

describe('update driver: recovery after a restart', () => {
  function persisted(commandId: string, state: UpdateState, seq: number, reentries = {}): UpdateRecord {
    return {
      commandId,
      rolloutId: `r-${commandId}`,
      manifestText: '{}',
      artifactUrl: 'http://fleet.invalid/a',
      model: { name: 'm', version: 2 },
      sha256: 'ab'.repeat(32),
      slot: state === 'received' || state === 'downloading' || state === 'verifying' ? null : 'b',
      state,
      reason: null,
      executionProvider: null,
      reentries,
      seq,
    };
  }

  const RESUMES: { state: UpdateState; work: string[] }[] = [
    {
      state: 'received',
      work: ['verifyManifest', 'download', 'verifyAndStage', 'loadAndSelfTest', 'activate'],
    },
    { state: 'downloading', work: ['download', 'verifyAndStage', 'loadAndSelfTest', 'activate'] },
    { state: 'verifying', work: ['verifyAndStage', 'loadAndSelfTest', 'activate'] },
    { state: 'staged', work: ['loadAndSelfTest', 'activate'] },
    { state: 'loading', work: ['loadAndSelfTest', 'activate'] },
    { state: 'activating', work: ['activate'] },
  ];

  it.each(RESUMES)(
    'a record persisted in $state resumes that work and completes',
    async ({ state, work }) => {
      const store = new MemoryStore();
      await store.put(persisted('c1', state, 1));
      const h = harness({ store });
      await h.driver.recover();
      await h.driver.idle();
      expect(h.calls.map((c) => c.kind)).toEqual(work);
      expect(store.records.get('c1')).toMatchObject({ state: 'active', reentries: { [state]: 1 } });
    },
  );

  it('finished records are left alone; unfinished ones resume oldest first; new commands queue after', async () => {
    const store = new MemoryStore();
    await store.put(persisted('done', 'active', 1));
    await store.put(persisted('late', 'loading', 4));
    await store.put(persisted('early', 'downloading', 3));
    await store.put(persisted('bad', 'failed', 2));
    const h = harness({ store });
    await h.driver.recover();
    await h.driver.submit(command('new'));
    await h.driver.idle();
    expect([...new Set(h.calls.map((c) => c.commandId))]).toEqual(['early', 'late', 'new']);
    expect(store.records.get('new')?.seq).toBe(5);
    expect(h.reports.some((r) => r.commandId === 'done' || r.commandId === 'bad')).toBe(false);
  });

  it('a state re-entered more often than allowed fails with crash_loop, without running its work', async () => {
    const store = new MemoryStore();
    await store.put(persisted('c1', 'loading', 1, { loading: 3 }));
    const h = harness({ store, maxReentries: 3 });
    await h.driver.recover();
    await h.driver.idle();
    expect(h.calls).toEqual([]);
    expect(store.records.get('c1')).toMatchObject({
      state: 'failed',
      reason: { code: 'crash_loop' },
      reentries: { loading: 4 },
    });
    expect(h.chainOf('c1')).toEqual(['failed']);
    expect(h.discarded).toEqual(['c1']);
  });

  it('the re-entry count is persisted before the work runs, so crashing again counts again', async () => {
    const store = new MemoryStore();
    await store.put(persisted('c1', 'downloading', 1, { downloading: 1 }));
    const h = harness({ store, auto: false });
    await h.driver.recover();
    const [download] = await h.callsReached(1);
    // "crash" now: what is on disk must already say this was the second re-entry.
    expect(store.records.get('c1')?.reentries.downloading).toBe(2);
    expect(download!.kind).toBe('download');
  });

  it('stop() lets the step under way finish, marks the update stopped cleanly, and a restart does not count it', async () => {
    const store = new MemoryStore();
    const first = harness({ store, auto: false });
    await first.driver.submit(command('c1'));
    const [verify] = await first.callsReached(1);
    const stopped = first.driver.stop(5_000);
    verify!.finish();
    expect(await stopped).toBe(true);
    expect(first.calls).toHaveLength(1); // nothing started after the stop
    expect(store.records.get('c1')).toMatchObject({ state: 'received', stoppedCleanly: true });
    // A command arriving during shutdown is kept for the next start, not run.
    await first.driver.submit(command('c2'));
    expect(store.records.get('c2')).toMatchObject({ state: 'received', stoppedCleanly: true });

    // Three clean restarts in a row never add up to a crash loop.
    for (let restart = 0; restart < 3; restart++) {
      const again = harness({ store, auto: false });
      await again.driver.recover();
      const [work] = await again.callsReached(1);
      const halt = again.driver.stop(5_000);
      work!.finish();
      await halt;
    }
    const last = harness({ store });
    await last.driver.recover();
    await last.driver.idle();
    expect(store.records.get('c1')).toMatchObject({ state: 'active', reentries: { received: 0 } });
    expect(store.records.get('c2')?.state).toBe('active');
  });

  it('stop() gives up after its grace period when a step never returns, leaving the record as persisted', async () => {
    const h = harness({ auto: false });
    await h.driver.submit(command('c1'));
    await h.callsReached(1);
    expect(await h.driver.stop(20)).toBe(false);
    expect(h.store.records.get('c1')?.stoppedCleanly).toBeFalsy();
  });
});

describe('update driver: shadow installs, activate and rollback', () => {
  const TO_SHADOWING: UpdateState[] = [
    'received',
    'downloading',
    'verifying',
    'staged',
    'loading',
    'shadowing',
  ];

  it('a shadow install waits in shadowing; activate switches it in, reported under the install’s id', async () => {
    const h = harness();
    await h.driver.submit(shadowCommand('c1'));
    await h.driver.idle();
    expect(h.chainOf('c1')).toEqual(TO_SHADOWING);
    expect(h.calls.at(-1)?.kind).toBe('startShadow');
    expect(h.store.records.get('c1')).toMatchObject({ mode: 'shadow', shadowPercent: 50 });
    await h.driver.submit(activate('a1'));
    await h.driver.idle();
    expect(h.chainOf('c1')).toEqual([...TO_SHADOWING, 'activating', 'active']);
    expect(h.calls.filter((c) => c.kind === 'activate').map((c) => c.persisted)).toEqual(['activating']);
    expect(h.reports.some((r) => r.commandId === 'a1')).toBe(false);
  });

  it('the same activate delivered twice at once switches once; later copies re-report the install', async () => {
    const h = harness();
    await h.driver.submit(shadowCommand('c1'));
    await h.driver.idle();
    await Promise.all([h.driver.submit(activate('a1')), h.driver.submit(activate('a1'))]);
    await h.driver.idle();
    expect(h.calls.filter((c) => c.kind === 'activate')).toHaveLength(1);
    expect(h.chainOf('c1')).toEqual([...TO_SHADOWING, 'activating', 'active', 'active']);
  });

  it('an activate for a version never installed here changes nothing and reports nothing', async () => {
    const h = harness();
    await h.driver.submit(shadowCommand('c1'));
    await h.driver.idle();
    const reports = h.reports.length;
    await h.driver.submit(activate('a1', 9));
    await h.driver.idle();
    expect(h.reports).toHaveLength(reports);
    expect(h.store.records.get('c1')?.state).toBe('shadowing');
  });

  it('rollback of a shadowing candidate: the install ends rolled_back, then the rollback under its own id', async () => {
    const h = harness();
    await h.driver.submit(shadowCommand('c1'));
    await h.driver.idle();
    await h.driver.submit(rollback('rb1'));
    await h.driver.idle();
    expect(h.chainOf('c1')).toEqual([...TO_SHADOWING, 'rolled_back']);
    expect(h.reports.filter((r) => r.commandId === 'rb1')).toEqual([
      expect.objectContaining({ state: 'rolled_back', model: { name: 'm', version: 2 }, reason: REASON }),
    ]);
    expect(h.discarded).toEqual(['c1']);
    expect(h.calls.some((c) => c.kind === 'rollbackActive')).toBe(false);
    // Persisted first (received), then finished.
    expect(h.store.puts.filter(([id]) => id === 'rb1').map(([, s]) => s)).toEqual([
      'received',
      'rolled_back',
    ]);
  });

  it('rollback of the active model switches back; a failure to do so is reported under the rollback’s id', async () => {
    const ok = harness();
    await ok.driver.submit(command('c1'));
    await ok.driver.idle();
    await ok.driver.submit(rollback('rb1'));
    await ok.driver.idle();
    expect(ok.calls.filter((c) => c.kind === 'rollbackActive').map((c) => c.commandId)).toEqual(['m@2']);
    expect(ok.chainOf('rb1')).toEqual(['rolled_back']);
    expect(ok.chainOf('c1').at(-1)).toBe('active');

    const refused = harness({
      rollbackOutcome: { ok: false, reason: { code: 'no_previous_model', message: 'none kept' } },
    });
    await refused.driver.submit(command('c1'));
    await refused.driver.idle();
    await refused.driver.submit(rollback('rb1'));
    await refused.driver.idle();
    expect(refused.reports.filter((r) => r.commandId === 'rb1')).toEqual([
      expect.objectContaining({
        state: 'failed',
        reason: { code: 'no_previous_model', message: 'none kept' },
      }),
    ]);
  });

  it('a rollback arriving while its install downloads stops it at the next step boundary', async () => {
    const h = harness({ auto: false });
    await h.driver.submit(command('c1'));
    (await h.callsReached(1))[0]!.finish();
    const [, download] = await h.callsReached(2);
    await h.driver.submit(rollback('rb1'));
    download!.finish();
    await h.driver.idle();
    // Never verified, staged, loaded or activated: nothing of the candidate ever served.
    expect(h.calls.map((c) => c.kind)).toEqual(['verifyManifest', 'download', 'rollbackActive']);
    expect(h.chainOf('c1')).toEqual(['received', 'downloading', 'rolled_back']);
    expect(h.chainOf('rb1')).toEqual(['rolled_back']);
    expect(h.discarded).toEqual(['c1']);
  });

  it('the same rollback delivered twice at once runs once; once finished, a copy re-reports it', async () => {
    const h = harness();
    await h.driver.submit(command('c1'));
    await h.driver.idle();
    await Promise.all([h.driver.submit(rollback('rb1')), h.driver.submit(rollback('rb1'))]);
    await h.driver.idle();
    expect(h.calls.filter((c) => c.kind === 'rollbackActive')).toHaveLength(1);
    expect(h.chainOf('rb1')).toEqual(['rolled_back']);
    await h.driver.submit(rollback('rb1'));
    await h.driver.idle();
    expect(h.calls.filter((c) => c.kind === 'rollbackActive')).toHaveLength(1);
    expect(h.chainOf('rb1')).toEqual(['rolled_back', 'rolled_back']);
  });

  it('an install that starts downloading supersedes a shadowing candidate of the same model', async () => {
    const h = harness();
    await h.driver.submit(shadowCommand('c1', 2));
    await h.driver.idle();
    await h.driver.submit(command('c2', 3));
    await h.driver.idle();
    expect(h.chainOf('c1')).toEqual([...TO_SHADOWING, 'failed']);
    expect(h.store.records.get('c1')?.reason?.code).toBe('superseded');
    expect(h.discarded).toContain('c1');
    // Superseded before the new artifact could overwrite the candidate's slot.
    const superseded = h.reports.findIndex((r) => r.commandId === 'c1' && r.state === 'failed');
    const verifying = h.reports.findIndex((r) => r.commandId === 'c2' && r.state === 'verifying');
    expect(superseded).toBeLessThan(verifying);
  });

  it('after a restart, a persisted rollback stops its install instead of letting it resume', async () => {
    const store = new MemoryStore();
    const install: UpdateRecord = {
      commandId: 'c1',
      rolloutId: 'r',
      manifestText: '{}',
      artifactUrl: 'http://fleet.invalid/a',
      model: { name: 'm', version: 2 },
      sha256: 'ab'.repeat(32),
      slot: null,
      state: 'downloading',
      reason: null,
      executionProvider: null,
      reentries: {},
      seq: 1,
      kind: 'install',
    };
    await store.put(install);
    await store.put({
      ...install,
      commandId: 'rb1',
      kind: 'rollback',
      manifestText: '',
      artifactUrl: '',
      sha256: null,
      state: 'received',
      reason: REASON,
      seq: 2,
    });
    const h = harness({ store });
    await h.driver.recover();
    await h.driver.idle();
    expect(h.calls.map((c) => c.kind)).toEqual(['rollbackActive']);
    expect(store.records.get('c1')).toMatchObject({ state: 'rolled_back', reason: REASON });
    expect(store.records.get('rb1')).toMatchObject({ state: 'rolled_back', reentries: { received: 1 } });
  });
});
