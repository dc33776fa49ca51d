/** `edgefleet devices list|show`: enrolled devices, their status, models and last report. */
import { type Command, Option } from 'commander';
import type { Device } from '../client.js';
import type { CliContext } from '../context.js';
import { fields, formatAgo, formatBytes, formatTags, indent, orDash, table } from '../format.js';
import { collectTags } from '../parse.js';

export function registerDevices(program: Command, ctx: CliContext): void {
  const devices = program.command('devices').description('enrolled devices');

  devices
    .command('list')
    .description('list devices (filters combine)')
    .option('--tag <k=v>', 'only devices with this tag (repeatable, or k=v,k2=v2)', collectTags)
    .addOption(
      new Option('--status <status>', 'only online or offline devices').choices(['online', 'offline']),
    )
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        options: { tag?: Record<string, string>; status?: 'online' | 'offline'; json?: boolean },
        command: Command,
      ) => {
        const result = await ctx
          .connect(command)
          .listDevices({ tags: options.tag ?? {}, status: options.status });
        if (options.json) return ctx.printJson(result);
        ctx.out(devicesTable(result.devices, ctx.io.now()));
      },
    );

  devices
    .command('show')
    .description('one device in detail')
    .argument('<id>', 'device id')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const device = await ctx.connect(command).getDevice(id);
      if (options.json) return ctx.printJson(device);
      ctx.out(deviceDetail(device, ctx.io.now()));
    });
}

export function formatDeviceModels(models: Device['models']): string {
  if (models.length === 0) return '-';
  return models.map((m) => `${m.name}@${m.version} (${m.executionProvider})`).join(', ');
}

export function devicesTable(devices: readonly Device[], now: Date): string {
  if (devices.length === 0) return 'no devices\n';
  return table(
    ['ID', 'STATUS', 'PROFILE', 'MODELS', 'TAGS', 'LAST SEEN'],
    devices.map((d) => [
      d.id,
      d.status,
      d.profile,
      formatDeviceModels(d.models),
      formatTags(d.tags),
      formatAgo(d.lastSeen, now),
    ]),
  );
}

export function deviceDetail(device: Device, now: Date): string {
  const facts = Object.entries(device.facts ?? {})
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  let text = fields([
    ['id', device.id],
    ['status', device.status],
    ['last seen', device.lastSeen ? `${device.lastSeen} (${formatAgo(device.lastSeen, now)})` : 'never'],
    ['profile', device.profile],
    ['tags', formatTags(device.tags)],
    ['agent', orDash(device.agentVersion)],
    ['enrolled', device.enrolledAt],
    ['facts', orDash(facts)],
  ]);
  text += '\nmodels:\n';
  text +=
    device.models.length === 0
      ? '  (none active)\n'
      : indent(
          table(
            ['NAME', 'VERSION', 'PROVIDER', 'PROVIDERS THAT DID NOT LOAD'],
            device.models.map((m) => [
              m.name,
              String(m.version),
              m.executionProvider,
              (m.providersSkipped ?? []).map((p) => `${p.provider}: ${p.reason}`).join('; ') || '-',
            ]),
          ),
        );
  const t = device.telemetry;
  if (t) {
    text += `\ntelemetry (${formatAgo(new Date(t.ts).toISOString(), now)}, window ${Math.round(t.windowMs / 1000)}s):\n`;
    text += indent(
      fields([
        ['process', `rss ${formatBytes(t.process.rssBytes)}, cpu ${t.process.cpuPercent.toFixed(1)}%`],
        [
          'device',
          `load ${t.device.loadAvg1.toFixed(2)}, free memory ${formatBytes(t.device.freeMemBytes)} of ${formatBytes(t.device.totalMemBytes)}`,
        ],
      ]),
    );
    if (t.models.length > 0) {
      text += indent(
        table(
          ['MODEL', 'PROVIDER', 'REQUESTS', 'ERRORS', 'P50 MS', 'P95 MS', 'P99 MS'],
          t.models.map((m) => [
            `${m.name}@${m.version}`,
            m.executionProvider,
            String(m.requests),
            String(m.errors),
            m.latencyMs.p50.toFixed(2),
            m.latencyMs.p95.toFixed(2),
            m.latencyMs.p99.toFixed(2),
          ]),
        ),
      );
    }
  }
  return text;
}
