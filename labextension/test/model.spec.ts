import { describe, expect, it, vi } from 'vitest';

import {
  baseChoices,
  countNodes,
  defaultBase,
  deleteBlockedReason,
  fieldForError,
  filenameFromDisposition,
  filterTree,
  groupByBase,
  IJob,
  IJobSource,
  JobFollower,
  errorMessage,
  matchesFilter,
  matchesSkipped,
  NAME_PATTERN,
  notebookKernel,
  notKernels,
  orphanEnv,
  parsePackageLines,
  percent,
  reasonCommands,
  validateName
} from '../src/model';
import { condaBase, condaEnv, env } from './fixtures';

const ROOT = '/home/ada/miniconda3';
const root = condaBase(ROOT);
const ai = condaEnv(ROOT, 'py311_ai');
const noipk = condaEnv(ROOT, 'noipk', {
  kernels: [],
  skipped_reason: 'no ipykernel: run … or create a layer with inherit'
});
const layer = env({
  id: 'conda-py311_ai.myexp_env',
  name: 'myexp_env',
  path: `${ROOT}/envs/py311_ai/myexp_env`,
  base: `${ROOT}/envs/py311_ai`,
  kind: 'layered'
});
const userLayer = env({
  id: 'conda-py311_ai.proj',
  name: 'proj',
  path: '/home/ada/.virtualenvs/proj',
  base: `${ROOT}/envs/py311_ai/`,
  kind: 'layered'
});
const plain = env({
  id: 'venv-plain',
  name: 'plain',
  path: '/home/ada/.virtualenvs/plain',
  kind: 'venv',
  python_version: '3.12.1'
});
const orphan = env({
  id: 'orphan',
  name: 'orphan',
  path: '/srv/orphan',
  kind: 'layered',
  base: '/gone/envs/x'
});
const ALL = [plain, layer, noipk, userLayer, ai, root, orphan];

describe('validateName', () => {
  it('accepts what the server accepts', () => {
    for (const name of ['a', 'myexp_env', 'A1.2-b_c', '0abc', 'x'.repeat(64)]) {
      expect(validateName(name)).toBeNull();
      expect(NAME_PATTERN.test(name)).toBe(true);
    }
  });

  it('refuses what the server refuses, saying why', () => {
    expect(validateName('')).toMatch(/required/);
    expect(validateName('-x')).toMatch(/Start with a letter or a digit/);
    expect(validateName('.hidden')).toMatch(/Start with/);
    expect(validateName('my env')).toMatch(/not space/);
    expect(validateName('a/b')).toMatch(/'\/'/);
    expect(validateName('x'.repeat(65))).toMatch(/64 characters/);
    expect(validateName('café')).toMatch(/'é'/);
    for (const bad of ['-x', 'a b', 'a/b', 'x'.repeat(65), '../etc', 'a;b']) {
      expect(NAME_PATTERN.test(bad)).toBe(false);
      expect(validateName(bad)).not.toBeNull();
    }
  });
});

describe('parsePackageLines', () => {
  it('one spec per line, blank lines and comments dropped', () => {
    expect(
      parsePackageLines(
        'flask==3.0.3\n\n  requests>=2  # http\n# all comment\r\niniconfig\n'
      )
    ).toEqual(['flask==3.0.3', 'requests>=2', 'iniconfig']);
    expect(parsePackageLines('   \n')).toEqual([]);
  });
});

describe('groupByBase', () => {
  it('nests root ▸ env ▸ layer and keeps plain venvs apart', () => {
    const tree = groupByBase(ALL);
    expect(tree.conda.map(n => n.env.name)).toEqual(['base']);
    const rootNode = tree.conda[0];
    expect(rootNode.children.map(n => n.env.name)).toEqual([
      'noipk',
      'py311_ai'
    ]);
    const aiNode = rootNode.children[1];
    // a trailing slash on base still matches
    expect(aiNode.children.map(n => n.env.name)).toEqual(['myexp_env', 'proj']);
    expect(tree.other.map(n => n.env.name)).toEqual(['orphan', 'plain']);
    expect(countNodes(tree.conda) + countNodes(tree.other)).toBe(ALL.length);
  });

  it('puts a Conda env whose root is not listed at top level', () => {
    const lone = env({
      name: 'lone',
      path: '/opt/envs/lone',
      base: '/opt/missing-root'
    });
    expect(groupByBase([lone]).conda.map(n => n.env.name)).toEqual(['lone']);
  });

  it('does not hang on a base cycle', () => {
    const a = env({ name: 'a', path: '/a', base: '/b', kind: 'layered' });
    const b = env({ name: 'b', path: '/b', base: '/a', kind: 'layered' });
    const tree = groupByBase([a, b]);
    expect(countNodes(tree.conda) + countNodes(tree.other)).toBe(2);
  });

  it('handles 200 environments quickly', () => {
    const many = [root];
    for (let i = 0; i < 199; i++) {
      many.push(env({ name: `e${i}`, path: `${ROOT}/envs/e${i}`, base: ROOT }));
    }
    const t0 = performance.now();
    const tree = groupByBase(many);
    const filtered = filterTree(tree.conda, 'e19');
    expect(performance.now() - t0).toBeLessThan(100);
    expect(countNodes(tree.conda)).toBe(200);
    expect(countNodes(filtered)).toBe(1 + 10); // root ▸ e19, e190…e198
  });
});

describe('filter', () => {
  it('matches name, path, kind, kernel and every word', () => {
    expect(matchesFilter(layer, 'myexp')).toBe(true);
    expect(matchesFilter(layer, 'LAYERED')).toBe(true);
    expect(matchesFilter(layer, 'py311_ai myexp')).toBe(true);
    expect(matchesFilter(layer, 'python 3.11')).toBe(true);
    expect(matchesFilter(layer, 'myexp venv')).toBe(false);
    expect(
      matchesFilter(
        env({ name: 'ro', path: '/ro', writable: false }),
        'read-only'
      )
    ).toBe(true);
  });

  it('matches the not-a-kernel entries by path and reason, every word', () => {
    const skipped = {
      path: '/home/ada/.virtualenvs/broken',
      reason: 'dangling interpreter'
    };
    expect(matchesSkipped(skipped, 'BROKEN dangling')).toBe(true);
    expect(matchesSkipped(skipped, 'broken ipykernel')).toBe(false);
    expect(matchesSkipped(skipped, '  ')).toBe(true);
  });

  it('keeps the ancestors of a match', () => {
    const tree = groupByBase(ALL);
    const kept = filterTree(tree.conda, 'proj');
    expect(kept.map(n => n.env.name)).toEqual(['base']);
    expect(kept[0].children.map(n => n.env.name)).toEqual(['py311_ai']);
    expect(kept[0].children[0].children.map(n => n.env.name)).toEqual(['proj']);
    expect(filterTree(tree.conda, '')).toBe(tree.conda);
    expect(filterTree(tree.other, 'nothing-like-this')).toEqual([]);
  });
});

describe('deleteBlockedReason', () => {
  it('shows the server policy reason, or that a job is busy with the env', () => {
    const refused = {
      ...root,
      delete_blocked_reason:
        'conda-base is a Conda environment: use `conda remove`'
    };
    expect(deleteBlockedReason(refused)).toBe(refused.delete_blocked_reason);
    expect(deleteBlockedReason(layer)).toBeNull();
    expect(deleteBlockedReason(layer, true)).toMatch(/A job is working on/);
    expect(deleteBlockedReason(refused, true)).toMatch(/A job is working on/);
  });
});

describe('baseChoices and notKernels', () => {
  it('offers only Conda envs with a Python', () => {
    const noPython = env({ name: 'nopy', path: '/nopy', python_version: null });
    expect(baseChoices([...ALL, noPython]).map(e => e.name)).toEqual([
      'base',
      'noipk',
      'py311_ai'
    ]);
    expect(defaultBase(baseChoices(ALL))?.name).toBe('py311_ai');
    expect(defaultBase([root])?.name).toBe('base');
    expect(defaultBase([])).toBeUndefined();
  });

  it('lists non-kernel envs with their reason, then the skipped ones', () => {
    const skipped = [
      { path: '/home/ada/.virtualenvs/broken', reason: 'dangling interpreter' }
    ];
    expect(notKernels({ environments: ALL, skipped })).toEqual([
      { path: noipk.path, reason: noipk.skipped_reason },
      ...skipped
    ]);
  });
});

describe('orphanEnv', () => {
  const orphanPath = '/home/ada/.virtualenvs/orphan';
  const orphan = {
    path: orphanPath,
    reason: 'base deleted: /home/ada/miniconda3/envs/gone is no longer there',
    id: 'orphan.orphan-1a2b3c',
    delete_blocked_reason: null
  };

  it('makes a deletable env of a skipped layer the server gives an id', () => {
    const listing = { environments: [], skipped: [orphan] };
    const [entry] = notKernels(listing);
    const deletable = orphanEnv(entry);
    expect(deletable).toMatchObject({
      id: orphan.id,
      name: 'orphan',
      path: orphanPath,
      kernels: [],
      delete_blocked_reason: null
    });
    expect(deleteBlockedReason(deletable!)).toBeNull();
    expect(deleteBlockedReason(deletable!, true)).toMatch(
      /A job is working on orphan/
    );
  });

  it("keeps the server's reason when it would refuse the delete", () => {
    const refused = { ...orphan, delete_blocked_reason: 'read-only root /srv' };
    expect(deleteBlockedReason(orphanEnv(refused)!)).toBe(
      'read-only root /srv'
    );
  });

  it('gives nothing to delete for a skipped entry without an id', () => {
    expect(
      orphanEnv({ path: '/x/broken', reason: 'garbled pyvenv.cfg' })
    ).toBeNull();
    // a non-kernel env of the tree has its own delete button: not a second one here
    expect(
      notKernels({ environments: [noipk], skipped: [] }).map(orphanEnv)
    ).toEqual([null]);
  });
});

describe('fieldForError', () => {
  it('maps the server refusals to the field they concern', () => {
    const e = (status: number, message: string, reason = 'bad input') =>
      fieldForError({ status, message, reason });
    expect(
      e(400, "invalid env name 'a b': use 1-64 letters", 'invalid name')
    ).toBe('name');
    expect(
      e(409, 'myexp already exists at /home/ada/.virtualenvs/myexp', 'exists')
    ).toBe('name');
    expect(e(400, "base 'x' is not a known environment", 'unknown base')).toBe(
      'base'
    );
    expect(
      e(
        400,
        "base 'venv-x' is a venv: a layer must be built on a Conda environment",
        'base not a Conda env'
      )
    ).toBe('base');
    expect(e(400, "'base' is required: the id or path", 'bad input')).toBe(
      'base'
    );
    expect(
      e(
        400,
        "packages: '--index-url' is an installer option",
        'installer option'
      )
    ).toBe('packages');
    expect(
      e(400, "packages: 'x y' is not a PEP 508 requirement", 'not PEP 508')
    ).toBe('packages');
    expect(
      e(
        400,
        "requirements line 3: '-e .' is an installer option",
        'installer option'
      )
    ).toBe('requirements');
    expect(
      e(400, "'display_name' must be a non-empty string", 'bad input')
    ).toBe('display_name');
    expect(e(400, "'inherit' must be true or false", 'bad input')).toBe(
      'inherit'
    );
    expect(e(403, 'not allowed', 'forbidden')).toBe('form');
  });
});

describe('small helpers', () => {
  it('percent: full only when done, unknown (null) while nothing is measured', () => {
    const job = (state: string, progress: number): IJob => ({
      id: 'j',
      state,
      step: 's',
      progress
    });
    expect(percent(job('running', 0.456))).toBe(45);
    // the server reports 1.0 while it still finishes (files, kernelspec): not done yet
    expect(percent(job('running', 1))).toBe(99);
    expect(percent(job('running', 7))).toBe(99);
    expect(percent(job('running', 0.999))).toBe(99);
    // queued, or running with nothing measured yet: unknown, not "0 %"
    expect(percent(job('queued', 0))).toBeNull();
    expect(percent(job('queued', 0.3))).toBeNull();
    expect(percent(job('running', 0))).toBeNull();
    expect(percent(job('running', -1))).toBeNull();
    expect(percent(job('succeeded', 0.9))).toBe(100);
    // an ended job that did not succeed stays where it stopped
    expect(percent(job('failed', 0.4))).toBe(40);
    expect(percent(job('cancelled', 0))).toBe(0);
  });

  it('notebookKernel prefers the Python kernel', () => {
    const r = { name: 'ir', display_name: 'R', language: 'R' };
    const py = { name: 'py', display_name: 'Python', language: 'python' };
    expect(
      notebookKernel(env({ name: 'm', path: '/m', kernels: [r, py] }))?.name
    ).toBe('py');
    expect(
      notebookKernel(env({ name: 'r', path: '/r', kernels: [r] }))?.name
    ).toBe('ir');
    expect(
      notebookKernel(env({ name: 'n', path: '/n', kernels: [] }))
    ).toBeUndefined();
  });

  it('errorMessage: the message, else the thrown value', () => {
    expect(errorMessage(new Error('network down'))).toBe('network down');
    expect(errorMessage('plain text')).toBe('plain text');
    expect(errorMessage(null)).toBe('null');
  });

  it('filenameFromDisposition', () => {
    expect(
      filenameFromDisposition(
        'attachment; filename="myexp-requirements.txt"',
        'x'
      )
    ).toBe('myexp-requirements.txt');
    expect(
      filenameFromDisposition("attachment; filename*=UTF-8''caf%C3%A9.yml", 'x')
    ).toBe('café.yml');
    expect(filenameFromDisposition(null, 'fallback.txt')).toBe('fallback.txt');
  });
});

describe('JobFollower', () => {
  class FakeSource implements IJobSource {
    states: IJob[] = [];
    log = '';
    calls = 0;
    failNext = 0;
    async getJob(id: string): Promise<IJob> {
      this.calls++;
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('network down');
      }
      return this.states.length > 1 ? this.states.shift()! : this.states[0];
    }
    async getLog(
      id: string,
      offset: number
    ): Promise<{ text: string; next: number }> {
      const bytes = new TextEncoder().encode(this.log);
      const part = bytes.slice(offset, offset + 4);
      return {
        text: new TextDecoder().decode(part),
        next: offset + part.length
      };
    }
  }

  const job = (state: string, progress: number, step = 'installing'): IJob => ({
    id: 'j1',
    state,
    step,
    progress
  });

  it('follows state and log until the job ends, then stops', async () => {
    vi.useFakeTimers();
    const source = new FakeSource();
    source.states = [
      job('queued', 0),
      job('running', 0.5),
      job('succeeded', 1, 'done')
    ];
    source.log = 'line 1\nline 2\n';
    const updates: string[] = [];
    let log = '';
    const follower = new JobFollower(
      source,
      'j1',
      u => {
        updates.push(`${u.job.state}:${percent(u.job)}`);
        log += u.log;
      },
      100
    );
    follower.start();
    await vi.runAllTimersAsync();
    vi.useRealTimers();
    expect(updates).toEqual(['queued:null', 'running:50', 'succeeded:100']);
    expect(log).toBe('line 1\nline 2\n');
    expect(follower.offset).toBe(14);
    expect(follower.stopped).toBe(true);
  });

  it('resumes from an offset and retries after errors', async () => {
    vi.useFakeTimers();
    const source = new FakeSource();
    source.states = [job('running', 0.2), job('failed', 0.2, 'install')];
    source.log = 'abcdefgh';
    source.failNext = 2;
    const errors: unknown[] = [];
    let log = '';
    const follower = new JobFollower(
      source,
      'j1',
      u => (log += u.log),
      50,
      e => errors.push(e)
    );
    follower.offset = 4;
    follower.start();
    await vi.runAllTimersAsync();
    vi.useRealTimers();
    expect(errors).toHaveLength(2);
    expect(log).toBe('efgh');
    expect(follower.job?.state).toBe('failed');
  });

  it('stop() stops polling', async () => {
    vi.useFakeTimers();
    const source = new FakeSource();
    source.states = [job('running', 0.1)];
    const follower = new JobFollower(source, 'j1', () => undefined, 100);
    follower.start();
    await vi.advanceTimersByTimeAsync(350);
    follower.stop();
    const calls = source.calls;
    await vi.advanceTimersByTimeAsync(1000);
    vi.useRealTimers();
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(source.calls).toBe(calls);
  });
});

describe('reasonCommands', () => {
  it('takes the command a "Not a kernel" reason says to run out of its explanation, whole', () => {
    const command =
      '/home/ada/miniconda3/envs/a_very_long_environment_name/bin/python -m pip install ipykernel';
    expect(
      reasonCommands(
        `no ipykernel: run \`${command}\` (or conda install ipykernel), or create a layer on it with inherit`
      )
    ).toEqual({
      text: 'no ipykernel: run the command below (or conda install ipykernel), or create a layer on it with inherit',
      commands: [command]
    });
  });

  it('numbers several commands and leaves a reason without one as it is', () => {
    expect(reasonCommands('run `a -x` then `b -y`')).toEqual({
      text: 'run command 1 below then command 2 below',
      commands: ['a -x', 'b -y']
    });
    expect(reasonCommands('broken interpreter: gone; recreate it')).toEqual({
      text: 'broken interpreter: gone; recreate it',
      commands: []
    });
    expect(reasonCommands('an odd ` quote')).toEqual({
      text: 'an odd ` quote',
      commands: []
    });
  });
});
