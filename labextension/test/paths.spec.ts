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
    // from the room of its last name ("…/miniconda3"); less cuts that name (cutName)
    for (let room = 12; room < PATH.length + 2; room++) {
      const shown = fitPath(PATH, text => text.length <= room);
      expect(shown === PATH || PATH.endsWith(shown.slice(1))).toBe(true);
      expect(shown === PATH || shown.startsWith('…/')).toBe(true);
    }
  });

  it('shows the last name whole when it alone fits', () => {
    expect(fitPath(PATH, text => text.length <= 12)).toBe('…/miniconda3');
  });

  it('takes a trailing "/", the root and a bare name as they are', () => {
    expect(pathTails('/srv/envs/')).toEqual(['/srv/envs/', '…/envs/']);
    expect(pathTails('/')).toEqual(['/']);
    expect(pathTails('envs')).toEqual(['envs']);
    expect(fitPath('/srv/envs/', text => text.length <= 7)).toBe('…/envs/');
  });
});

describe('cutName: a last name wider than its line keeps its start and its end', () => {
  const LONG =
    '/home/ada/.virtualenvs/spectroscopy_campaign_2026_calibration_with_the_new_detector_v2';
  it('cuts it in its middle, as much of both ends as fits', () => {
    const fits = (text: string) => text.length <= 20;
    expect(fitPath(LONG, fits)).toBe('…/spectrosc…ector_v2');
    for (let room = 6; room < 40; room++) {
      const shown = fitPath(LONG, text => text.length <= room);
      expect(shown.length).toBeLessThanOrEqual(room);
      const [head, tail] = shown.slice(2).split('…');
      expect(shown.startsWith('…/s')).toBe(true);
      expect(LONG.includes(`/${head}`)).toBe(true);
      expect(LONG.endsWith(tail) && tail.length >= 1).toBe(true);
    }
  });

  it('keeps a character of each end when nothing fits, and a bare name or trailing "/" as it is', () => {
    expect(fitPath(LONG, () => false)).toBe('…/s…2');
    expect(fitPath('/srv/spectroscopy/', text => text.length <= 10)).toBe(
      '…/spe…opy/'
    );
    expect(fitPath('spectroscopy', text => text.length <= 7)).toBe('spe…opy');
    expect(fitPath('/', () => false)).toBe('/');
  });
});
