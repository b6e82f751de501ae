import { describe, expect, it } from 'vitest';

import { fitPath, pathTails } from '../src/paths';

const PATH = '/tmp/pytest-of-root/pytest-1030/ui0/home/miniconda3';

describe('fitPath: a long path is cut at a "/", its end kept', () => {
  it('lists the whole path, then "…" and ever shorter ends from a "/"', () => {
    expect(pathTails(PATH)).toEqual([
      PATH,
      '…/pytest-of-root/pytest-1030/ui0/home/miniconda3',
      '…/pytest-1030/ui0/home/miniconda3',
      '…/ui0/home/miniconda3',
      '…/home/miniconda3',
      '…/miniconda3'
    ]);
  });

  it('keeps a path that fits whole', () => {
    expect(fitPath(PATH, () => true)).toBe(PATH);
  });

  it('keeps the longest end that fits, never a part of a name', () => {
    // room for 24 characters: "…/ui0/home/miniconda3" (21) fits, "…/pytest-1030/ui0/home/miniconda3" does not
    const fits = (text: string) => text.length <= 24;
    expect(fitPath(PATH, fits)).toBe('…/ui0/home/miniconda3');
    for (let room = 1; room < PATH.length + 2; room++) {
      const shown = fitPath(PATH, text => text.length <= room);
      expect(shown === PATH || PATH.endsWith(shown.slice(1))).toBe(true);
      expect(shown === PATH || shown.startsWith('…/')).toBe(true);
    }
  });

  it('shows the last name when nothing shorter fits (CSS then cuts it at its start)', () => {
    expect(fitPath(PATH, () => false)).toBe('…/miniconda3');
  });

  it('takes a trailing "/", the root and a bare name as they are', () => {
    expect(pathTails('/srv/envs/')).toEqual(['/srv/envs/', '…/envs/']);
    expect(pathTails('/')).toEqual(['/']);
    expect(pathTails('envs')).toEqual(['envs']);
    expect(fitPath('/srv/envs/', text => text.length <= 7)).toBe('…/envs/');
  });
});
