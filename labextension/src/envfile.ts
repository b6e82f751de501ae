/**
 * Creating from an environment.yml: which form field a refusal concerns, and what the server said about the
 * bases closest to a file that no base satisfies (the 422's `bases`), in words for the form.
 */
import { CreateField, fieldForError, IApiError } from './model';

/** Files offered when picking or uploading an environment.yml. */
export const ENV_FILE_PATTERN = /\.ya?ml$/i;

export interface IUnmetSpec {
  spec: string;
  /** What the base has instead ("3.11.9=h0_0 from conda-forge"), or null when it lacks the package. */
  found: string | null;
}

export interface IClosestBase {
  id: string;
  path: string;
  extra_packages: number;
  unmet: IUnmetSpec[];
}

/** The closest bases a 422 of POST environments lists; anything else in the details is ignored. */
export function closestBases(details: Record<string, unknown>): IClosestBase[] {
  const bases = details.bases;
  if (!Array.isArray(bases)) {
    return [];
  }
  return bases.filter(
    (b): b is IClosestBase =>
      !!b &&
      typeof b.id === 'string' &&
      Array.isArray(b.unmet) &&
      b.unmet.every(
        (u: unknown) => !!u && typeof (u as IUnmetSpec).spec === 'string'
      )
  );
}

/** One unmet spec as a person reads it: "python=2.7 (this base has 3.11.9)" or "pytorch>=2 (missing)". */
export function unmetText(unmet: IUnmetSpec): string {
  return unmet.found
    ? `${unmet.spec} (this base has ${unmet.found})`
    : `${unmet.spec} (missing)`;
}

/**
 * Which field of the environment.yml form a refusal concerns: the file for what is about the base, the packages
 * or the requirements (its Conda part picks the base, its pip section is the packages) or names the file.
 */
export function fileModeField(error: IApiError): CreateField {
  const field = fieldForError(error);
  return field === 'base' ||
    field === 'packages' ||
    field === 'requirements' ||
    /^environment\.yml\b/.test(error.message || '')
    ? 'environment_yml'
    : field;
}

/**
 * Whether a layer made from this file inherits its base's packages: not when the file says `inherit: false` at its
 * top level (export writes it for a layer that does not inherit; the server honours it whatever the form sends).
 */
export function fileInherits(text: string): boolean {
  return !/^inherit:[ \t]*false[ \t]*(#.*)?\r?$/im.test(text);
}
