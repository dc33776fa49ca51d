/**
 * Sends the outbox to the fleet in batches: when a batch is full (`batchSize`) or its oldest sample is
 * `maxAgeMs` old, and only while connected. A batch is gzip-compressed JSON on the `samples` channel and is
 * removed from the outbox only once the broker acknowledged it (QoS 1), so an outage delays, never loses.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { PROTOCOL_VERSION, type SamplesMessage } from '../../shared/protocol/messages.js';
import type { Capture } from './capture.js';
import type { Outbox } from './outbox.js';

export interface SampleLink {
  readonly connected: boolean;
  /** Publish a compressed batch; resolves on the broker's acknowledgement. */
  publishSamples(payload: Buffer): Promise<void>;
}

export function startSampleSender(options: {
  outbox: Outbox;
  capture: Capture;
  link: SampleLink;
  batchSize: number;
  maxAgeMs: number;
  tickMs: number;
  now: () => number;
  log: Logger;
}): { stop(): Promise<void>; flush(): Promise<void> } {
  const { outbox, link, log } = options;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  const drain = async (force: boolean) => {
    await options.capture.sweep();
    while (!stopped && link.connected && outbox.length > 0) {
      const batch = await outbox.peek(options.batchSize);
      if (!batch) return;
      const oldest = batch.samples[0]!.ts;
      const ready =
        force || batch.samples.length >= options.batchSize || options.now() - oldest >= options.maxAgeMs;
      if (!ready) return;
      const dropped = outbox.droppedUnreported;
      const message: SamplesMessage = {
        v: PROTOCOL_VERSION,
        type: 'samples',
        id: randomUUID(),
        ts: options.now(),
        model: batch.model,
        samples: batch.samples,
        dropped,
      };
      await link.publishSamples(gzipSync(Buffer.from(JSON.stringify(message))));
      await outbox.acknowledge(batch.keys, dropped);
    }
  };

  const tick = (force = false) => {
    running = running
      .then(() => drain(force))
      .catch((err) => log.warn({ err: (err as Error).message }, 'sample batch not delivered; will retry'));
    return running;
  };
  const timer = setInterval(() => void tick(), options.tickMs);
  timer.unref();

  return {
    flush: () => tick(true),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
