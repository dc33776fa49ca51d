#!/usr/bin/env node
// The `edgefleet` command: operator CLI and `edgefleet serve`. TypeScript is loaded through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../fleet-server/cli/index.ts');
await main(process.argv);
