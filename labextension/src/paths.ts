/**
 * Long paths in the panel's narrow lines: cut at a "/" with "…" first, so the end a person recognises (the env's
 * folder and its parents) reads whole; only a last name wider than the line itself is cut, in its middle.
 */

/** The path, then "…/" and ever shorter ends of it from a "/", down to its last name (a trailing "/" kept). */
export function pathTails(path: string): string[] {
  const trimmed = path.replace(/\/+$/, '');
  const trailing = path.slice(trimmed.length);
  const parts = trimmed.split('/');
  const tails = [path];
  // an absolute path's first part is the empty one before its "/": dropping it alone would save nothing
  for (let i = parts[0] === '' ? 2 : 1; i < parts.length; i++) {
    tails.push(`…/${parts.slice(i).join('/')}${trailing}`);
  }
  return tails;
}

/**
 * The longest of pathTails(path) that fits; when not even the last name after "…/" does, that name cut in its
 * middle (cutName).
 */
export function fitPath(path: string, fits: (text: string) => boolean): string {
  const tails = pathTails(path);
  return tails.find(fits) ?? cutName(tails[tails.length - 1], fits);
}

/**
 * A last name wider than its line (`…/spectroscopy_campaign_…_detector_v2`): its start and its end with "…"
 * between, as much of both as fits (its start is what tells it from its neighbours, its end a version), at least
 * a character of each.
 */
export function cutName(tail: string, fits: (text: string) => boolean): string {
  const [, prefix, name, trailing] = /^(…\/)?(.*?)(\/*)$/.exec(tail) ?? [];
  if (!name || name.length < 3) {
    return tail;
  }
  const cut = (keep: number) =>
    `${prefix ?? ''}${name.slice(0, Math.ceil(keep / 2))}…${name.slice(name.length - Math.floor(keep / 2))}${trailing}`;
  // the most characters kept that fit: widths grow with what is kept
  let lo = 2;
  let hi = name.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(cut(mid))) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return cut(lo);
}
