/** Listing entries and policies for the unit tests: every field the server sends, overridden per test. */
import type { IEnvironment, IPolicy } from '../src/model';

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

/** The base env of a Conda install at root. */
export function condaBase(root: string): IEnvironment {
  return env({
    id: 'conda-base',
    name: 'base',
    path: root,
    kind: 'conda-base'
  });
}

/** A named env of the Conda install at root (root/envs/name). */
export function condaEnv(
  root: string,
  name: string,
  partial: Partial<IEnvironment> = {}
): IEnvironment {
  return env({
    id: `conda-${name}`,
    name,
    path: `${root}/envs/${name}`,
    base: root,
    ...partial
  });
}

/** GET layenv/policy for a user whom no rule limits. */
export function policy(partial: Partial<IPolicy> = {}): IPolicy {
  return {
    user: 'alice',
    can_create: true,
    can_delete: true,
    create_refused: null,
    roots: [],
    allowed_bases: ['*'],
    max_envs_per_user: 0,
    envs_owned: 3,
    max_jobs: 0,
    active_jobs: 0,
    packages: {
      allowed: [],
      denied: [],
      direct_references: false,
      installer_options: []
    },
    index: {
      index_url: null,
      extra_index_urls: [],
      find_links: [],
      offline: false
    },
    ...partial
  };
}
