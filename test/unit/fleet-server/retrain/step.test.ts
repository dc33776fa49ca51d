/**
 * The retrain transition table, with no I/O: every status × every event (what changes, what is ignored), the
 * branches (lost, failed, approval refused, canary rolled back), and a "crash here" column: a retrain driven
 * the way the driver drives it (persist, then carry out the effects with effects.ts's carryOut against an
 * in-memory fleet whose runs and rollouts keep the real ones' id contracts) is cut off after every persisted
 * step — before that step's effects, and after them but before the next record is persisted — then recovered
 * from the persisted record alone. It must end with the record and its canary in agreement: a record past
 * `creating_rollout` names the one canary there is; before it, there is none; never two.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { carryOut, type EffectDeps } from '../../../../fleet-server/retrain/effects.js';
import {
  newRetrain,
  RETRAIN_STATUSES,
  type RetrainPolicyInput,
  RetrainPolicySchema,
  type RetrainRecord,
  type RetrainStatus,
} from '../../../../fleet-server/retrain/record.js';
import {
  begun,
  type Effect,
  MAX_RESTARTS,
  type RunResult,
  STEP_EVENT_TYPES,
  type StepEvent,
  type StepEventType,
  step,
} from '../../../../fleet-server/retrain/step.js';
import type { Metrics } from '../../../../fleet-server/training/metrics.js';

const AT = '2026-11-01T00:00:00.000Z';
const acc = (accuracy: number): Metrics => ({
  kind: 'classification',
  rows: 100,
  accuracy,
  macroF1: accuracy,
  logLoss: 0.5,
});
const WINNER: RunResult = {
  version: 2,
  metrics: acc(0.9),
  champion: { version: 1, metrics: acc(0.7), reason: null },
};
const LOSER: RunResult = { ...WINNER, metrics: acc(0.6) };

function retrain(policy: RetrainPolicyInput = {}): RetrainRecord {
  return newRetrain({
    id: 'rt-1',
    run: 'run-1',
    task: 'quality',
    model: 'clf',
    policy: RetrainPolicySchema.parse({ mode: 'auto', margin: 0.05, ...policy }),
    trigger: {
      kind: 'manual',
      reason: 'test',
      actor: 'bob',
      production: 1,
      devices: [],
      share: null,
      driftSince: null,
    },
    at: AT,
  });
}

/** A record in `status` with the fields that status implies. */
function inStatus(status: RetrainStatus, policy: RetrainPolicyInput = {}): RetrainRecord {
  const r = retrain(policy);
  const fields: Partial<RetrainRecord> = {
    training: { snapshot: 'snap-1' },
    setting_candidate: { snapshot: 'snap-1', version: 2 },
    awaiting_approval: { snapshot: 'snap-1', version: 2 },
    creating_rollout: { snapshot: 'snap-1', version: 2, rollout: 'ro-1' },
    rolling_out: { snapshot: 'snap-1', version: 2, rollout: 'ro-1' },
    completed: { snapshot: 'snap-1', version: 2, rollout: 'ro-1' },
    rollout_failed: { snapshot: 'snap-1', version: 2, rollout: 'ro-1' },
    rejected: { snapshot: 'snap-1', version: 2 },
    failed: { error: { code: 'x', message: 'x' } },
  }[status];
  return { ...r, ...fields, status };
}

const EVENTS: Record<StepEventType, StepEvent> = {
  run_started: { type: 'run_started', snapshot: 'snap-2' },
  run_settled: { type: 'run_settled', status: 'succeeded', result: WINNER, error: null },
  candidate_set: { type: 'candidate_set', rollout: 'ro-9' },
  approved: { type: 'approved', actor: 'carol', rollout: 'ro-9' },
  rollout_created: { type: 'rollout_created' },
  rollout_refused: { type: 'rollout_refused', error: { code: 'no_targets', message: 'no device runs clf' } },
  rollout_ended: { type: 'rollout_ended', phase: 'succeeded', reason: null },
  effect_failed: { type: 'effect_failed', error: { code: 'boom', message: 'disk full' } },
  restarted: { type: 'restarted' },
};

/**
 * Status × event → the status it leads to (auto policy, the events above). A pair not listed leaves the
 * record as it is, with no effect. `training` + run_started is listed: it records the snapshot (the row's
 * record already has one, so it only waits on); restarts are listed where there is work to redo.
 */
const TABLE: Record<RetrainStatus, Partial<Record<StepEventType, RetrainStatus>>> = {
  training: {
    run_started: 'training',
    run_settled: 'setting_candidate',
    effect_failed: 'failed',
    restarted: 'training',
  },
  setting_candidate: {
    candidate_set: 'creating_rollout',
    effect_failed: 'failed',
    restarted: 'setting_candidate',
  },
  awaiting_approval: { approved: 'creating_rollout' },
  creating_rollout: {
    rollout_created: 'rolling_out',
    rollout_refused: 'failed',
    effect_failed: 'failed',
    restarted: 'creating_rollout',
  },
  rolling_out: { rollout_ended: 'completed' },
  completed: {},
  rollout_failed: {},
  rejected: {},
  failed: {},
};

describe('step: the transition table', () => {
  const cells = RETRAIN_STATUSES.flatMap((status) => STEP_EVENT_TYPES.map((event) => ({ status, event })));

  it.each(cells)('$status × $event', ({ status, event }) => {
    const before = inStatus(status);
    const { record, effects } = step(before, EVENTS[event], '2026-11-01T00:01:00.000Z');
    const to = TABLE[status][event];
    if (to === undefined) {
      expect(record).toBe(before);
      expect(effects).toEqual([]);
    } else {
      expect(record.status).toBe(to);
      // A listed cell does something: a new record (persisted at this time), or work to carry out.
      if (record !== before) expect(record.updatedAt).toBe('2026-11-01T00:01:00.000Z');
      else expect(effects.filter((e) => e.kind !== 'audit')).not.toEqual([]);
    }
  });

  it('acts only on ids already in the record it persists', () => {
    const started = step(inStatus('setting_candidate'), EVENTS.candidate_set, AT);
    expect(started.record).toMatchObject({ status: 'creating_rollout', rollout: 'ro-9' });
    expect(started.effects).toEqual([expect.objectContaining({ kind: 'create_rollout', id: 'ro-9' })]);
    const fresh = retrain();
    expect(begun(fresh)).toContainEqual(expect.objectContaining({ kind: 'start_run', run: fresh.run }));
  });

  it('a started run records its snapshot once; started again after a restart, it only waits on it', () => {
    const first = step(retrain(), EVENTS.run_started, AT);
    expect(first.record).toMatchObject({ status: 'training', snapshot: 'snap-2' });
    expect(first.record.events.map((e) => e.step)).toEqual(['triggered', 'training']);
    expect(first.effects.at(-1)).toEqual({ kind: 'await_run', run: 'run-1' });
    const again = step(first.record, { type: 'run_started', snapshot: 'snap-2' }, AT);
    expect(again.record).toBe(first.record);
    expect(again.effects).toEqual([{ kind: 'await_run', run: 'run-1' }]);
  });

  it('a loser is rejected, a failed run fails the retrain with its error, approval mode waits', () => {
    const training = inStatus('training');
    const lost = step(training, { type: 'run_settled', status: 'succeeded', result: LOSER, error: null }, AT);
    expect(lost.record).toMatchObject({ status: 'rejected', version: 2, evaluation: { won: false } });
    expect(lost.effects.every((e) => e.kind === 'audit')).toBe(true);
    const failed = step(
      training,
      {
        type: 'run_settled',
        status: 'failed',
        result: null,
        error: { code: 'interrupted', message: 'stopped' },
      },
      AT,
    );
    expect(failed.record).toMatchObject({ status: 'failed', error: { code: 'interrupted' } });
    expect(failed.record.events.at(-1)!.message).toBe('training failed: stopped');
    const waiting = step(inStatus('setting_candidate', { mode: 'approve' }), EVENTS.candidate_set, AT);
    expect(waiting.record).toMatchObject({ status: 'awaiting_approval', rollout: null });
  });

  it("a refused approval waits again; a refused policy canary fails; a canary's end is the retrain's", () => {
    const approved = step(inStatus('awaiting_approval', { mode: 'approve' }), EVENTS.approved, AT).record;
    expect(approved).toMatchObject({ status: 'creating_rollout', approvedBy: 'carol', rollout: 'ro-9' });
    expect(step(approved, EVENTS.rollout_refused, AT).record).toMatchObject({
      status: 'awaiting_approval',
      rollout: null,
      approvedBy: null,
    });
    expect(step(inStatus('creating_rollout'), EVENTS.rollout_refused, AT).record).toMatchObject({
      status: 'failed',
      error: { code: 'no_targets' },
    });
    const ended = step(
      inStatus('rolling_out'),
      { type: 'rollout_ended', phase: 'rolled_back', reason: 'error_rate 0.2 not <= 0.01' },
      AT,
    ).record;
    expect(ended.status).toBe('rollout_failed');
    expect(ended.events.at(-1)!.message).toBe('rollout ro-1 ended rolled_back: error_rate 0.2 not <= 0.01');
  });

  it(`counts restarts per status and fails the retrain after ${MAX_RESTARTS} in a row`, () => {
    let record = inStatus('creating_rollout');
    for (let i = 1; i <= MAX_RESTARTS; i++) {
      const next = step(record, EVENTS.restarted, AT);
      expect(next.record).toMatchObject({ status: 'creating_rollout', restarts: { count: i } });
      expect(next.effects).toEqual([expect.objectContaining({ kind: 'create_rollout', id: 'ro-1' })]);
      record = next.record;
    }
    const given = step(record, EVENTS.restarted, AT).record;
    expect(given).toMatchObject({ status: 'failed', error: { code: 'crash_loop' } });
    expect(given.error!.message).toMatch(/stopped 4 times in a row while the retrain was creating_rollout/);
    // A new status counts from zero.
    const moved = step(record, EVENTS.rollout_created, AT).record;
    expect(moved.restarts).toBeNull();
  });

  it('a record written before run ids were fixed up front fails as interrupted when found training', () => {
    const legacy = { ...retrain(), run: null };
    expect(step(legacy, EVENTS.restarted, AT).record).toMatchObject({
      status: 'failed',
      error: { code: 'interrupted' },
    });
  });
});

// ---- crash here ---------------------------------------------------------------------------------------

/** The runs, canaries and aliases of an in-memory fleet, with the id contracts of the real ones. */
function memoryFleet(result: RunResult) {
  const runs = new Map<
    string,
    { id: string; snapshot: string; status: string; result: RunResult | null; error: unknown }
  >();
  const rollouts = new Map<string, { id: string; actor: string; version: number }>();
  const candidates: number[] = [];
  let rolloutIds = 0;
  const deps = {
    training: {
      // As TrainingRuns.start with an id: the run already under it, else a new one (running).
      start: async (
        _task: string,
        _req: unknown,
        _actor: string,
        _trigger: unknown,
        options: { id: string },
      ) => {
        const run = runs.get(options.id) ?? {
          id: options.id,
          snapshot: `snap-${runs.size + 1}`,
          status: 'running',
          result: null,
          error: null,
        };
        runs.set(run.id, run);
        return run;
      },
      // A run of this process finishes; one the last process left is what recover() made of it.
      settled: async (id: string) => {
        const run = runs.get(id)!;
        if (run.status === 'running') Object.assign(run, { status: 'succeeded', result });
        return run;
      },
    },
    models: {
      setAlias: async (_model: string, _alias: string, version: number) => {
        candidates.push(version);
        return { moved: true };
      },
    },
    rollouts: {
      newId: () => `ro-${++rolloutIds}`,
      list: async () => [
        { model: { name: 'clf' }, status: { phase: 'succeeded' }, targets: { tags: { line: 'a' } } },
      ],
      // As RolloutController.create with an id: the rollout already under it, else a new one.
      create: async (request: { id: string; actor: string; model: { version: number } }) => {
        const rollout = rollouts.get(request.id) ?? {
          id: request.id,
          actor: request.actor,
          version: request.model.version,
        };
        rollouts.set(rollout.id, rollout);
        return rollout;
      },
    },
    devices: { list: async () => [] },
    log: pino({ level: 'silent' }),
  } as unknown as EffectDeps;
  return {
    deps,
    runs,
    rollouts,
    candidates,
    /** What a fleet-server start does to runs (TrainingRuns.recover): the ones left running failed. */
    restart() {
      for (const run of runs.values())
        if (run.status === 'running')
          Object.assign(run, {
            status: 'failed',
            error: { code: 'interrupted', message: 'the fleet server stopped' },
          });
    },
  };
}

class Crash extends Error {}

type CrashPoint = { after: number; effects: 'before' | 'after' };
/** What survives a crash: the record as last persisted, and the statuses persisted in order. */
type Store = { current: RetrainRecord | null; chain: RetrainStatus[] };

/**
 * Drives a retrain as loop.ts does: persist each new record, then carry out its effects. The operator
 * approves when it waits, and the canary ends when it rolls out, so a run goes to the end. `crash` kills the
 * process after the `after`-th record this drive persists (0 = the first), before that record's effects, or
 * after them — before the next record is persisted, so what they returned is lost.
 */
async function drive(
  fleet: ReturnType<typeof memoryFleet>,
  start: { record: RetrainRecord; effects: Effect[] },
  store: Store,
  crash: CrashPoint | null = null,
): Promise<RetrainRecord> {
  let count = 0;
  const persist = (next: RetrainRecord) => {
    if (crash?.effects === 'after' && count === crash.after + 1) throw new Crash();
    store.current = next;
    store.chain.push(next.status);
    count++;
    if (crash?.effects === 'before' && count === crash.after + 1) throw new Crash();
  };
  let record = start.record;
  persist(record);
  const queue = [...start.effects];
  for (;;) {
    let event: StepEvent | null;
    const effect = queue.shift();
    if (effect) event = await carryOut(record.id, effect, fleet.deps);
    else if (record.status === 'awaiting_approval')
      event = { type: 'approved', actor: 'carol', rollout: fleet.deps.rollouts.newId() };
    else if (record.status === 'rolling_out')
      event = { type: 'rollout_ended', phase: 'succeeded', reason: null };
    else return record;
    if (!event) continue;
    const next = step(record, event, AT);
    if (next.record !== record) persist(next.record);
    record = next.record;
    queue.push(...next.effects);
  }
}

/** The record and the canaries agree: past creating_rollout it names the one canary; before it, none. */
function expectAgreement(record: RetrainRecord, fleet: ReturnType<typeof memoryFleet>) {
  const canaries = [...fleet.rollouts.values()];
  expect(canaries.length, 'never two canaries').toBeLessThanOrEqual(1);
  if (['rolling_out', 'completed', 'rollout_failed'].includes(record.status)) {
    expect(canaries.map((c) => c.id)).toEqual([record.rollout]);
    expect(canaries[0]!.actor).toMatch(new RegExp(`^retrain:${record.id}`));
  } else {
    expect(canaries, `no canary while the retrain is ${record.status}`).toEqual([]);
  }
}

const AUTO_CHAIN: RetrainStatus[] = [
  'training',
  'training',
  'setting_candidate',
  'creating_rollout',
  'rolling_out',
  'completed',
];
const APPROVE_CHAIN: RetrainStatus[] = [
  'training',
  'training',
  'setting_candidate',
  'awaiting_approval',
  'creating_rollout',
  'rolling_out',
  'completed',
];

describe('step: crash here, recover from the persisted record', () => {
  it.each([
    { mode: 'auto' as const, expectChain: AUTO_CHAIN },
    { mode: 'approve' as const, expectChain: APPROVE_CHAIN },
  ])('without a crash, $mode goes $expectChain', async ({ mode, expectChain }) => {
    const fleet = memoryFleet(WINNER);
    const record = retrain({ mode });
    const store: Store = { current: null, chain: [] };
    const end = await drive(fleet, { record, effects: begun(record) }, store);
    expect(store.chain).toEqual(expectChain);
    expectAgreement(end, fleet);
    expect(fleet.runs.size).toBe(1);
    expect(fleet.candidates).toEqual([2]);
  });

  // The run's own process dies with the fleet: a crash once it is started (and before it finished) fails
  // the retrain as interrupted, as before. Every other crash point resumes to the end.
  const cases = (['auto', 'approve'] as const).flatMap((mode) =>
    (mode === 'auto' ? AUTO_CHAIN : APPROVE_CHAIN).slice(0, -1).flatMap((status, after) =>
      (['before', 'after'] as const).map((effects) => ({
        mode,
        crashIn: { after, effects },
        status,
        ends:
          (after === 0 && effects === 'after') || (after === 1 && effects === 'before')
            ? 'failed'
            : 'completed',
      })),
    ),
  );

  it.each(cases)(
    '$mode: killed after persisting step $crashIn.after ($status), $crashIn.effects its effects → $ends',
    async ({ mode, crashIn, ends }) => {
      const fleet = memoryFleet(WINNER);
      const fresh = retrain({ mode });
      const store: Store = { current: null, chain: [] };
      await expect(drive(fleet, { record: fresh, effects: begun(fresh) }, store, crashIn)).rejects.toThrow(
        Crash,
      );
      expect(store.chain).toHaveLength(crashIn.after + 1);
      // All the next process has is the record as last persisted (and runs recover as TrainingRuns does).
      const stored = store.current!;
      fleet.restart();
      // Before recovery, a canary exists only under the id the persisted record holds.
      for (const canary of fleet.rollouts.values()) expect(canary.id).toBe(stored.rollout);
      const end = await drive(fleet, step(stored, { type: 'restarted' }, AT), store);
      expect(end.status).toBe(ends);
      expectAgreement(end, fleet);
      expect(fleet.runs.size, 'one training run').toBe(1);
      if (ends === 'failed') expect(end.error).toMatchObject({ code: 'interrupted' });
    },
  );

  it(`a fleet that dies in the same status every time gives the retrain up after ${MAX_RESTARTS} restarts`, async () => {
    const fleet = memoryFleet(WINNER);
    let record = inStatus('setting_candidate');
    let starts = 0;
    while (record.status === 'setting_candidate') {
      starts++;
      const { record: next } = step(record, { type: 'restarted' }, AT);
      record = next; // persisted, then the fleet dies before the alias moves
    }
    expect(starts).toBe(MAX_RESTARTS + 1);
    expect(record).toMatchObject({ status: 'failed', error: { code: 'crash_loop' } });
    expectAgreement(record, fleet);
  });
});
