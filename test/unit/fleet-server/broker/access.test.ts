/** The broker's access decisions as a table: who may connect, publish and subscribe where. */
import { describe, expect, it } from 'vitest';
import { AccessPolicy, type Identity, SERVER_USERNAME } from '../../../../fleet-server/broker/access.js';
import { topics } from '../../../../shared/protocol/topics.js';

const A = 'dev-aaaaaaaaaaaa';
const B = 'dev-bbbbbbbbbbbb';
const policy = new AccessPolicy('server-secret', {
  verifyDevice: async (id, secret) =>
    (id === A && secret === 'a-secret') || (id === B && secret === 'b-secret'),
});
const deviceA: Identity = { kind: 'device', deviceId: A };
const server: Identity = { kind: 'server' };

describe('AccessPolicy', () => {
  it.each([
    { clientId: A, username: A, password: 'a-secret', ok: true },
    { clientId: A, username: A, password: 'b-secret', ok: false, reason: 'bad_credentials' },
    { clientId: B, username: A, password: 'a-secret', ok: false, reason: 'bad_client_id' },
    { clientId: 'x', username: 'dev-unknown000', password: 'a-secret', ok: false, reason: 'bad_credentials' },
    { clientId: 'x', username: 'Not/A#Device', password: 'a-secret', ok: false, reason: 'bad_credentials' },
    { clientId: 'x', username: undefined, password: undefined, ok: false, reason: 'bad_credentials' },
    { clientId: 'srv', username: SERVER_USERNAME, password: 'server-secret', ok: true },
    { clientId: 'srv', username: SERVER_USERNAME, password: 'guess', ok: false, reason: 'bad_credentials' },
  ])('connect $username/$clientId → $ok', async ({ clientId, username, password, ok, reason }) => {
    const result = await policy.authenticate(clientId, username, password);
    expect(result.ok).toBe(ok);
    if (!result.ok) expect(result.reason).toBe(reason);
  });

  it.each([
    { topic: topics.status(A), allowed: true },
    { topic: topics.telemetry(A), allowed: true },
    { topic: topics.updates(A), allowed: true },
    { topic: topics.commands(A), allowed: false },
    { topic: topics.status(B), allowed: false },
    { topic: `${topics.prefix(A)}status/extra`, allowed: false },
    { topic: `${topics.prefix(A)}unknown`, allowed: false },
    { topic: 'elsewhere/entirely', allowed: false },
  ])('device A publishes to $topic → $allowed', ({ topic, allowed }) => {
    expect(policy.canPublish(deviceA, topic)).toBe(allowed);
  });

  it.each([
    { filter: topics.commands(A), allowed: true },
    { filter: topics.commands(B), allowed: false },
    { filter: 'edgefleet/v1/devices/+/commands', allowed: false },
    { filter: `${topics.prefix(A)}#`, allowed: false },
    { filter: '#', allowed: false },
    { filter: topics.status(A), allowed: false },
  ])('device A subscribes to $filter → $allowed', ({ filter, allowed }) => {
    expect(policy.canSubscribe(deviceA, filter)).toBe(allowed);
  });

  it('the fleet server may publish and subscribe anywhere', () => {
    expect(policy.canPublish(server, topics.commands(B))).toBe(true);
    expect(policy.canSubscribe(server, topics.allDevices('status'))).toBe(true);
  });
});
