import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMMAND_CHANNEL,
  DEVICE_CHANNELS,
  DeviceIdSchema,
  parseTopic,
  TOPIC_ROOT,
  topics,
} from '../../../shared/protocol/topics.js';

const deviceId = fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,62}$/);

describe('topics', () => {
  it('lays topics out as edgefleet/v1/devices/{id}/{channel}', () => {
    expect(topics.commands('dev-001')).toBe('edgefleet/v1/devices/dev-001/commands');
    expect(topics.status('dev-001')).toBe('edgefleet/v1/devices/dev-001/status');
    expect(topics.telemetry('dev-001')).toBe('edgefleet/v1/devices/dev-001/telemetry');
    expect(topics.updates('dev-001')).toBe('edgefleet/v1/devices/dev-001/updates');
    expect(topics.allDevices('status')).toBe('edgefleet/v1/devices/+/status');
    for (const build of [topics.commands, topics.status, topics.telemetry, topics.updates]) {
      expect(build('dev-001').startsWith(topics.prefix('dev-001'))).toBe(true);
    }
  });

  it('property: parseTopic inverts every builder for every valid device id', () => {
    const builders = {
      commands: topics.commands,
      status: topics.status,
      telemetry: topics.telemetry,
      updates: topics.updates,
    };
    fc.assert(
      fc.property(
        deviceId,
        fc.constantFrom(...(Object.keys(builders) as (keyof typeof builders)[])),
        (id, channel) => {
          expect(parseTopic(builders[channel](id))).toEqual({ deviceId: id, channel });
        },
      ),
    );
  });

  it('knows exactly the device channels and the command channel', () => {
    expect([...DEVICE_CHANNELS, COMMAND_CHANNEL].sort()).toEqual([
      'commands',
      'samples',
      'status',
      'telemetry',
      'updates',
    ]);
  });

  it.each([
    ['a subscription wildcard +', topics.allDevices('status')],
    ['a multi-level wildcard', `${TOPIC_ROOT}/#`],
    ['a # device id', `${TOPIC_ROOT}/#/status`],
    ['an unknown channel', `${TOPIC_ROOT}/dev-001/secrets`],
    ['an extra level', `${TOPIC_ROOT}/dev-001/status/extra`],
    ['a trailing slash', `${TOPIC_ROOT}/dev-001/status/`],
    ['a missing channel', `${TOPIC_ROOT}/dev-001`],
    ['another root', 'edgefleet/v2/devices/dev-001/status'],
    ['a root-prefixed lookalike', `${TOPIC_ROOT}x/dev-001/status`],
    ['an upper-case id', `${TOPIC_ROOT}/DEV-001/status`],
    ['a too-short id', `${TOPIC_ROOT}/ab/status`],
    ['an id starting with -', `${TOPIC_ROOT}/-dev/status`],
    ['an id with a slash', topics.status('a/b-c')],
    ['an id with a +', topics.status('dev+1')],
    ['an empty id', `${TOPIC_ROOT}//status`],
    ['the empty topic', ''],
  ])('rejects %s', (_what, topic) => {
    expect(parseTopic(topic)).toBeNull();
  });

  it('device ids: 3-63 lowercase letters, digits and -, starting alphanumeric', () => {
    for (const ok of ['abc', 'dev-001', '0ab', 'a'.repeat(63)])
      expect(DeviceIdSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['ab', 'a'.repeat(64), '-ab', 'Dev', 'de_v', 'dev/1', 'dev+', 'dev#', 'dev 1', '']) {
      expect(DeviceIdSchema.safeParse(bad).success, bad).toBe(false);
    }
  });
});
