#!/usr/bin/env node
// The device agent. (Issue 7 ships it as a single executable; this is the development entry point.)
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../agent/cli.ts');
await main(process.argv);
