import { describe, expect, it } from 'vitest';

import { IUsage, IUsageEnv, IUsageRoot, sizeIn } from '../src/model';
import { usageShown } from '../src/usage';

const MiB = 1024 * 1024;
const root = (path: string, mib: number, count: number): IUsageRoot => ({
  root: path,
  kind: 'folder',
  source: 'configured',
  scope: 'user',
  size_bytes: mib * MiB,
  shared_bytes: 0,
  environments: count,
  owners: [
    {
      owner: 'ada',
      size_bytes: mib * MiB,
      environments: count,
      last_used: null
    }
  ]
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
  roots: [root('/srv/a', 8, 1), root('/srv/b', 4, 2)],
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

describe('usageShown: the places add up to the total above them', () => {
  it("says each place's own figures without a filter", () => {
    expect(usageShown(usage, null).roots.map(r => r.line)).toEqual([
      '8.0 MiB in 1 environment · owned by ada',
      '4.0 MiB in 2 environments · owned by ada'
    ]);
  });

  it('with a filter, gives each place the figures of its environments the filter shows, "n of N"', () => {
    const shown = usageShown(usage, new Set(['/srv/b/small', '/srv/a/big']));
    expect(shown.total).toBe(
      '12.0 MiB in 2 of 3 environments, those the filter shows'
    );
    expect(shown.roots.map(r => r.line)).toEqual([
      '8.0 MiB in 1 of 1 environment · owned by ada',
      '4.0 MiB in 1 of 2 environments · owned by ada'
    ]);
    const bytes = shown.roots.reduce((sum, r) => sum + r.size_bytes, 0);
    expect(bytes).toBe(12 * MiB);
  });

  it('names the owners of the filtered environments only, largest first', () => {
    const mixed: IUsage = {
      ...usage,
      roots: [{ ...root('/srv/b', 7, 3), owners: [] }],
      environments: [
        { ...env('x', '/srv/b', 1), owner: 'bob' },
        env('y', '/srv/b', 2),
        { ...env('z', '/srv/b', 4), owner: 'cy' }
      ]
    };
    const shown = usageShown(mixed, new Set(['/srv/b/x', '/srv/b/y']));
    expect(shown.roots[0].line).toBe(
      '3.0 MiB in 2 of 3 environments · owners: ada 2.0 MiB (1 environment), bob 1.0 MiB (1 environment)'
    );
  });

  it('words a size and a count one way', () => {
    expect(sizeIn(3 * MiB, 1)).toBe('3.0 MiB in 1 environment');
    expect(sizeIn(3 * MiB, 1, 4)).toBe('3.0 MiB in 1 of 4 environments');
  });
});
