import { describe, expect, it } from 'vitest';

import { IUsage, IUsageEnv, IUsageRoot } from '../src/model';
import { usageShown } from '../src/usage';

const MiB = 1024 * 1024;
const root = (path: string): IUsageRoot => ({
  root: path,
  kind: 'folder',
  source: 'configured',
  scope: 'user',
  size_bytes: 10 * MiB,
  shared_bytes: 0,
  environments: 2,
  owners: []
});
const env = (name: string, at: string, mib: number | null): IUsageEnv => ({
  id: name,
  name,
  path: `${at}/${name}`,
  owner: 'ada',
  root: at,
  size_bytes: mib === null ? null : mib * MiB,
  last_used: null,
  last_used_by: null
});
const usage: IUsage = {
  user: 'ada',
  total_bytes: 12 * MiB,
  measuring: 1,
  roots: [root('/srv/a'), root('/srv/b')],
  environments: [
    env('big', '/srv/a', 8),
    env('small', '/srv/b', 4),
    env('new', '/srv/b', null)
  ]
};

describe('usageShown: the Storage view follows the filter', () => {
  it('shows everything without a filter', () => {
    const shown = usageShown(usage, null);
    expect(shown.environments.map(e => e.name)).toEqual([
      'big',
      'small',
      'new'
    ]);
    expect(shown.roots.map(r => r.root)).toEqual(['/srv/a', '/srv/b']);
    expect(shown.total).toBe('12.0 MiB in 3 environments (1 not measured yet)');
  });

  it('with a filter, lists the environments the tree shows and the places holding them, and says so', () => {
    const shown = usageShown(usage, new Set(['/srv/b/small']));
    expect(shown.environments.map(e => e.name)).toEqual(['small']);
    expect(shown.roots.map(r => r.root)).toEqual(['/srv/b']);
    expect(shown.total).toBe(
      '4.0 MiB in 1 of 3 environments, those the filter shows'
    );
  });

  it("counts a filtered environment's size not measured yet", () => {
    const shown = usageShown(usage, new Set(['/srv/b/small', '/srv/b/new']));
    expect(shown.total).toBe(
      '4.0 MiB in 2 of 3 environments, those the filter shows (1 not measured yet)'
    );
  });

  it('says when the filter shows none of them', () => {
    const shown = usageShown(usage, new Set());
    expect(shown.environments).toEqual([]);
    expect(shown.roots).toEqual([]);
    expect(shown.total).toBe(
      '0 bytes in 0 of 3 environments, those the filter shows'
    );
  });
});
