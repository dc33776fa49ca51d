/**
 * `npm run demo` tells its whole story and exits cleanly with `--exit`: the README promises it to newcomers,
 * so it must not rot. Its progress lines are the contract checked here, in order.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('npm run demo', () => {
  it('goes from bootstrap to a cleared drift, and says so step by step', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'fleet-server', 'demo.ts'), '--exit'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
      },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err = (err + d).slice(-5000);
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, `${out}\n${err}`).toBe(0);
    const steps = [
      /fleet server up: API http:\/\/127\.0\.0\.1:\d+/,
      /3 agents enrolled/,
      /task "quality" bootstrapped/,
      /trained quality@1 .* holdout accuracy/,
      /rolled quality@1 out to all 3 devices/,
      /every device reports "no drift" on v1/,
      /the world shifts/,
      /reports drift: f0 .*f1/,
      /retrain rt-\S+ fired/,
      /trained quality@2 on snapshot snap-/,
      /challenger v2 accuracy .* wins by the margin/,
      /canary rollout ro-\S+ started/,
      /v2 runs on all 3 devices; production = v2/,
      /drift cleared: every device reports "no drift" on v2/,
      /live accuracy on world B: v1 .* → v2/,
      /npx edgefleet drift status --task quality/,
    ];
    let from = 0;
    for (const step of steps) {
      const at = out.slice(from).search(step);
      expect(at, `"${step}" after position ${from} in:\n${out}`).toBeGreaterThanOrEqual(0);
      from += at;
    }
  }, 240_000);
});
