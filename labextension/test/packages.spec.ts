import { describe, expect, it } from 'vitest';

import { IRevision, jobDoing, revisionSummary, splitSpecs } from '../src/model';

function rev(request: IRevision['request']): IRevision {
  return {
    revision: 2,
    created: '2026-01-01T00:00:00+0000',
    user: 'ada',
    request,
    lock: [],
    base_fingerprint: null,
    base_changed: false
  };
}

describe('the Packages view', () => {
  it('splits specs on spaces and new lines, never inside a spec', () => {
    expect(splitSpecs(' flask>=3,<4  requests\nnumpy==1.26 ')).toEqual([
      'flask>=3,<4',
      'requests',
      'numpy==1.26'
    ]);
    expect(splitSpecs('   ')).toEqual([]);
  });

  it('says what a revision did', () => {
    expect(
      revisionSummary(rev({ action: 'change', add: ['a>=1'], remove: ['b'] }))
    ).toBe('change +a>=1 -b');
    expect(revisionSummary(rev({ action: 'restore', revision: 1 }))).toBe(
      'restore of revision 1'
    );
    expect(revisionSummary(rev({ action: 'create', add: [] }))).toBe('create');
  });

  it('names what a job does', () => {
    const job = { id: 'j', state: 'running', step: 'install', progress: 0.5 };
    expect(jobDoing({ ...job, name: 'x' })).toBe('Creating x');
    expect(jobDoing({ ...job, name: 'x', action: 'change' })).toBe(
      'Changing the packages of x'
    );
    expect(jobDoing({ ...job, name: 'x', action: 'restore' })).toBe(
      'Restoring x'
    );
    expect(jobDoing(job)).toBe('Creating environment');
  });
});
