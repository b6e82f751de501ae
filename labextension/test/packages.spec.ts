import { describe, expect, it } from 'vitest';

import {
  IRevision,
  isTooling,
  jobDoing,
  jobLine,
  restoreChanges,
  revisionSummary,
  revisionTime,
  splitSpecs
} from '../src/model';

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

describe("a layer's jobs and history read apart", () => {
  it("says what each job of an env did, in the sidebar's job list", () => {
    const done = {
      id: 'j',
      name: 'x',
      state: 'succeeded',
      step: 'done',
      progress: 1
    };
    expect(jobLine(done, 100)).toBe('create · done');
    expect(jobLine({ ...done, action: 'change' }, 100)).toBe(
      'package change · done'
    );
    expect(jobLine({ ...done, action: 'restore' }, 100)).toBe('restore · done');
    expect(
      jobLine(
        { ...done, state: 'running', step: 'install', action: 'change' },
        40
      )
    ).toBe('package change · install · 40 %');
    // nothing measured yet: the step alone, no "0 %"
    expect(jobLine({ ...done, state: 'queued', step: 'queued' }, null)).toBe(
      'create · queued'
    );
  });

  it("gives a revision's time to the minute, not the server's ISO text", () => {
    expect(revisionTime('2026-12-07T07:15:41+0000')).toBe(
      '2026-12-07 07:15 UTC'
    );
    expect(revisionTime('2026-12-07T07:15:41.5Z')).toBe('2026-12-07 07:15 UTC');
    expect(revisionTime('2026-12-07T09:15:41+02:00')).toBe(
      '2026-12-07 09:15 +02:00'
    );
    expect(revisionTime('yesterday')).toBe('yesterday');
  });
});

describe('isTooling: what the history counts and exports leave out', () => {
  it("is the installer's tooling, by normalised name", () => {
    expect(isTooling('pip')).toBe(true);
    expect(isTooling('Setuptools')).toBe(true);
    expect(isTooling('iniconfig')).toBe(false);
    expect(isTooling('pip-tools')).toBe(false);
  });
});

describe('what a restore does, in the confirmation', () => {
  const pkg = (name: string, version: string) => ({ name, version });

  it('names what goes, what comes and what changes version', () => {
    expect(
      restoreChanges(
        [pkg('iniconfig', '2.0.0'), pkg('pip', '26.3'), pkg('Flask', '3.0.3')],
        [pkg('flask', '2.3.0'), pkg('requests', '2.32.0')]
      )
    ).toBe(
      'removes iniconfig 2.0.0; installs requests 2.32.0; changes flask 3.0.3 → 2.3.0'
    );
  });

  it('leaves the installer tooling out (the revisions do not count it)', () => {
    expect(
      restoreChanges([pkg('iniconfig', '2.0.0'), pkg('pip', '26.3')], [])
    ).toBe('removes iniconfig 2.0.0');
  });

  it('says when nothing would change', () => {
    expect(restoreChanges([pkg('a_b', '1.0')], [pkg('A-B', '1.0')])).toBe(
      'no package changes: the layer has these versions already'
    );
  });
});
