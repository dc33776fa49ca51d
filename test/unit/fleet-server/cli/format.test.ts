import { describe, expect, it } from 'vitest';
import { devicesTable, formatDeviceModels } from '../../../../fleet-server/cli/commands/devices.js';
import { modelVersionDetail } from '../../../../fleet-server/cli/commands/models.js';
import {
  formatTargets,
  isTerminalPhase,
  rolloutChanges,
  rolloutDetail,
} from '../../../../fleet-server/cli/commands/rollouts.js';
import {
  cell,
  fields,
  formatAgo,
  formatBytes,
  formatTags,
  indent,
  json,
  orDash,
  table,
} from '../../../../fleet-server/cli/format.js';
import { device, modelVersion, rollout } from './fixtures.js';

const NOW = new Date('2026-01-01T12:00:00.000Z');

describe('table', () => {
  it('pads every column to its widest cell, two spaces apart, without trailing spaces', () => {
    expect(
      table(
        ['ID', 'STATUS', 'TAGS'],
        [
          ['dev-1', 'online', 'a=1'],
          ['dev-long-id', 'offline', '-'],
        ],
      ),
    ).toBe(
      'ID           STATUS   TAGS\n' + //
        'dev-1        online   a=1\n' +
        'dev-long-id  offline  -\n',
    );
  });

  it('prints just the header for no rows and tolerates short rows', () => {
    expect(table(['A', 'B'], [])).toBe('A  B\n');
    expect(table(['A', 'B'], [['x']])).toBe('A  B\nx\n');
  });

  it('fields aligns labelled values', () => {
    expect(
      fields([
        ['id', 'x'],
        ['last seen', 'never'],
      ]),
    ).toBe('id:         x\nlast seen:  never\n');
  });

  it('indent indents non-empty lines only', () => {
    expect(indent('a\n\nb\n')).toBe('  a\n\n  b\n');
  });
});

describe('values', () => {
  it('formatTags sorts by key and shows a dash for none', () => {
    expect(formatTags({ site: 'b', line: '2' })).toBe('line=2,site=b');
    expect(formatTags({})).toBe('-');
    expect(formatTags(null)).toBe('-');
  });

  it.each([
    [null, 'never'],
    ['2026-01-01T11:59:48.000Z', '12s ago'],
    ['2026-01-01T11:55:00.000Z', '5m ago'],
    ['2026-01-01T09:00:00.000Z', '3h ago'],
    ['2025-12-29T12:00:00.000Z', '3d ago'],
    ['2026-01-01T12:00:05.000Z', 'just now'],
    ['yesterday', 'yesterday'],
  ])('formatAgo(%j) is %j', (iso, text) => {
    expect(formatAgo(iso, NOW)).toBe(text);
  });

  it('formatBytes uses binary units', () => {
    expect(formatBytes(535)).toBe('535 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(512 * 1024 * 1024)).toBe('512.0 MiB');
  });

  it('cell keeps one bounded line; orDash fills blanks', () => {
    expect(cell('a\n  b')).toBe('a b');
    expect(cell('x'.repeat(10), 5)).toBe('xxxx…');
    expect([orDash(null), orDash(undefined), orDash(''), orDash(0), orDash('cpu')]).toEqual([
      '-',
      '-',
      '-',
      '0',
      'cpu',
    ]);
  });

  it('json is one parseable document ending in a newline', () => {
    const value = { a: [1, { b: 'ü' }] };
    const text = json(value);
    expect(text.endsWith('\n')).toBe(true);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('command output', () => {
  it('devices table has the contract columns', () => {
    const text = devicesTable(
      [device(), device({ id: 'dev-bbb222', status: 'never_seen', lastSeen: null, models: [] })],
      NOW,
    );
    const [header, first, second] = text.split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['ID', 'STATUS', 'PROFILE', 'MODELS', 'TAGS', 'LAST SEEN']);
    expect(first!.split(/\s{2,}/)).toEqual([
      'dev-aaa111',
      'online',
      'x86_64-cpu',
      'demo@2 (cpu)',
      'line=2,site=berlin',
      '30s ago',
    ]);
    expect(second!.split(/\s{2,}/)).toEqual([
      'dev-bbb222',
      'never_seen',
      'x86_64-cpu',
      '-',
      'line=2,site=berlin',
      'never',
    ]);
    expect(devicesTable([], NOW)).toBe('no devices\n');
    expect(
      formatDeviceModels([
        { name: 'a', version: 1, executionProvider: 'cuda' },
        { name: 'b', version: 2, executionProvider: 'cpu' },
      ]),
    ).toBe('a@1 (cuda), b@2 (cpu)');
  });

  it('model version detail lists tensors and the signing key', () => {
    const text = modelVersionDetail(modelVersion());
    expect(text).toContain('model:      demo@3');
    expect(text).toMatch(/input\s+float32\s+\[batch, 4\]/);
    expect(text).toMatch(/output\s+float32\s+\[batch, 2\]/);
    expect(text).toContain('signed by:  f4a48f03378108bb');
  });

  it('rollout detail shows phase, counts and a DEVICE STATE PROVIDER REASON table', () => {
    const text = rolloutDetail(rollout(['active', 'failed']));
    expect(text).toContain('phase failed  at 100%  (total 2, pending 0, in progress 0, active 1, failed 1)');
    const rows = text.trimEnd().split('\n').slice(-3);
    expect(rows[0]!.split(/\s{2,}/)).toEqual(['DEVICE', 'STATE', 'PROVIDER', 'REASON']);
    expect(rows[1]!.split(/\s{2,}/)).toEqual(['dev-000', 'active', 'cpu', '-']);
    expect(rows[2]!.split(/\s{2,}/)).toEqual([
      'dev-100',
      'failed',
      '-',
      'signature_invalid: signature does not match',
    ]);
  });

  it('rollout changes name each device move and the phase move, and nothing when unchanged', () => {
    const before = rollout(['pending', 'downloading']);
    expect(rolloutChanges(before, before, NOW)).toBe('');
    const after = rollout(['active', 'failed']);
    expect(rolloutChanges(before, after, NOW).split('\n')).toEqual([
      '12:00:00  dev-000  pending -> active on cpu',
      '12:00:00  dev-100  downloading -> failed: signature_invalid: signature does not match',
      '12:00:00  phase progressing -> failed  (total 2, pending 0, in progress 0, active 1, failed 1)',
      '',
    ]);
  });

  it('only succeeded and failed are terminal phases', () => {
    expect(['progressing', 'succeeded', 'failed'].map(isTerminalPhase)).toEqual([false, true, true]);
  });

  it('rollout targets are summarised', () => {
    expect(formatTargets({ devices: ['a', 'b'] })).toBe('devices a,b');
    expect(formatTargets({ tags: { site: 'x' } })).toBe('tags site=x');
    expect(formatTargets({})).toBe('-');
  });
});
