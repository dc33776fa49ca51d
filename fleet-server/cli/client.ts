/**
 * The CLI's only way to the fleet: a typed client for the HTTP API (`/api/v1`). It owns the error contract
 * the user sees: an error body `{ error: { code, message } }` becomes an ApiError whose message names both
 * (and the HTTP status); a connection failure says which URL could not be reached and why.
 * The request and response types are the wire contract's (shared/api/), never the server's stored records;
 * responses are what `--json` prints verbatim.
 */

import type { AuditEntry, VerifyResult } from '../../shared/api/audit.js';
import type { Alias, Role } from '../../shared/api/common.js';
import type { Health } from '../../shared/api/console.js';
import type {
  CreateEnrollmentTokenRequest,
  CreateTokenRequest,
  Device,
  DeviceList,
  EnrollmentToken,
  OperatorToken,
} from '../../shared/api/devices.js';
import type {
  DeviceDrift,
  DriftOverview,
  ModelDrift,
  Retrain,
  RetrainPolicyInput,
  StoredPolicy,
  VersionDrift,
} from '../../shared/api/drift.js';
import type {
  Aliases,
  AliasRecord,
  Lineage,
  ModelSummary,
  ModelVariant,
  ModelVersion,
  ModelVersionBase,
  SetAliasResponse,
} from '../../shared/api/models.js';
import type {
  ImportResult,
  Snapshot,
  Task,
  TaskWithStats,
  TrainingRun,
  TrainRequest,
} from '../../shared/api/pool.js';
import type {
  CreateRolloutRequest,
  Rollout,
  RolloutDevice,
  RolloutPhase,
  RolloutTargets,
} from '../../shared/api/rollouts.js';

// The names the commands use, all from the contract.
export type {
  AliasRecord,
  AuditEntry,
  Device,
  DeviceDrift,
  EnrollmentToken,
  ImportResult,
  ModelDrift,
  ModelSummary,
  ModelVariant,
  ModelVersion,
  OperatorToken,
  RetrainPolicyInput,
  Role,
  Rollout,
  RolloutDevice,
  RolloutPhase,
  RolloutTargets,
  StoredPolicy,
  Task,
  TaskWithStats,
  TrainingRun,
  VerifyResult,
  VersionDrift,
};
export type SnapshotRecord = Snapshot;
export type LineageView = Lineage;
export type RetrainRecord = Retrain;
/** A version by number, or by alias (resolved by the fleet). */
export type ModelRef = { name: string; version: number | Alias };

/** The fleet answered with an error. `message` is what the CLI prints after `edgefleet: `. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${detail} (${code}, HTTP ${status})`);
  }
}

/** The fleet could not be reached at all (refused, DNS, TLS, reset). */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

export interface ApiClientOptions {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Operator bearer token; omitted from requests when undefined. */
  token: string | undefined;
  fetch: typeof fetch;
}

interface RequestOptions {
  query?: URLSearchParams | undefined;
  json?: unknown;
  body?: RequestInit['body'];
  contentType?: string;
}

export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  health(): Promise<Health> {
    return this.request('GET', '/api/v1/health');
  }

  createToken(body: CreateTokenRequest): Promise<OperatorToken> {
    return this.request('POST', '/api/v1/tokens', { json: body });
  }

  createEnrollmentToken(
    body: {
      [K in keyof CreateEnrollmentTokenRequest]?: CreateEnrollmentTokenRequest[K] | undefined;
    },
  ): Promise<EnrollmentToken> {
    return this.request('POST', '/api/v1/enrollment-tokens', { json: body });
  }

  async listDevices(
    filter: { tags?: Record<string, string>; status?: 'online' | 'offline' | undefined } = {},
  ): Promise<DeviceList> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(filter.tags ?? {})) query.append('tag', `${k}=${v}`);
    if (filter.status) query.set('status', filter.status);
    return this.request('GET', '/api/v1/devices', { query });
  }

  getDevice(id: string): Promise<Device> {
    return this.request('GET', `/api/v1/devices/${encodeURIComponent(id)}`);
  }

  /**
   * Push a model version: the raw ONNX bytes as `application/octet-stream`, or, with a sample input,
   * multipart/form-data with the file field `model` and the JSON text field `sampleInput`. With `addTo`, the
   * file becomes variant `variant` of that existing version instead of a new version.
   */
  pushModel(
    name: string,
    model: Uint8Array,
    options: {
      sampleInput?: string | undefined;
      /** JSON of the reference statistics (drift monitoring on devices). */
      referenceStats?: string | undefined;
      expiresInDays?: number | undefined;
      fileName?: string;
      /** The variant's name (`default` when absent). */
      variant?: string | undefined;
      /** An existing version (number or alias) to add the variant to. */
      addTo?: number | Alias | undefined;
    } = {},
  ): Promise<ModelVersion> {
    const query = new URLSearchParams();
    if (options.expiresInDays !== undefined) query.set('expiresInDays', String(options.expiresInDays));
    let path = `/api/v1/models/${encodeURIComponent(name)}/versions`;
    if (options.addTo !== undefined) {
      path += `/${options.addTo}/variants/${encodeURIComponent(options.variant ?? 'default')}`;
    } else if (options.variant !== undefined) {
      query.set('variant', options.variant);
    }
    // Copy into a fresh ArrayBuffer-backed view: Blob and fetch bodies reject SharedArrayBuffer views.
    const bytes = new Uint8Array(model);
    if (options.sampleInput === undefined && options.referenceStats === undefined) {
      return this.request('POST', path, { query, body: bytes, contentType: 'application/octet-stream' });
    }
    const form = new FormData();
    form.set(
      'model',
      new Blob([bytes], { type: 'application/octet-stream' }),
      options.fileName ?? 'model.onnx',
    );
    if (options.sampleInput !== undefined) form.set('sampleInput', options.sampleInput);
    if (options.referenceStats !== undefined) form.set('referenceStats', options.referenceStats);
    // fetch sets the multipart Content-Type with its boundary.
    return this.request('POST', path, { query, body: form });
  }

  listModels(): Promise<{ models: ModelSummary[] }> {
    return this.request('GET', '/api/v1/models');
  }

  listModelVersions(name: string): Promise<{ versions: ModelVersionBase[] }> {
    return this.request('GET', `/api/v1/models/${encodeURIComponent(name)}/versions`);
  }

  getAliases(name: string): Promise<Aliases> {
    return this.request('GET', `/api/v1/models/${encodeURIComponent(name)}/aliases`);
  }

  getModelVersion(ref: ModelRef): Promise<ModelVersion> {
    return this.request('GET', `/api/v1/models/${encodeURIComponent(ref.name)}/versions/${ref.version}`);
  }

  getLineage(ref: ModelRef): Promise<LineageView> {
    return this.request(
      'GET',
      `/api/v1/models/${encodeURIComponent(ref.name)}/versions/${ref.version}/lineage`,
    );
  }

  setAlias(name: string, alias: Alias, version: number): Promise<SetAliasResponse> {
    return this.request('PUT', `/api/v1/models/${encodeURIComponent(name)}/aliases/${alias}`, {
      json: { version },
    });
  }

  train(
    task: string,
    body: { [K in keyof TrainRequest]?: TrainRequest[K] | undefined },
  ): Promise<TrainingRun> {
    return this.request('POST', `/api/v1/tasks/${encodeURIComponent(task)}/train`, { json: body });
  }

  getTrainingRun(id: string): Promise<TrainingRun> {
    return this.request('GET', `/api/v1/training-runs/${encodeURIComponent(id)}`);
  }

  driftStatus(filter: { task?: string | undefined; cohort?: string | undefined }): Promise<DriftOverview> {
    const query = new URLSearchParams();
    if (filter.task !== undefined) query.set('task', filter.task);
    if (filter.cohort !== undefined) query.set('cohort', filter.cohort);
    return this.request('GET', '/api/v1/drift', { query });
  }

  getRetrainPolicy(task: string): Promise<StoredPolicy> {
    return this.request('GET', `/api/v1/tasks/${encodeURIComponent(task)}/retrain-policy`);
  }

  setRetrainPolicy(task: string, policy: RetrainPolicyInput): Promise<StoredPolicy> {
    return this.request('PUT', `/api/v1/tasks/${encodeURIComponent(task)}/retrain-policy`, { json: policy });
  }

  triggerRetrain(task: string, reason?: string): Promise<RetrainRecord> {
    return this.request('POST', `/api/v1/tasks/${encodeURIComponent(task)}/retrain`, {
      json: reason === undefined ? {} : { reason },
    });
  }

  listRetrains(task?: string): Promise<{ retrains: RetrainRecord[] }> {
    return this.request('GET', '/api/v1/retrains', {
      query: task === undefined ? undefined : new URLSearchParams({ task }),
    });
  }

  getRetrain(id: string): Promise<RetrainRecord> {
    return this.request('GET', `/api/v1/retrains/${encodeURIComponent(id)}`);
  }

  approveRetrain(id: string): Promise<RetrainRecord> {
    return this.request('POST', `/api/v1/retrains/${encodeURIComponent(id)}/approve`, { json: {} });
  }

  listAudit(filter: {
    actor?: string | undefined;
    action?: string | undefined;
    limit?: number | undefined;
  }): Promise<{ entries: AuditEntry[] }> {
    const query = new URLSearchParams();
    if (filter.actor !== undefined) query.set('actor', filter.actor);
    if (filter.action !== undefined) query.set('action', filter.action);
    if (filter.limit !== undefined) query.set('limit', String(filter.limit));
    return this.request('GET', '/api/v1/audit', { query });
  }

  verifyAudit(): Promise<VerifyResult> {
    return this.request('GET', '/api/v1/audit/verify');
  }

  listTrainingRuns(task?: string): Promise<{ runs: TrainingRun[] }> {
    return this.request('GET', '/api/v1/training-runs', {
      query: task === undefined ? undefined : new URLSearchParams({ task }),
    });
  }

  /** A preset strategy with its options; gates as expressions (`p95_latency_ratio<=1.2`). */
  createRollout(
    body: {
      [K in keyof CreateRolloutRequest]?: CreateRolloutRequest[K] | undefined;
    } & Pick<CreateRolloutRequest, 'model' | 'targets'>,
  ): Promise<Rollout> {
    return this.request('POST', '/api/v1/rollouts', { json: body });
  }

  rolloutAction(
    id: string,
    action: 'pause' | 'resume' | 'abort' | 'rollback' | 'promote',
    reason?: string,
  ): Promise<Rollout> {
    return this.request('POST', `/api/v1/rollouts/${encodeURIComponent(id)}/${action}`, {
      json: reason === undefined ? {} : { reason },
    });
  }

  listRollouts(): Promise<{ rollouts: Rollout[] }> {
    return this.request('GET', '/api/v1/rollouts');
  }

  getRollout(id: string): Promise<Rollout> {
    return this.request('GET', `/api/v1/rollouts/${encodeURIComponent(id)}`);
  }

  listTasks(): Promise<{ tasks: Task[] }> {
    return this.request('GET', '/api/v1/tasks');
  }

  getTask(name: string): Promise<TaskWithStats> {
    return this.request('GET', `/api/v1/tasks/${encodeURIComponent(name)}`);
  }

  /** Import a CSV or JSONL file into a task (created from the file when it does not exist). */
  importData(
    task: string,
    text: string,
    options: {
      format: 'csv' | 'jsonl';
      label?: string | undefined;
      kind?: string | undefined;
      source: string;
    },
  ): Promise<ImportResult> {
    const query = new URLSearchParams({ format: options.format, source: options.source });
    if (options.label) query.set('label', options.label);
    if (options.kind) query.set('kind', options.kind);
    return this.request('POST', `/api/v1/tasks/${encodeURIComponent(task)}/import`, {
      query,
      body: text,
      contentType: options.format === 'csv' ? 'text/csv' : 'application/x-ndjson',
    });
  }

  createSnapshot(task: string): Promise<SnapshotRecord> {
    return this.request('POST', `/api/v1/tasks/${encodeURIComponent(task)}/snapshots`);
  }

  private async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const query = options.query?.toString();
    const url = `${this.options.baseUrl}${path}${query ? `?${query}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers['authorization'] = `Bearer ${this.options.token}`;
    let body = options.body;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.contentType) {
      headers['content-type'] = options.contentType;
    }

    let response: Response;
    let text: string;
    try {
      response = await this.options.fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
      text = await response.text();
    } catch (err) {
      throw new UnreachableError(
        `cannot reach the fleet server at ${this.options.baseUrl}: ${networkReason(err)}`,
        { cause: err },
      );
    }

    let parsed: unknown;
    let parseError: string | undefined;
    try {
      parsed = text.length === 0 ? undefined : JSON.parse(text);
    } catch (err) {
      parseError = (err as Error).message;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (error && typeof error.code === 'string' && typeof error.message === 'string') {
        throw new ApiError(response.status, error.code, error.message);
      }
      throw new ApiError(
        response.status,
        `http_${response.status}`,
        `${method} ${path} failed: ${snippet(text)}`,
      );
    }
    if (parseError !== undefined || parsed === undefined) {
      throw new ApiError(
        response.status,
        'invalid_response',
        `${method} ${path} answered with something that is not JSON: ${snippet(text)}`,
      );
    }
    return parsed as T;
  }
}

/** The most specific reason node's fetch gives: `connect ECONNREFUSED 127.0.0.1:8080`, `getaddrinfo ENOTFOUND x`. */
function networkReason(err: unknown): string {
  let current: unknown = err;
  let reason = err instanceof Error ? err.message : String(err);
  // fetch wraps the socket error as `TypeError: fetch failed` with the real error as its cause.
  for (let depth = 0; depth < 4 && current instanceof Error && current.cause !== undefined; depth++) {
    current = current.cause;
    if (current instanceof Error && current.message) reason = current.message;
  }
  return reason;
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length === 0) return '(empty body)';
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
