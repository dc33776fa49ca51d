/**
 * Who may connect to the MQTT broker, and what each identity may publish and subscribe to. All decisions
 * live here; the aedes hooks (broker/aedes.ts) are one adapter, and external brokers (EMQX HTTP auth,
 * Mosquitto dynamic security) get others later.
 *
 * Rules: a device authenticates with username = its id (clientId must match) and its secret; it publishes
 * only on its own device channels (status, telemetry, updates) and subscribes only to its own command
 * topic, with no wildcards. The fleet server's identity may do anything.
 */
import { timingSafeEqual } from 'node:crypto';
import { DEVICE_CHANNELS, DeviceIdSchema, parseTopic, topics } from '../../shared/protocol/topics.js';

export type Identity = { kind: 'server' } | { kind: 'device'; deviceId: string };

export type AuthResult =
  | { ok: true; identity: Identity }
  | { ok: false; reason: 'bad_credentials' | 'bad_client_id' };

export const SERVER_USERNAME = '$edgefleet';

export interface CredentialCheck {
  /** True when `secret` is the device's current MQTT password. */
  verifyDevice(deviceId: string, secret: string): Promise<boolean>;
}

export class AccessPolicy {
  constructor(
    private readonly serverSecret: string,
    private readonly credentials: CredentialCheck,
  ) {}

  async authenticate(
    clientId: string,
    username: string | undefined,
    password: string | undefined,
  ): Promise<AuthResult> {
    if (username === undefined || password === undefined) return { ok: false, reason: 'bad_credentials' };
    if (username === SERVER_USERNAME) {
      return safeEqual(password, this.serverSecret)
        ? { ok: true, identity: { kind: 'server' } }
        : { ok: false, reason: 'bad_credentials' };
    }
    if (!DeviceIdSchema.safeParse(username).success) return { ok: false, reason: 'bad_credentials' };
    if (!(await this.credentials.verifyDevice(username, password)))
      return { ok: false, reason: 'bad_credentials' };
    if (clientId !== username) return { ok: false, reason: 'bad_client_id' };
    return { ok: true, identity: { kind: 'device', deviceId: username } };
  }

  canPublish(identity: Identity, topic: string): boolean {
    if (identity.kind === 'server') return true;
    const parsed = parseTopic(topic);
    return (
      parsed !== null &&
      parsed.deviceId === identity.deviceId &&
      (DEVICE_CHANNELS as readonly string[]).includes(parsed.channel)
    );
  }

  canSubscribe(identity: Identity, topicFilter: string): boolean {
    if (identity.kind === 'server') return true;
    // Exact match only: no wildcard can widen a device's view.
    return topicFilter === topics.commands(identity.deviceId);
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
