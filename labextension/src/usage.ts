/**
 * What the sidebar's Storage view shows: everything GET usage gives, or, while the environment list is filtered,
 * the environments the tree shows and the places holding them, so that the two agree and the total says which.
 */
import {
  IUsage,
  IUsageEnv,
  IUsageRoot,
  sizeIn,
  storageGroupLine
} from './model';

/** A place (a root, a Conda install, a folder) with the line Storage shows under its path. */
export interface IShownRoot extends IUsageRoot {
  /** "8.0 MiB in 2 environments · owned by ada"; filtered, "4.0 MiB in 1 of 2 environments · owned by ada". */
  line: string;
}

export interface IUsageShown {
  /** Largest first, as the server sorts them. */
  environments: IUsageEnv[];
  /**
   * Filtered, each place's figures are those of its environments the filter shows (its line says "n of N"), so
   * that the places add up to the total above them.
   */
  roots: IShownRoot[];
  /** "12.0 MiB in 3 environments", or "4.0 MiB in 1 of 3 environments, those the filter shows". */
  total: string;
}

/** `shown`: the paths of the environments the filtered tree shows; null when no filter is set. */
export function usageShown(
  usage: IUsage,
  shown: ReadonlySet<string> | null
): IUsageShown {
  if (shown === null) {
    const measuring = usage.measuring
      ? ` (${usage.measuring} not measured yet)`
      : '';
    return {
      environments: usage.environments,
      roots: usage.roots.map(root => ({
        ...root,
        line: storageGroupLine(root)
      })),
      total: `${sizeIn(usage.total_bytes, usage.environments.length)}${measuring}`
    };
  }
  const environments = usage.environments.filter(env => shown.has(env.path));
  const unmeasured = environments.filter(env => env.size_bytes === null).length;
  const measuring = unmeasured ? ` (${unmeasured} not measured yet)` : '';
  const roots = usage.roots.flatMap(root => {
    const here = environments.filter(env => env.root === root.root);
    if (!here.length) {
      return [];
    }
    const part = { ...root, ...totals(here), owners: owners(here) };
    return [{ ...part, line: storageGroupLine(part, root.environments) }];
  });
  return {
    environments,
    roots,
    total: `${sizeIn(totals(environments).size_bytes, environments.length, usage.environments.length)}, those the filter shows${measuring}`
  };
}

/** The bytes measured so far and the count of some environments. */
function totals(envs: IUsageEnv[]): {
  size_bytes: number;
  environments: number;
} {
  return {
    size_bytes: envs.reduce((sum, env) => sum + (env.size_bytes ?? 0), 0),
    environments: envs.length
  };
}

/** Some environments' owners with their shares, largest first (as the server sorts a place's owners). */
function owners(envs: IUsageEnv[]): IUsageRoot['owners'] {
  const byOwner = new Map<string | null, IUsageRoot['owners'][number]>();
  for (const env of envs) {
    const share = byOwner.get(env.owner) ?? {
      owner: env.owner,
      size_bytes: 0,
      environments: 0,
      last_used: null
    };
    share.size_bytes += env.size_bytes ?? 0;
    share.environments += 1;
    if (env.last_used && (share.last_used ?? '') < env.last_used) {
      share.last_used = env.last_used;
    }
    byOwner.set(env.owner, share);
  }
  return [...byOwner.values()].sort((a, b) => b.size_bytes - a.size_bytes);
}
