/**
 * Every MQTT topic edgefleet uses is built here and nowhere else.
 * Layout: `edgefleet/v1/devices/{deviceId}/{channel}`. Commands flow fleet → device on `commands`;
 * every other channel flows device → fleet. Device ids can never contain MQTT wildcards or separators.
 */
import { z } from 'zod';

export const TOPIC_ROOT = 'edgefleet/v1/devices';

export const DeviceIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{2,62}$/,
    'device id: 3-63 lowercase letters, digits and "-", starting alphanumeric',
  );

/** Channels a device publishes on (device → fleet). */
export const DEVICE_CHANNELS = ['status', 'telemetry', 'updates', 'samples'] as const;
export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];
/** The one channel a device subscribes to (fleet → device). */
export const COMMAND_CHANNEL = 'commands';
export type Channel = DeviceChannel | typeof COMMAND_CHANNEL;

export const topics = {
  prefix: (deviceId: string): string => `${TOPIC_ROOT}/${deviceId}/`,
  commands: (deviceId: string): string => `${TOPIC_ROOT}/${deviceId}/${COMMAND_CHANNEL}`,
  status: (deviceId: string): string => `${TOPIC_ROOT}/${deviceId}/status`,
  telemetry: (deviceId: string): string => `${TOPIC_ROOT}/${deviceId}/telemetry`,
  updates: (deviceId: string): string => `${TOPIC_ROOT}/${deviceId}/updates`,
  /** Captured samples for the data pool; payloads on this channel are gzip-compressed JSON. */
  samples: (deviceId: string): string => `${TOPIC_ROOT}/${deviceId}/samples`,
  /** Subscription the fleet server uses to hear one channel from every device. */
  allDevices: (channel: DeviceChannel): string => `${TOPIC_ROOT}/+/${channel}`,
} as const;

export interface ParsedTopic {
  deviceId: string;
  channel: Channel;
}

/** Split a concrete topic into device id and channel; null for anything outside the layout. */
export function parseTopic(topic: string): ParsedTopic | null {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return null;
  const rest = topic.slice(TOPIC_ROOT.length + 1).split('/');
  if (rest.length !== 2) return null;
  const [deviceId, channel] = rest as [string, string];
  if (!DeviceIdSchema.safeParse(deviceId).success) return null;
  if (channel !== COMMAND_CHANNEL && !(DEVICE_CHANNELS as readonly string[]).includes(channel)) return null;
  return { deviceId, channel: channel as Channel };
}
