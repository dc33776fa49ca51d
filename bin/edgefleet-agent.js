#!/usr/bin/env node
// The device agent run from source (tsx), for development and tests. Devices run the single executable
// instead (npm run build:agent; its entry is agent/sea/entry.ts).
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../agent/cli.ts');
await main(process.argv);
