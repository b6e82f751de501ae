/**
 * What the sidebar's Storage view shows: everything GET usage gives, or, while the environment list is filtered,
 * the environments the tree shows and the places holding them, so that the two agree and the total says which.
 */
import { formatBytes, IUsage, IUsageEnv, IUsageRoot, plural } from './model';

export interface IUsageShown {
  /** Largest first, as the server sorts them. */
  environments: IUsageEnv[];
  /** Each with the place's own totals (every environment there, not only the filtered ones). */
  roots: IUsageRoot[];
  /** "12.0 MiB in 3 environments", or "4.0 MiB in 1 of 3 environments, those the filter shows". */
  total: string;
}

/** `shown`: the paths of the environments the filtered tree shows; null when no filter is set. */
export function usageShown(
  usage: IUsage,
  shown: ReadonlySet<string> | null
): IUsageShown {
  const all = plural(usage.environments.length, 'environment');
  if (shown === null) {
    const measuring = usage.measuring
      ? ` (${usage.measuring} not measured yet)`
      : '';
    return {
      environments: usage.environments,
      roots: usage.roots,
      total: `${formatBytes(usage.total_bytes)} in ${all}${measuring}`
    };
  }
  const environments = usage.environments.filter(env => shown.has(env.path));
  const places = new Set(environments.map(env => env.root));
  const bytes = environments.reduce(
    (sum, env) => sum + (env.size_bytes ?? 0),
    0
  );
  const unmeasured = environments.filter(env => env.size_bytes === null).length;
  const measuring = unmeasured ? ` (${unmeasured} not measured yet)` : '';
  return {
    environments,
    roots: usage.roots.filter(root => places.has(root.root)),
    total: `${formatBytes(bytes)} in ${environments.length} of ${all}, those the filter shows${measuring}`
  };
}
