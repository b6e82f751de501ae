/**
 * Long paths in the panel's narrow lines: cut at a "/" with "…" first, so the end a person recognises (the env's
 * folder and its parents) reads whole, never a name cut in two.
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

/** The longest of pathTails(path) that fits; the last name after "…/" when none does. */
export function fitPath(path: string, fits: (text: string) => boolean): string {
  const tails = pathTails(path);
  return tails.find(fits) ?? tails[tails.length - 1];
}
