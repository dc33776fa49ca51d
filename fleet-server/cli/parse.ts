/**
 * Pure parsers for command-line values. Each throws commander's InvalidArgumentError naming the bad part, so
 * commander reports it against the option it came from (a usage error, exit code 2).
 */
import { InvalidArgumentError } from 'commander';
import { ModelNameSchema, VariantNameSchema } from '../../shared/manifest.js';

/** Tag keys as the fleet accepts them. */
const TAG_KEY = /^[\w.-]{1,64}$/;

/** `k=v,k2=v2` → { k: 'v', k2: 'v2' }. Values may be empty; keys may not repeat. */
export function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of text.split(',')) {
    const [key, value] = splitTag(part);
    if (Object.hasOwn(tags, key)) throw new InvalidArgumentError(`tag '${key}' is given twice`);
    tags[key] = value;
  }
  return tags;
}

/** Repeatable `--tag k=v` (each may also be a comma list): merge into the previous value. */
export function collectTags(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const merged = { ...previous };
  for (const [key, value] of Object.entries(parseTags(text))) {
    if (Object.hasOwn(merged, key) && merged[key] !== value) {
      throw new InvalidArgumentError(`tag '${key}' is given twice with different values`);
    }
    merged[key] = value;
  }
  return merged;
}

function splitTag(part: string): [string, string] {
  const eq = part.indexOf('=');
  if (eq < 0) throw new InvalidArgumentError(`tag '${part}' must look like key=value`);
  const key = part.slice(0, eq).trim();
  if (!TAG_KEY.test(key)) {
    throw new InvalidArgumentError(
      `tag key '${key}' in '${part}' must be 1-64 letters, digits, '_', '.' or '-'`,
    );
  }
  return [key, part.slice(eq + 1).trim()];
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `30s`, `10m`, `24h`, `7d`, or a combination such as `1h30m` → whole seconds (> 0). */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+[smhd])+$/.test(trimmed)) {
    throw new InvalidArgumentError(
      `duration '${text}' must be a number with a unit s, m, h or d (e.g. 30s, 10m, 24h, 7d)`,
    );
  }
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([smhd])/g)) {
    seconds += Number(amount) * DURATION_UNITS[unit!]!;
  }
  if (seconds <= 0) throw new InvalidArgumentError(`duration '${text}' must be longer than zero`);
  if (!Number.isSafeInteger(seconds)) throw new InvalidArgumentError(`duration '${text}' is too long`);
  return seconds;
}

export const VERSION_ALIASES = ['production', 'candidate'] as const;
export type VersionAlias = (typeof VERSION_ALIASES)[number];

export interface ModelRef {
  name: string;
  /** A version number, or an alias the fleet resolves. */
  version: number | VersionAlias;
}

/**
 * `name@version` or `name@alias` → { name, version }; the name must be a valid model name, the version a
 * positive integer or one of the aliases (`production`, `candidate`).
 */
export function parseModelRef(text: string): ModelRef {
  const at = text.lastIndexOf('@');
  if (at < 0)
    throw new InvalidArgumentError(`'${text}' must look like NAME@VERSION (e.g. demo@3 or demo@production)`);
  const name = text.slice(0, at);
  const versionText = text.slice(at + 1);
  if (!ModelNameSchema.safeParse(name).success) {
    throw new InvalidArgumentError(
      `model name '${name}' in '${text}' must be lowercase letters, digits, '.', '_' and '-'`,
    );
  }
  if ((VERSION_ALIASES as readonly string[]).includes(versionText))
    return { name, version: versionText as VersionAlias };
  if (!/^[1-9]\d*$/.test(versionText) || !Number.isSafeInteger(Number(versionText))) {
    throw new InvalidArgumentError(
      `version '${versionText}' in '${text}' must be a positive integer or ${VERSION_ALIASES.join(' / ')}`,
    );
  }
  return { name, version: Number(versionText) };
}

/** A model name on its own (`models push --name`). */
export function parseModelName(text: string): string {
  if (!ModelNameSchema.safeParse(text).success) {
    throw new InvalidArgumentError(
      `model name '${text}' must start with a lowercase letter or digit and contain only lowercase letters, digits, '.', '_' and '-' (at most 128)`,
    );
  }
  return text;
}

/** A variant name (`models push --variant`): what the registry accepts. */
export function parseVariantName(text: string): string {
  if (!VariantNameSchema.safeParse(text).success) {
    throw new InvalidArgumentError(
      `variant '${text}' must start with a lowercase letter or digit and contain only lowercase letters, digits, '.', '_' and '-' (at most 64)`,
    );
  }
  return text;
}

/** A version on its own (`models push --version`): a positive integer or an alias. */
export function parseVersionRef(text: string): number | VersionAlias {
  if ((VERSION_ALIASES as readonly string[]).includes(text)) return text as VersionAlias;
  if (!/^[1-9]\d*$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError(
      `version '${text}' must be a positive integer or ${VERSION_ALIASES.join(' / ')}`,
    );
  }
  return Number(text);
}

/** `a,b,c` → ['a', 'b', 'c'], with no empty or repeated items. */
export function parseList(text: string): string[] {
  const items = text.split(',').map((item) => item.trim());
  if (items.some((item) => item.length === 0)) {
    throw new InvalidArgumentError(`'${text}' has an empty item (expected a,b,c)`);
  }
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item)) throw new InvalidArgumentError(`'${item}' is listed twice`);
    seen.add(item);
  }
  return items;
}

/** A TCP port, 0 meaning "pick a free one". */
export function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65_535) {
    throw new InvalidArgumentError(`port '${text}' must be an integer from 0 to 65535`);
  }
  return Number(text);
}

/** A positive number, e.g. days (fractions allowed). */
export function parsePositiveNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`'${text}' must be a positive number`);
  }
  return n;
}

/** The fleet server's base URL: http(s) only, no trailing slash. */
export function parseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`'${text}' is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`'${text}' must be an http:// or https:// URL`);
  }
  return url.href.replace(/\/+$/, '');
}

/** `--alias` of `models promote`. */
export function parseAliasName(text: string): VersionAlias {
  if ((VERSION_ALIASES as readonly string[]).includes(text)) return text as VersionAlias;
  throw new InvalidArgumentError(`alias '${text}' must be one of ${VERSION_ALIASES.join(', ')}`);
}

/** `5,25,100` → [5, 25, 100]: integers 1..100, strictly increasing. */
export function parsePercents(text: string): number[] {
  const values = text.split(',').map((part) => part.trim());
  const out: number[] = [];
  for (const v of values) {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 100)
      throw new InvalidArgumentError(`'${v}' in '${text}' must be a whole percentage from 1 to 100`);
    if (out.length > 0 && Number(v) <= out[out.length - 1]!)
      throw new InvalidArgumentError(`'${text}' must increase`);
    out.push(Number(v));
  }
  return out;
}
