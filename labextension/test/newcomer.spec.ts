import { describe, expect, it } from 'vitest';

import {
  existingEnv,
  nameTakenMessage,
  plural,
  splitError
} from '../src/model';
import { env } from './fixtures';

const HOME = '/home/ada';
const base = env({
  id: 'conda-py311_ai',
  name: 'py311_ai',
  path: `${HOME}/miniconda3/envs/py311_ai`
});
const layer = env({
  id: 'conda-py311_ai.proj',
  name: 'proj',
  kind: 'layered',
  path: `${HOME}/.virtualenvs/proj`,
  base: base.path
});
const nested = env({
  id: 'conda-py311_ai.inner',
  name: 'inner',
  kind: 'layered',
  path: `${base.path}/inner`,
  base: base.path
});
const envs = [base, layer, nested];

describe('existingEnv: a taken name is flagged as it is typed', () => {
  it('finds the env at <root>/<name>', () => {
    expect(existingEnv('proj', envs, [`${HOME}/.virtualenvs/`])).toBe(layer);
  });
  it('finds a layer nested in the chosen base', () => {
    expect(
      existingEnv('inner', envs, [`${HOME}/.virtualenvs`, base.path])
    ).toBe(nested);
  });
  it('does not flag the same name in another place, nor an empty name', () => {
    expect(existingEnv('proj', envs, ['/srv/groups/physics'])).toBeUndefined();
    expect(existingEnv('', envs, [`${HOME}/.virtualenvs`])).toBeUndefined();
    expect(existingEnv('pro', envs, [`${HOME}/.virtualenvs`])).toBeUndefined();
  });
  it('says what to do', () => {
    expect(nameTakenMessage(layer)).toBe(
      `An environment named "proj" exists already (${HOME}/.virtualenvs/proj): pick another name, or delete it first.`
    );
  });
});

describe('plural', () => {
  it('says "1 environment" and "2 environments"', () => {
    expect(plural(1, 'environment')).toBe('1 environment');
    expect(plural(0, 'environment')).toBe('0 environments');
    expect(plural(2, 'environment')).toBe('2 environments');
  });
});

describe('splitError: the first line, the rest under "Show log"', () => {
  it('splits a failed install', () => {
    const error =
      'install failed (uv exited with 1): error: No solution found\nUsing Python 3.11\nerror: No solution found\ncause: x';
    expect(splitError(error)).toEqual({
      first: 'install failed (uv exited with 1): error: No solution found',
      rest: 'Using Python 3.11\nerror: No solution found\ncause: x'
    });
  });
  it('keeps a one-line error whole', () => {
    expect(splitError(' disk full \n')).toEqual({
      first: 'disk full',
      rest: ''
    });
  });
});
