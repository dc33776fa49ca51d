/**
 * Device sample batches into the pool: the batch's model names the task; sample ids become
 * `<deviceId>:<id>` (unique across the fleet, and a re-delivered batch is a no-op); what the device
 * dropped is recorded against it. A batch for a model no task trains is refused and counted as a whole.
 */
import type { Sample } from '../../shared/pool.js';
import type { SamplesMessage } from '../../shared/protocol/messages.js';
import type { IngestResult, Pool } from './pool.js';

export async function ingestDeviceBatch(
  pool: Pool,
  deviceId: string,
  message: SamplesMessage,
): Promise<IngestResult | null> {
  const task = await pool.taskForModel(message.model.name);
  if (!task) {
    await pool.countRejected(`model:${message.model.name}`, deviceId, 'unknown_task', message.samples.length);
    return null;
  }
  if (message.dropped > 0)
    await pool.countRejected(task.name, deviceId, 'dropped_on_device', message.dropped);
  const samples: Sample[] = message.samples.map((s) => ({
    id: `${deviceId}:${s.id}`,
    source: deviceId,
    features: s.features,
    label: s.label,
    ts: s.ts,
  }));
  return pool.ingest(task, deviceId, samples);
}
