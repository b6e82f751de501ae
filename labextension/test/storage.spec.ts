import { describe, expect, it } from 'vitest';

import {
  cleanSummary,
  formatBytes,
  ICleanReport,
  IUsageRoot,
  lastUsedText,
  revisionPackages,
  storageGroupLabel,
  storageGroupLine,
  StorageGroupSource
} from '../src/model';

describe('the Storage view words', () => {
  it('says sizes as du -h does, and when one is not measured yet', () => {
    expect(formatBytes(0)).toBe('0 bytes');
    expect(formatBytes(1023)).toBe('1023 bytes');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
    expect(formatBytes(3 * 1024 ** 4)).toBe('3.0 TiB');
    expect(formatBytes(null)).toBe('size not measured yet');
  });

  it("says a group's size, what it counts and whose it is, not a place called like its owner", () => {
    const MiB = 1024 * 1024;
    const owner = (name: string | null, mib: number, environments: number) => ({
      owner: name,
      size_bytes: mib * MiB,
      environments,
      last_used: null
    });
    const group = (owners: ReturnType<typeof owner>[]): IUsageRoot => ({
      root: '/srv/envs',
      kind: 'folder',
      source: 'configured',
      scope: 'user',
      size_bytes: owners.reduce((sum, o) => sum + o.size_bytes, 0),
      shared_bytes: 0,
      environments: owners.reduce((sum, o) => sum + o.environments, 0),
      owners
    });
    // the tests run as root: "root:" under "Folder of environments ... (not a root)" read as a place
    expect(storageGroupLine(group([owner('root', 8, 1)]))).toBe(
      '8.0 MiB in 1 environment · owned by root'
    );
    expect(
      storageGroupLine(group([owner('alice', 6, 3), owner('bob', 2, 1)]))
    ).toBe(
      '8.0 MiB in 4 environments · owners: alice 6.0 MiB (3 environments), bob 2.0 MiB (1 environment)'
    );
    // an owner the server could not name (a negative uid)
    expect(storageGroupLine(group([owner(null, 1, 2)]))).toBe(
      '1.0 MiB in 2 environments · owner unknown'
    );
    expect(
      storageGroupLine(group([owner('ada', 2, 1), owner(null, 1, 2)]))
    ).toBe(
      '3.0 MiB in 3 environments · owners: ada 2.0 MiB (1 environment), unknown owner 1.0 MiB (2 environments)'
    );
    // a group with no environment left says so, not a dangling separator
    expect(storageGroupLine(group([]))).toBe('0 bytes in 0 environments');
  });

  it.each<[IUsageRoot['kind'], StorageGroupSource, string]>([
    ['folder', 'create-root', 'Root where new environments go'],
    ['folder', 'group-root', 'Group root'],
    ['folder', 'configured', 'Configured root'],
    ['conda-install', 'configured', 'Conda install · configured root'],
    ['conda-install', 'system-root', 'Conda install · system root'],
    [
      'conda-install',
      'default',
      'Conda install searched by default (not configured)'
    ],
    ['folder', 'default', 'Folder searched by default (not configured)'],
    [
      'conda-install',
      'found',
      'Conda install found through one of its environments (not configured)'
    ],
    ['folder', 'found', 'Folder of environments found one by one (not a root)'],
    [
      'folder',
      'condarc',
      "Folder of Conda envs named in a .condarc's envs_dirs (not a root)"
    ],
    [
      'folder',
      'server-prefix',
      "Folder of the server's own environment (not a root)"
    ]
  ])(
    'calls a %s group (source %s) a root only when it is one: "%s"',
    (kind, source, label) => {
      const group: IUsageRoot = {
        root: '/x',
        kind,
        source,
        scope: 'user',
        size_bytes: 0,
        shared_bytes: 0,
        environments: 1,
        owners: []
      };
      expect(storageGroupLabel(group)).toBe(label);
    }
  );

  it("counts a revision's packages in plain words", () => {
    const rev = (n: number) => ({
      lock: Array(n).fill({ name: 'a', version: '1' })
    });
    expect(revisionPackages(rev(1))).toBe('(1 package)');
    expect(revisionPackages(rev(0))).toBe('(0 packages)');
  });

  it('says when a kernel last started, and for whom', () => {
    expect(lastUsedText('2026-12-06T20:01:38+00:00', 'ada')).toBe(
      'last kernel 2026-12-06 (ada)'
    );
    expect(lastUsedText(null)).toBe('no kernel started yet');
  });

  it('sums up a cleanup, previewed or done', () => {
    const report: ICleanReport = {
      dry_run: true,
      unused_days: 90,
      removed: [
        { id: 'old', path: '/h/old', size_bytes: 2048, last_used: null }
      ],
      kept: [],
      caches: [{ cache: '/c', entries: 1, bytes: 1024, skipped: null }],
      bytes_freed: 3072
    };
    expect(cleanSummary(report)).toBe(
      'Would remove 1 environment unused for 90 days and free 3.0 KiB.'
    );
    expect(cleanSummary({ ...report, dry_run: false })).toBe(
      'Removed 1 environment; freed 3.0 KiB.'
    );
    expect(cleanSummary({ ...report, removed: [], bytes_freed: 0 })).toBe(
      'Nothing unused for 90 days to remove; pruning the package caches would free 0 bytes.'
    );
  });
});
