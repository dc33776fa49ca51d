/** Child processes run to their end in tests. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `command` to its exit and return what it printed; a non-zero exit is returned, not thrown. */
export async function runToExit(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<Finished> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}
