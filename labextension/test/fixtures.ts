/** Listing entries for the unit tests: an env with every field the server sends, overridden per test. */
import type { IEnvironment } from '../src/model';

export function env(
  partial: Partial<IEnvironment> & { name: string; path: string }
): IEnvironment {
  return {
    id: partial.id ?? partial.name,
    kind: 'conda-env',
    base: null,
    python_version: '3.11.7',
    kernels: [
      {
        name: `k-${partial.name}`,
        display_name: `Python 3.11 (${partial.name})`,
        language: 'python'
      }
    ],
    writable: true,
    scope: 'user',
    skipped_reason: null,
    delete_blocked_reason: null,
    ...partial
  };
}
