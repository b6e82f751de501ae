import { describe, expect, it } from 'vitest';

import {
  closestBases,
  fileInherits,
  fileModeField,
  unmetText
} from '../src/envfile';

const REPLY = {
  message:
    'environment.yml: no known Conda environment satisfies its Conda dependencies. Closest: …',
  reason: 'no matching base',
  bases: [
    {
      id: 'conda-py311_ai',
      path: '/home/ada/miniconda3/envs/py311_ai',
      extra_packages: 12,
      unmet: [
        { spec: 'python=2.7', found: '3.11.9=h0_0_cpython from conda-forge' },
        { spec: 'conda-forge::pytorch>=2', found: null }
      ]
    },
    { id: 'broken', unmet: [{ nospec: 1 }] },
    null
  ]
};

describe('environment.yml refusals', () => {
  it('reads the closest bases of a 422 and ignores malformed entries', () => {
    const bases = closestBases(REPLY);
    expect(bases.map(b => b.id)).toEqual(['conda-py311_ai']);
    expect(bases[0].unmet.map(unmetText)).toEqual([
      'python=2.7 (this base has 3.11.9=h0_0_cpython from conda-forge)',
      'conda-forge::pytorch>=2 (missing)'
    ]);
    expect(closestBases({ message: 'x' })).toEqual([]);
    expect(closestBases({ bases: 'nope' })).toEqual([]);
  });

  it('shows refusals about the base, the packages or the file next to the file', () => {
    const field = (status: number, message: string, reason: string) =>
      fileModeField({ status, message, reason });
    expect(field(422, REPLY.message, REPLY.reason)).toBe('environment_yml');
    expect(
      field(
        400,
        "environment.yml: dependency 1 'x[' is not a Conda match spec",
        'not a match spec'
      )
    ).toBe('environment_yml');
    expect(
      field(
        403,
        "the package 'evil' may not be installed on this server",
        'denied_packages'
      )
    ).toBe('environment_yml');
    expect(field(400, "invalid env name '../x'", 'invalid name')).toBe('name');
    expect(
      field(409, '/home/ada/.virtualenvs/x exists already', 'exists')
    ).toBe('name');
  });
});

describe('fileInherits: the form follows a file that says inherit: false', () => {
  it('reads the top-level key as export writes it', () => {
    expect(
      fileInherits('name: x\ninherit: false\ndependencies: [python]\n')
    ).toBe(false);
    expect(fileInherits('name: x\r\ninherit: False  # closed\r\n')).toBe(false);
  });
  it('inherits otherwise, whatever a pip entry or an indented key says', () => {
    expect(fileInherits('name: x\ndependencies: [python]\n')).toBe(true);
    expect(fileInherits('name: x\ninherit: true\n')).toBe(true);
    expect(
      fileInherits('dependencies:\n  - pip:\n    - inherit: false\n')
    ).toBe(true);
  });
});
