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
}

export interface ISkipped {
  path: string;
  reason: string;
}

export interface IListing {
  environments: IEnvironment[];
  skipped: ISkipped[];
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

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
}

/** The error JSON of the API, with the HTTP status. */
export interface IApiError {
  status: number;
  message: string;
  reason: string;
}

export const BASE_KINDS: ReadonlyArray<string> = ['conda-base', 'conda-env'];

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
    const bad = Array.from(new Set(name.replace(/[A-Za-z0-9._-]/g, '').split('')));
    const shown = bad.map(c => (c === ' ' ? 'space' : `'${c}'`)).join(', ');
    return `Only letters, digits, '.', '_' and '-' are allowed (not ${shown}).`;
  }
  return null;
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

const KIND_ORDER: Record<string, number> = { 'conda-base': 0, 'conda-env': 1, layered: 2, venv: 3 };

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
    const base = node.env.base ? byPath.get(normPath(node.env.base)) : undefined;
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

/** Does an env match a filter text (every word somewhere in its name, path, kind, version, scope or kernels)? */
export function matchesFilter(env: IEnvironment, filter: string): boolean {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) {
    return true;
  }
  const hay = [
    env.name,
    env.path,
    env.kind,
    env.scope,
    env.python_version ?? '',
    env.python_version ? `python ${env.python_version}` : '',
    env.writable ? '' : 'read-only',
    ...env.kernels.map(k => `${k.name} ${k.display_name} ${k.language}`)
  ]
    .join('\n')
    .toLowerCase();
  return words.every(word => hay.includes(word));
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
 * Why the API would refuse to delete this env (policy.check_delete), or null when the delete button may be
 * enabled. `envs` is the whole listing (an env that is the base of another one cannot be deleted).
 */
export function deleteBlockedReason(env: IEnvironment, busy = false): string | null {
  if (busy) {
    return `A job is working on ${env.name}; wait until it ends.`;
  }
  return env.delete_blocked_reason;
}

/** Bases a new layer may be built on: Conda roots and envs with a Python, sorted like the tree. */
export function baseChoices(envs: IEnvironment[]): IEnvironment[] {
  return envs.filter(env => BASE_KINDS.includes(env.kind) && env.python_version).sort(compareEnvs);
}

/** The base preselected in the form: a Conda env (not the root) that is a kernel, else the first choice. */
export function defaultBase(choices: IEnvironment[]): IEnvironment | undefined {
  return choices.find(env => env.kind === 'conda-env' && env.kernels.length > 0) ?? choices[0];
}

export function baseLabel(env: IEnvironment): string {
  const py = env.python_version ? `Python ${env.python_version}` : 'no Python';
  const where = env.kind === 'conda-base' ? 'Conda root' : 'Conda env';
  return `${env.name} — ${py} (${where}, ${env.path})`;
}

export function envSummary(env: IEnvironment): string {
  const py = env.python_version ? `Python ${env.python_version}` : 'Python ?';
  return `${py} · ${env.kind} · ${env.scope}`;
}

/** The environments that are not kernels, with why (the question users ask most). */
export function notKernels(listing: IListing): ISkipped[] {
  const envs = listing.environments
    .filter(env => env.kernels.length === 0)
    .map(env => ({ path: env.path, reason: env.skipped_reason || 'not a kernel (no reason given)' }));
  return [...envs, ...listing.skipped];
}

// ------------------------------------------------------------------------------------------------ create errors

export type CreateField = 'name' | 'base' | 'packages' | 'requirements' | 'display_name' | 'inherit' | 'form';

/** Which form field a server refusal of POST environments concerns (so it is shown next to that field). */
export function fieldForError(error: IApiError): CreateField {
  const reason = (error.reason || '').toLowerCase();
  const message = error.message || '';
  if (error.status === 409 || reason === 'invalid name' || /^invalid env name/.test(message)) {
    return 'name';
  }
  if (reason.includes('base') || reason === 'no python' || /^'?base'?\b/.test(message)) {
    return 'base';
  }
  if (/^requirements\b|^'requirements'/.test(message)) {
    return 'requirements';
  }
  if (/^packages\b|^'packages'/.test(message) || /package specs?/.test(message)) {
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

export const FINAL_STATES: ReadonlyArray<string> = ['succeeded', 'failed', 'cancelled'];

export function isFinal(job: IJob): boolean {
  return FINAL_STATES.includes(job.state);
}

export function percent(job: IJob): number {
  const p = Math.max(0, Math.min(1, Number(job.progress) || 0));
  return job.state === 'succeeded' ? 100 : Math.floor(p * 100);
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
      const wait = this.intervalMs * Math.min(4, 1 + Math.floor(this._failures / 3));
      this._timer = setTimeout(() => void this._loop(), wait);
    }
  }
}

/** Parse a Content-Disposition header's filename (the export's download name). */
export function filenameFromDisposition(header: string | null, fallback: string): string {
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
