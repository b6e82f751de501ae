/**
 * The panel's model: plain data and pure functions, no JupyterLab imports (unit tested with Vitest).
 *
 * Shapes follow the REST contract of DESIGN.md (`<base_url>/layenv/…`).
 */

export type EnvKind = 'conda-base' | 'conda-env' | 'venv' | 'layered';
export type Scope = 'user' | 'group' | 'system';

export interface IKernelInfo {
  name: string;
  display_name: string;
  language: string;
}

export interface IEnvironment {
  id: string;
  name: string;
  path: string;
  kind: EnvKind | string;
  base: string | null;
  python_version: string | null;
  kernels: IKernelInfo[];
  writable: boolean;
  scope: Scope | string;
  skipped_reason: string | null;
  /** Why the server would refuse to delete this env (its policy, in its words); null: it may be deleted. */
  delete_blocked_reason: string | null;
  /**
   * Why the server would refuse a layer on this env (not a Conda env, no working interpreter, or
   * LayenvPolicy.allowed_bases, in its words); null: it may be a base. Absent from older servers: allowed.
   */
  layer_blocked_reason?: string | null;
  /** The directory's owner (user name, or uid as a string); absent from servers before the shared roots. */
  owner?: string | null;
  /** The directory's group (group name, or gid as a string). */
  group?: string | null;
  /** Who created it with jupyter_layenv (from its layenv.json), else null. */
  creator?: string | null;
  /** A layer's copies of base packages (it shadows them); absent from older servers. */
  shadowed?: string[];
  /** The bytes only this env holds (hard links counted once); null until the server has measured it. */
  size_bytes?: number | null;
  /** When a kernel of it last started (ISO, UTC), and for whom; null: never. */
  last_used?: string | null;
  last_used_by?: string | null;
}

/** GET usage: what the envs hold, per root and owner, largest first. */
export interface IUsage {
  user: string | null;
  total_bytes: number;
  /** Envs whose size the server has not measured yet (it never waits for them). */
  measuring: number;
  roots: IUsageRoot[];
  environments: IUsageEnv[];
}

/** How the server came to look at a storage group's place (jupyter_layenv/usage/groups.py): 'found' is through an
 * env listed one by one, e.g. in ~/.conda/environments.txt. */
export type StorageGroupSource =
  | 'create-root'
  | 'system-root'
  | 'group-root'
  | 'configured'
  | 'default'
  | 'condarc'
  | 'server-prefix'
  | 'found';

export interface IUsageRoot {
  /** The group's path: a root, a Conda install, or the folder an env sits in. */
  root: string;
  /** What the group is. */
  kind: 'conda-install' | 'folder';
  source: StorageGroupSource;
  scope: string;
  size_bytes: number;
  shared_bytes: number;
  environments: number;
  owners: {
    owner: string | null;
    size_bytes: number;
    environments: number;
    last_used: string | null;
  }[];
}

export interface IUsageEnv {
  id: string;
  name: string;
  path: string;
  owner: string | null;
  root: string;
  size_bytes: number | null;
  last_used: string | null;
  last_used_by: string | null;
}

/** POST clean: what was (or, in a dry run, would be) removed and kept, and the bytes freed. */
export interface ICleanReport {
  dry_run: boolean;
  unused_days: number;
  removed: {
    id: string;
    path: string;
    size_bytes: number;
    last_used: string | null;
  }[];
  kept: { id: string; path: string; reason: string }[];
  caches: {
    cache: string;
    entries: number;
    bytes: number;
    skipped: string | null;
  }[];
  bytes_freed: number;
}

/** Bytes as people read them (binary units, as du -h); null: not measured yet. */
export function formatBytes(count: number | null | undefined): string {
  if (count === null || count === undefined) {
    return 'size not measured yet';
  }
  if (count < 1024) {
    return `${count} bytes`;
  }
  let size = count / 1024;
  for (const unit of ['KiB', 'MiB', 'GiB']) {
    if (size < 1024) {
      return `${size.toFixed(1)} ${unit}`;
    }
    size /= 1024;
  }
  return `${size.toFixed(1)} TiB`;
}

/** "last kernel 2026-12-06 (ada)", or "no kernel started yet". */
export function lastUsedText(
  when: string | null | undefined,
  by?: string | null
): string {
  if (!when) {
    return 'no kernel started yet';
  }
  return `last kernel ${when.slice(0, 10)}${by ? ` (${by})` : ''}`;
}

/** One line saying what a cleanup did or would do. */
export function cleanSummary(report: ICleanReport): string {
  const count = report.removed.length;
  const envs = plural(count, 'environment');
  const bytes = formatBytes(report.bytes_freed);
  if (report.dry_run) {
    return count
      ? `Would remove ${envs} unused for ${report.unused_days} days and free ${bytes}.`
      : `Nothing unused for ${report.unused_days} days to remove; pruning the package caches would free ${bytes}.`;
  }
  return `Removed ${envs}; freed ${bytes}.`;
}

export interface IPackage {
  name: string;
  version: string;
}

/** A layer package shadowing the base's: named for this layer, a same-version copy, or pulled in by another. */
export interface IShadowed {
  name: string;
  layer_version: string;
  base_version: string;
  reason?: 'requested' | 'duplicate' | 'dependency' | string;
}

export interface IEnvironmentDetails extends IEnvironment {
  packages: {
    layer: IPackage[];
    inherited: IPackage[];
    shadowed: IShadowed[];
  };
}

/** A dry run's answer: nothing written. */
export interface IPlan {
  install: IPackage[];
  remove: IPackage[];
  shadow: {
    name: string;
    version: string;
    base_version: string;
    reason: string;
  }[];
  kept_from_base: IPackage[];
}

export interface IRevision {
  revision: number;
  created: string;
  user: string;
  request: {
    action?: string;
    add?: string[];
    remove?: string[];
    revision?: number;
  };
  lock: { name: string; version: string; hashes?: string[] }[];
  base_fingerprint: string | null;
  base_changed: boolean;
}

/**
 * The installer's own tooling, which `pip freeze`, the revisions' locks and requirements.txt leave out (the
 * server's jupyter_layenv/inventory.py TOOLING): a layer's pip is listed, but not counted in its revisions.
 */
const TOOLING = new Set(['pip', 'setuptools', 'wheel', 'distribute']);

export function isTooling(name: string): boolean {
  return TOOLING.has(name.toLowerCase().replace(/[-_.]+/g, '-'));
}

/** GET kernel-names/NAME: the listed kernel a saved name starts, and the env it runs in (null: not an env's). */
export interface IKernelName {
  name: string;
  kernel: string;
  display_name: string;
  env: string | null;
}

/** GET environments/<id>/revisions: newest first; with none, why (a Conda env keeps none, a layer made by hand). */
export interface IRevisions {
  revisions: IRevision[];
  /** Why there are none, in the server's words; null when there are some; absent from older servers. */
  none_reason?: string | null;
}

/** How many packages a revision's lock holds: "(1 package)", "(3 packages)". */
/**
 * What restoring a revision does to the layer, for its confirmation: what goes, what comes, what changes version
 * (names compared as PEP 503 does; the installer's tooling left out, as the revisions leave it out).
 */
export function restoreChanges(
  current: IPackage[],
  lock: IRevision['lock']
): string {
  const key = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');
  const now = new Map(
    current.filter(p => !isTooling(p.name)).map(p => [key(p.name), p])
  );
  const then = new Map(lock.map(p => [key(p.name), p]));
  const removes = [...now].filter(([k]) => !then.has(k)).map(([, p]) => p);
  const installs = [...then].filter(([k]) => !now.has(k)).map(([, p]) => p);
  const changes = [...then]
    .filter(([k, p]) => now.has(k) && now.get(k)?.version !== p.version)
    .map(([k, p]) => `${p.name} ${now.get(k)?.version} → ${p.version}`);
  const parts = [
    removes.length
      ? `removes ${removes.map(p => `${p.name} ${p.version}`).join(', ')}`
      : '',
    installs.length
      ? `installs ${installs.map(p => `${p.name} ${p.version}`).join(', ')}`
      : '',
    changes.length ? `changes ${changes.join(', ')}` : ''
  ].filter(Boolean);
  return parts.length
    ? parts.join('; ')
    : 'no package changes: the layer has these versions already';
}

export function revisionPackages(rev: Pick<IRevision, 'lock'>): string {
  return `(${plural(rev.lock.length, 'package')})`;
}

/** How a Storage group that is a root came to be one (its `source`), in the panel's words. */
const ROOT_WORDS: Partial<Record<StorageGroupSource, string>> = {
  'create-root': 'root where new environments go',
  'system-root': 'system root',
  'group-root': 'group root',
  configured: 'configured root'
};

/** What a Storage group is: a root only when the server is configured to look there (or creates there). */
export function storageGroupLabel(root: IUsageRoot): string {
  const conda = root.kind === 'conda-install';
  const asRoot = ROOT_WORDS[root.source];
  if (asRoot) {
    return conda
      ? `Conda install · ${asRoot}`
      : asRoot[0].toUpperCase() + asRoot.slice(1);
  }
  if (root.source === 'default') {
    return `${conda ? 'Conda install' : 'Folder'} searched by default (not configured)`;
  }
  if (conda) {
    return 'Conda install found through one of its environments (not configured)';
  }
  if (root.source === 'condarc') {
    return "Folder of Conda envs named in a .condarc's envs_dirs (not a root)";
  }
  return root.source === 'server-prefix'
    ? "Folder of the server's own environment (not a root)"
    : 'Folder of environments found one by one (not a root)';
}

/**
 * The one wording of a size and a count: "12.0 MiB in 3 environments"; with `of` (a filter shows some of them)
 * "4.0 MiB in 1 of 3 environments".
 */
export function sizeIn(
  bytes: number | null,
  count: number,
  of?: number
): string {
  const envs =
    of === undefined
      ? plural(count, 'environment')
      : `${count} of ${plural(of, 'environment')}`;
  return `${formatBytes(bytes)} in ${envs}`;
}

/**
 * A storage group's size and count (`of`: the group's whole count, when the figures are of some of its
 * environments), then whose it is: "owned by root" for one owner, "owners: alice 6.0 MiB
 * (3 environments), bob …" for several. A bare "root: 8 MiB" under a group label read as a place called root.
 */
export function storageGroupLine(group: IUsageRoot, of?: number): string {
  const total = sizeIn(group.size_bytes, group.environments, of);
  if (group.owners.length === 0) {
    return total;
  }
  if (group.owners.length === 1) {
    const owner = group.owners[0].owner;
    return `${total} · ${owner === null ? 'owner unknown' : `owned by ${owner}`}`;
  }
  const shares = group.owners.map(
    o =>
      `${o.owner ?? 'unknown owner'} ${formatBytes(o.size_bytes)} (${plural(o.environments, 'environment')})`
  );
  return `${total} · owners: ${shares.join(', ')}`;
}

/** When a revision was made, to the minute: "2026-12-07 07:15 UTC" (the server's ISO time in the tooltip). */
export function revisionTime(created: string): string {
  const m =
    /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(?::[\d.]+)?(Z|[+-]\d\d:?\d\d)?$/.exec(
      created
    );
  if (!m) {
    return created;
  }
  const zone = !m[3] ? '' : /^(Z|[+-]00:?00)$/.test(m[3]) ? ' UTC' : ` ${m[3]}`;
  return `${m[1]} ${m[2]}${zone}`;
}

/** What a revision's request did, in a few words. */
export function revisionSummary(rev: IRevision): string {
  const request = rev.request ?? {};
  if (request.action === 'restore') {
    return `restore of revision ${request.revision}`;
  }
  const parts = [
    ...(request.add ?? []).map(spec => `+${spec}`),
    ...(request.remove ?? []).map(name => `-${name}`)
  ];
  return `${request.action ?? 'change'} ${parts.join(' ')}`.trim();
}

/** Package specs typed in one field, separated by spaces or new lines (a comma belongs to a spec: `a>=1,<2`). */
export function splitSpecs(text: string): string[] {
  return text
    .split(/\s+/)
    .map(s => s.trim())
    .filter(s => s.length > 0);
}

export interface ISkipped {
  path: string;
  reason: string;
  /** Set when the server may delete it anyway (a layer whose base was deleted): its id for DELETE. */
  id?: string;
  /** Why the server would refuse that delete (its words); null: it may be deleted. */
  delete_blocked_reason?: string | null;
}

export interface IListing {
  environments: IEnvironment[];
  skipped: ISkipped[];
}

export type JobState =
  'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface IJob {
  id: string;
  state: JobState | string;
  step: string;
  progress: number;
  name?: string;
  path?: string;
  base?: string;
  created?: number;
  finished?: number | null;
  environment?: IEnvironment | null;
  error?: string | null;
  /** What the job does: `create` (absent from older servers), or a layer's `change` or `restore`. */
  action?: 'create' | 'change' | 'restore' | string;
}

/** What a job does, as a heading: "Creating X", "Changing the packages of X", "Restoring X". */
export function jobDoing(job: IJob, fallback = 'environment'): string {
  const name = job.name ?? fallback;
  if (job.action === 'change') {
    return `Changing the packages of ${name}`;
  }
  if (job.action === 'restore') {
    return `Restoring ${name}`;
  }
  return `Creating ${name}`;
}

/** What a job does, in a word or two: several jobs of one env in the sidebar read apart by it. */
function jobKind(job: IJob): string {
  if (job.action === 'change') {
    return 'package change';
  }
  return job.action === 'restore' ? 'restore' : 'create';
}

/**
 * A sidebar job row's line: "package change · install · 40 %", "create · queued" while nothing is measured, or
 * once it ended "restore · done".
 */
export function jobLine(job: IJob, pct: number | null): string {
  return `${jobKind(job)} · ${isFinal(job) || pct === null ? job.step : `${job.step} · ${pct} %`}`;
}

/** The error JSON of the API, with the HTTP status. */
export interface IApiError {
  status: number;
  message: string;
  reason: string;
}

const BASE_KINDS: ReadonlyArray<string> = ['conda-base', 'conda-env'];

// ------------------------------------------------------------------------------------------------ names

/** The server's rule for env names (policy.NAME_PATTERN), anchored. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Why a name would be refused, or null when it is fine. Said the way a person can act on. */
export function validateName(name: string): string | null {
  if (name.length === 0) {
    return 'A name is required.';
  }
  if (name.length > 64) {
    return `At most 64 characters (this one has ${name.length}).`;
  }
  if (!/^[A-Za-z0-9]/.test(name)) {
    return 'Start with a letter or a digit.';
  }
  if (!NAME_PATTERN.test(name)) {
    const bad = Array.from(
      new Set(name.replace(/[A-Za-z0-9._-]/g, '').split(''))
    );
    const shown = bad.map(c => (c === ' ' ? 'space' : `'${c}'`)).join(', ');
    return `Only letters, digits, '.', '_' and '-' are allowed (not ${shown}).`;
  }
  return null;
}

/**
 * The listed environment a create of `name` would collide with: the one at `<place>/<name>` for one of the places
 * a new env may go (the chosen root; the base, which holds its layers in the `inside_base` layout and whose
 * layers' kernel names include the layer's name). The listing is loaded already: no request as you type.
 */
export function existingEnv(
  name: string,
  envs: ReadonlyArray<IEnvironment>,
  places: ReadonlyArray<string | undefined>
): IEnvironment | undefined {
  if (!name) {
    return undefined;
  }
  const paths = places
    .filter((place): place is string => !!place)
    .map(place => `${place.replace(/\/+$/, '')}/${name}`);
  return envs.find(env => paths.includes(env.path));
}

/** What the name field says about a name that is taken (the server would answer 409). */
export function nameTakenMessage(env: IEnvironment): string {
  return `An environment named "${env.name}" exists already (${env.path}): pick another name, or delete it first.`;
}

/** "1 environment", "2 environments". */
export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/**
 * A job's error as its first line (what went wrong, e.g. "install failed (uv exited with 1): error: …") and the
 * rest (the installer's last output lines), which the panel keeps under "Show log".
 */
export function splitError(error: string): { first: string; rest: string } {
  const text = error.trim();
  const cut = text.indexOf('\n');
  return cut < 0
    ? { first: text, rest: '' }
    : { first: text.slice(0, cut).trim(), rest: text.slice(cut + 1).trim() };
}

/** The package specs of a "one per line" text: blank lines and `#` comments dropped, lines trimmed. */
export function parsePackageLines(text: string): string[] {
  const specs: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line) {
      specs.push(line);
    }
  }
  return specs;
}

// ------------------------------------------------------------------------------------------------ tree

export interface IEnvNode {
  env: IEnvironment;
  children: IEnvNode[];
}

export interface IEnvTree {
  /** Conda roots and Conda envs (each with the envs and layers built on it), sorted by name. */
  conda: IEnvNode[];
  /** Plain venvs, and layers whose base is not among the environments listed. */
  other: IEnvNode[];
}

const KIND_ORDER: Record<string, number> = {
  'conda-base': 0,
  'conda-env': 1,
  layered: 2,
  venv: 3
};

function compareEnvs(a: IEnvironment, b: IEnvironment): number {
  const ka = KIND_ORDER[a.kind] ?? 9;
  const kb = KIND_ORDER[b.kind] ?? 9;
  if (ka !== kb) {
    return ka - kb;
  }
  return a.name.localeCompare(b.name) || a.path.localeCompare(b.path);
}

function sortNodes(nodes: IEnvNode[]): IEnvNode[] {
  nodes.sort((a, b) => compareEnvs(a.env, b.env));
  for (const node of nodes) {
    sortNodes(node.children);
  }
  return nodes;
}

/**
 * Environments grouped by base: every env whose `base` is the path of a listed env becomes its child
 * (Conda root ▸ its envs ▸ their layers). The rest are top level: Conda roots and envs in `conda`,
 * plain venvs (and layers whose base is not listed) in `other`.
 */
export function groupByBase(envs: IEnvironment[]): IEnvTree {
  const byPath = new Map<string, IEnvNode>();
  for (const env of envs) {
    byPath.set(normPath(env.path), { env, children: [] });
  }
  const conda: IEnvNode[] = [];
  const other: IEnvNode[] = [];
  for (const node of byPath.values()) {
    const base = node.env.base
      ? byPath.get(normPath(node.env.base))
      : undefined;
    if (base && base !== node && !isAncestor(node, base)) {
      base.children.push(node);
    } else if (BASE_KINDS.includes(node.env.kind)) {
      conda.push(node);
    } else {
      other.push(node);
    }
  }
  return { conda: sortNodes(conda), other: sortNodes(other) };
}

function isAncestor(node: IEnvNode, candidate: IEnvNode): boolean {
  // A cycle in `base` links (never expected, but a listing must not hang on it).
  const stack = [...node.children];
  while (stack.length) {
    const next = stack.pop()!;
    if (next === candidate) {
      return true;
    }
    stack.push(...next.children);
  }
  return false;
}

function normPath(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

/** Is every word of a filter text somewhere in these strings (case-insensitive)? True for a blank filter. */
function hasEveryWord(fields: string[], filter: string): boolean {
  const hay = fields.join('\n').toLowerCase();
  return filter
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every(word => hay.includes(word));
}

/** Does an env match a filter text (every word somewhere in its name, path, kind, version, scope or kernels)? */
export function matchesFilter(env: IEnvironment, filter: string): boolean {
  return hasEveryWord(
    [
      env.name,
      env.path,
      env.kind,
      env.scope,
      env.python_version ?? '',
      env.python_version ? `python ${env.python_version}` : '',
      env.writable ? '' : 'read-only',
      env.owner ?? '',
      env.group ?? '',
      env.creator ?? '',
      ...env.kernels.map(k => `${k.name} ${k.display_name} ${k.language}`)
    ],
    filter
  );
}

/** Does a "not a kernel" entry match a filter text (every word in its path or its reason)? */
export function matchesSkipped(skipped: ISkipped, filter: string): boolean {
  return hasEveryWord([skipped.path, skipped.reason], filter);
}

/** The tree with only the envs matching the filter, and their ancestors (so each stays under its base). */
export function filterTree(nodes: IEnvNode[], filter: string): IEnvNode[] {
  if (!filter.trim()) {
    return nodes;
  }
  const kept: IEnvNode[] = [];
  for (const node of nodes) {
    const children = filterTree(node.children, filter);
    if (children.length || matchesFilter(node.env, filter)) {
      kept.push({ env: node.env, children });
    }
  }
  return kept;
}

export function countNodes(nodes: IEnvNode[]): number {
  return nodes.reduce((n, node) => n + 1 + countNodes(node.children), 0);
}

// ------------------------------------------------------------------------------------------------ actions

/**
 * Why the API would refuse to delete this env, or null when the delete button may be enabled: a job on it,
 * the caller not allowed to write at all (GET policy's `can_delete`, with the server's reason in
 * `create_refused`), else the listing's own reason.
 */
export function deleteBlockedReason(
  env: IEnvironment,
  busy = false,
  policy: IPolicy | null = null
): string | null {
  if (busy) {
    return `A job is working on ${env.name}; wait until it ends.`;
  }
  if (policy && !policy.can_delete) {
    return policy.create_refused || DELETE_REFUSED;
  }
  return env.delete_blocked_reason;
}

/** What a refused delete says when the server gives no reason (a server that sends none). */
export const DELETE_REFUSED =
  'You may not delete environments on this server: its authorizer refuses the "write" action on layenv. ' +
  'Ask your administrator for that permission.';

/** Bases a new layer may be built on: Conda roots and envs with a Python, sorted like the tree. */
export function baseChoices(envs: IEnvironment[]): IEnvironment[] {
  return envs
    .filter(env => BASE_KINDS.includes(env.kind) && env.python_version)
    .sort(compareEnvs);
}

/** The base preselected in the form: a Conda env (not the root) that is a kernel, else the first choice. */
export function defaultBase(choices: IEnvironment[]): IEnvironment | undefined {
  return (
    choices.find(env => env.kind === 'conda-env' && env.kernels.length > 0) ??
    choices[0]
  );
}

export function baseLabel(env: IEnvironment): string {
  const py = env.python_version ? `Python ${env.python_version}` : 'no Python';
  const where = env.kind === 'conda-base' ? 'Conda root' : 'Conda env';
  return `${env.name} — ${py} (${where}, ${env.path})`;
}

/** The kernel a new notebook on this env uses: its Python kernel, else its first; undefined when none. */
export function notebookKernel(env: IEnvironment): IKernelInfo | undefined {
  return env.kernels.find(k => k.language === 'python') ?? env.kernels[0];
}

/** The environments that are not kernels, with why (the question users ask most). */
export function notKernels(listing: IListing): ISkipped[] {
  const envs = listing.environments
    .filter(env => env.kernels.length === 0)
    .map(env => ({
      path: env.path,
      reason: env.skipped_reason || 'not a kernel (no reason given)'
    }));
  return [...envs, ...listing.skipped];
}

/**
 * A skipped entry the server lets a person delete (a layer whose base was deleted: it has an `id`), as the
 * env the delete action takes; null for the others (nothing there to delete from the panel).
 */
export function orphanEnv(skipped: ISkipped): IEnvironment | null {
  if (!skipped.id) {
    return null;
  }
  return {
    id: skipped.id,
    name: skipped.path.replace(/\/+$/, '').split('/').pop() || skipped.path,
    path: skipped.path,
    kind: 'layered',
    base: null,
    python_version: null,
    kernels: [],
    writable: true,
    scope: 'user',
    skipped_reason: skipped.reason,
    delete_blocked_reason: skipped.delete_blocked_reason ?? null
  };
}

// ------------------------------------------------------------------------------------------------ policy

/** One place new environments may go (GET policy's `roots`). */
export interface IPolicyRoot {
  /** `user`, `group:<dir name>` or `system:<path>`: what POST environments takes as `root`. */
  id: string;
  scope: Scope | string;
  path: string;
  group: string | null;
  writable: boolean;
  can_create: boolean;
  /** The 403 message a create in this root would get, or null. */
  refused: string | null;
}

/** GET `<base_url>/layenv/policy`: what applies to the caller, so the panel offers only what would be accepted. */
export interface IPolicy {
  user: string;
  can_create: boolean;
  can_delete: boolean;
  create_refused: string | null;
  roots: IPolicyRoot[];
  /** The globs (informational): which bases are refused comes from each env's `layer_blocked_reason`. */
  allowed_bases: string[];
  max_envs_per_user: number;
  envs_owned: number;
  max_jobs: number;
  active_jobs: number;
  packages: {
    allowed: string[];
    denied: string[];
    direct_references: boolean;
    installer_options: string[];
  };
  index: {
    index_url: string | null;
    extra_index_urls: string[];
    find_links: string[];
    offline: boolean;
  };
  /** Creating Conda bases (py-rattler): allowed or why not, and the server's channels and envs dir. */
  conda?: {
    can_create: boolean;
    refused: string | null;
    channels: string[];
    platform: string;
    envs_dir: string;
    /** The specs of a first base, e.g. ["python=3.11", "ipykernel"]. */
    first_base: string[];
  };
  /** Set when no Conda env exists: how to create a first base. */
  hint?: string | null;
}

export interface IBaseOption {
  env: IEnvironment;
  /** Why it may not be picked (the listing's `layer_blocked_reason`, the server's words), or null. */
  refused: string | null;
}

/**
 * The base select's options: allowed bases first (in tree order), then the ones the server refuses, disabled.
 * Which bases are refused is the server's call (its `layer_blocked_reason`), never matched here.
 */
export function baseOptions(envs: IEnvironment[]): IBaseOption[] {
  const options = baseChoices(envs).map(env => ({
    env,
    refused: env.layer_blocked_reason || null
  }));
  return [
    ...options.filter(o => !o.refused),
    ...options.filter(o => o.refused)
  ];
}

/** What the help under Base says when the server refuses some bases: a summary, then its reasons. */
export interface IBasesHelp {
  summary: string;
  /** The server's reasons, one per refused base, each naming its base and the rule. */
  reasons: string[];
  /** When the reasons are cut short (a select with many greyed-out bases): how many more, and where to look. */
  more: string | null;
}

/** The most reasons listed under a select; each greyed-out option also carries its own as a tooltip. */
export const MAX_BASE_REASONS = 5;

/** The help under Base, built from the options' refusals; null when every base may be used. */
export function basesHelp(options: IBaseOption[]): IBasesHelp | null {
  const refused = options.filter(o => o.refused).map(o => o.refused as string);
  if (!refused.length) {
    return null;
  }
  if (refused.length === options.length) {
    // No select then: every reason is listed, there is nowhere else to read them.
    return {
      summary: `No base you may build on: the server refuses all ${options.length} Conda environments found.`,
      reasons: refused,
      more: null
    };
  }
  const reasons = refused.slice(0, MAX_BASE_REASONS);
  const hidden = refused.length - reasons.length;
  return {
    summary: `${refused.length} of ${options.length} bases may not be used (marked "not allowed"):`,
    reasons,
    more: hidden
      ? `…and ${hidden} more: hover a greyed-out base for why.`
      : null
  };
}

/** The roots the "Where" select offers: the user root and the group roots (system roots are never written). */
export function rootChoices(policy: IPolicy | null): IPolicyRoot[] {
  return (policy?.roots ?? []).filter(root => root.scope !== 'system');
}

/** The root preselected: the user root when the caller may create there, else the first one allowed. */
export function defaultRoot(roots: IPolicyRoot[]): IPolicyRoot | undefined {
  return (
    roots.find(r => r.id === 'user' && r.can_create) ??
    roots.find(r => r.can_create)
  );
}

export function rootLabel(root: IPolicyRoot, withState = true): string {
  const what =
    root.scope === 'user'
      ? 'Your environments'
      : root.scope === 'group'
        ? `Group ${root.group ?? root.id.replace(/^group:/, '')}`
        : `${root.scope[0]?.toUpperCase() ?? ''}${root.scope.slice(1)}`;
  return `${what} — ${root.path}${root.can_create || !withState ? '' : ' (not allowed)'}`;
}

/** What creating in a root means, said for the person choosing it. */
export function rootHelp(root: IPolicyRoot | undefined): string {
  if (!root) {
    return '';
  }
  if (root.scope === 'group') {
    const group = root.group ? `the group ${root.group}` : 'its group';
    return `Shared with ${group}: its members get it as a kernel and can update or delete it.`;
  }
  if (root.scope === 'user') {
    return 'Yours: only you can update or delete it.';
  }
  return '';
}

/** Why no environment may be created now (GET policy's `create_refused`), or null. */
export function createRefusal(policy: IPolicy | null): string | null {
  if (!policy || policy.can_create) {
    return null;
  }
  return (
    policy.create_refused ||
    'You may not create environments on this server: ask your administrator.'
  );
}

/** The package rules that apply, one sentence each, for the help text under Packages. */
export function packagesHelp(policy: IPolicy | null): string[] {
  const lines = [
    'Specs like flask==3.0.3 or requests>=2, one per line; # starts a comment.'
  ];
  if (!policy?.packages) {
    return lines;
  }
  const p = policy.packages;
  if (p.allowed?.length) {
    lines.push(
      `Only these packages may be installed: ${p.allowed.join(', ')} (LayenvPolicy.allowed_packages).`
    );
  }
  if (p.denied?.length) {
    lines.push(
      `Never these: ${p.denied.join(', ')} (LayenvPolicy.denied_packages).`
    );
  }
  lines.push(
    p.direct_references
      ? 'Direct references (name @ https://…) are allowed.'
      : 'No URLs or local paths (LayenvPolicy.allow_direct_references).'
  );
  lines.push(
    p.installer_options?.length
      ? `Installer options allowed, each on its own line: ${p.installer_options.join(', ')}; ` +
          'no others (LayenvPolicy.allowed_installer_options).'
      : 'No installer options such as --pre or --index-url (LayenvPolicy.allowed_installer_options).'
  );
  const index = policy.index;
  if (index) {
    const links = index.find_links?.length
      ? `the wheelhouse ${index.find_links.join(', ')}`
      : '';
    if (index.offline) {
      lines.push(
        `Installed offline, from ${links || 'the wheelhouse the administrator set'} only.`
      );
    } else {
      const indexes = [
        index.index_url ?? 'the default index (PyPI)',
        ...(index.extra_index_urls ?? [])
      ];
      lines.push(
        `Installed from ${indexes.join(', ')}${links ? ` and ${links}` : ''}, set by the administrator.`
      );
    }
  }
  return lines;
}

/** The quotas that apply (only those configured), one sentence each. */
export function limitsHelp(policy: IPolicy | null): string[] {
  const lines: string[] = [];
  if (policy && policy.max_envs_per_user > 0) {
    lines.push(
      `You have ${policy.envs_owned} of at most ${policy.max_envs_per_user} environments ` +
        '(LayenvPolicy.max_envs_per_user).'
    );
  }
  if (policy && policy.max_jobs > 0) {
    lines.push(
      `${policy.active_jobs} of at most ${policy.max_jobs} jobs run on this server (LayenvPolicy.max_jobs).`
    );
  }
  return lines;
}

/** Who an env belongs to, for group and system envs: "group physics · created by alice"; null for the caller's own. */
export function ownerLine(env: IEnvironment): string | null {
  if (env.scope === 'group') {
    const parts = [`group ${env.group ?? '?'}`];
    if (env.creator) {
      parts.push(`created by ${env.creator}`);
    } else if (env.owner) {
      parts.push(`owned by ${env.owner}`);
    }
    return parts.join(' · ');
  }
  if (env.scope === 'system') {
    const parts: string[] = [];
    if (env.owner) {
      parts.push(`owned by ${env.owner}`);
    }
    if (env.group) {
      parts.push(`group ${env.group}`);
    }
    if (env.creator && env.creator !== env.owner) {
      parts.push(`created by ${env.creator}`);
    }
    return parts.length ? parts.join(' · ') : null;
  }
  return null;
}

/** The scope badge's tooltip. */
export function scopeTitle(env: IEnvironment): string {
  switch (env.scope) {
    case 'user':
      return 'user: in your own environments';
    case 'group':
      return `group: shared with the members of ${env.group ?? 'its group'}`;
    case 'system':
      return "system: an administrator's environment, never written from here";
    default:
      return `scope: ${env.scope}`;
  }
}

// ------------------------------------------------------------------------------------------------ create errors

export type CreateField =
  | 'name'
  | 'root'
  | 'base'
  | 'packages'
  | 'requirements'
  | 'environment_yml'
  | 'display_name'
  | 'inherit'
  | 'form';

// create_in; a system root; a group root of which the caller is not a member ('read-only root', 'unknown root' too)
const ROOT_REASONS = ['create_in', 'system', 'not a member'];
const PACKAGE_RULES = [
  'allowed_packages',
  'denied_packages',
  'allow_direct_references',
  'allowed_installer_options'
];

/** Which form field a server refusal of POST environments concerns (so it is shown next to that field). */
export function fieldForError(error: IApiError): CreateField {
  const reason = (error.reason || '').toLowerCase();
  const rule = reason.replace(/^layenvpolicy\./, '');
  const message = error.message || '';
  if (
    error.status === 409 ||
    reason === 'invalid name' ||
    /^invalid env name/.test(message)
  ) {
    return 'name';
  }
  if (
    ROOT_REASONS.includes(rule) ||
    /\broots?\b/.test(reason) ||
    /^'?root'?\b/.test(message)
  ) {
    return 'root';
  }
  if (PACKAGE_RULES.includes(rule)) {
    return /^'?requirements\b/.test(message) ? 'requirements' : 'packages';
  }
  if (rule === 'max_envs_per_user' || rule === 'max_jobs') {
    return 'form';
  }
  if (
    reason.includes('base') ||
    reason === 'no python' ||
    /^'?base'?\b/.test(message)
  ) {
    return 'base';
  }
  if (/^requirements\b|^'requirements'/.test(message)) {
    return 'requirements';
  }
  if (
    /^packages\b|^'packages'/.test(message) ||
    /package specs?/.test(message)
  ) {
    return 'packages';
  }
  if (/display_name/.test(message)) {
    return 'display_name';
  }
  if (/'inherit'/.test(message)) {
    return 'inherit';
  }
  return 'form';
}

// ------------------------------------------------------------------------------------------------ jobs

const FINAL_STATES: ReadonlyArray<string> = [
  'succeeded',
  'failed',
  'cancelled'
];

export function isFinal(job: IJob): boolean {
  return FINAL_STATES.includes(job.state);
}

/**
 * How far a job is, in percent: 100 only once it succeeded (the server reports 1.0 while it still finishes),
 * null while nothing is measured (queued, or no step reported yet): an indeterminate bar, not "0 %".
 */
export function percent(job: IJob): number | null {
  if (job.state === 'succeeded') {
    return 100;
  }
  const p = Math.min(1, Number(job.progress) || 0);
  if (!isFinal(job) && (job.state === 'queued' || p <= 0)) {
    return null;
  }
  const pct = Math.floor(Math.max(0, p) * 100);
  return isFinal(job) ? pct : Math.min(99, pct);
}

/** The part of the API a job follower needs (a fake in the unit tests). */
export interface IJobSource {
  getJob(id: string): Promise<IJob>;
  /** The log from byte `offset`; `next` is the offset to ask for next time. */
  getLog(id: string, offset: number): Promise<{ text: string; next: number }>;
}

export interface IFollowUpdate {
  job: IJob;
  /** New log text since the previous update. */
  log: string;
}

/**
 * Follows a job until it ends: polls its state and the new part of its log, calls `onUpdate` each time.
 * Resumable: `start` again after a page reload picks up from the job's current state and the log's start.
 */
export class JobFollower {
  constructor(
    readonly source: IJobSource,
    readonly jobId: string,
    readonly onUpdate: (update: IFollowUpdate) => void,
    readonly intervalMs = 500,
    readonly onError: (error: unknown) => void = () => undefined
  ) {}

  offset = 0;
  job: IJob | null = null;
  private _stopped = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _failures = 0;

  get stopped(): boolean {
    return this._stopped;
  }

  /** One poll: the job, then its log (read after the state, so a final state comes with the whole log). */
  async poll(): Promise<IJob> {
    const job = await this.source.getJob(this.jobId);
    let log = '';
    // Read the log until the server has no more (a final job's log is complete after this loop).
    for (let i = 0; i < 20; i++) {
      const part = await this.source.getLog(this.jobId, this.offset);
      if (part.next <= this.offset || !part.text) {
        break;
      }
      log += part.text;
      this.offset = part.next;
    }
    this.job = job;
    this.onUpdate({ job, log });
    return job;
  }

  start(): void {
    this._stopped = false;
    void this._loop();
  }

  stop(): void {
    this._stopped = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private async _loop(): Promise<void> {
    if (this._stopped) {
      return;
    }
    try {
      const job = await this.poll();
      this._failures = 0;
      if (isFinal(job)) {
        this._stopped = true;
        return;
      }
    } catch (error) {
      this._failures += 1;
      this.onError(error);
      if (this._failures >= 30) {
        this._stopped = true;
        return;
      }
    }
    if (!this._stopped) {
      const wait =
        this.intervalMs * Math.min(4, 1 + Math.floor(this._failures / 3));
      this._timer = setTimeout(() => void this._loop(), wait);
    }
  }
}

/** What to show of a thrown error: its message, else the thrown value itself. */
export function errorMessage(error: unknown): string {
  return (error as Error | null)?.message || String(error);
}

/** Parse a Content-Disposition header's filename (the export's download name). */
export function filenameFromDisposition(
  header: string | null,
  fallback: string
): string {
  if (!header) {
    return fallback;
  }
  const star = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ''));
    } catch {
      // fall through to the plain filename
    }
  }
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : fallback;
}

/**
 * A server reason split into its explanation and the commands it says to run (written `like this`): the sidebar
 * clamps the explanation to its room but shows each command whole, on its own line, to read and copy.
 */
export function reasonCommands(reason: string): {
  text: string;
  commands: string[];
} {
  const found = reason.match(/`[^`]+`/g) ?? [];
  const commands = found.map(quoted => quoted.slice(1, -1));
  let n = 0;
  const text = reason.replace(/`[^`]+`/g, () =>
    commands.length === 1 ? 'the command below' : `command ${++n} below`
  );
  return { text, commands };
}
