/**
 * The fleet's code version as training lineage records it: the package version, plus the git commit (and
 * `-dirty` when the work tree has changes) when the fleet runs from a git checkout. Computed once.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function codeVersion(packageVersion: string): string {
  cached ??= `${packageVersion}${gitSuffix()}`;
  return cached;
}

function gitSuffix(): string {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const git = (args: string[]) =>
    execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
      .toString()
      .trim();
  try {
    const commit = git(['rev-parse', '--short=12', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
    return `+${commit}${dirty ? '-dirty' : ''}`;
  } catch {
    return ''; // not a checkout (an installed package), or no git: the package version alone
  }
}
