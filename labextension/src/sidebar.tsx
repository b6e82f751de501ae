/**
 * The Environments sidebar: environments grouped by base, their kernels and actions, the jobs, and what is
 * not a kernel and why.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import {
  addIcon,
  caretDownIcon,
  caretRightIcon,
  deleteIcon,
  downloadIcon,
  listIcon,
  notebookIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { CodeText, plainText } from './codetext';
import { layenvIcon } from './icons';
import {
  countNodes,
  createRefusal,
  deleteBlockedReason,
  filterTree,
  formatBytes,
  groupByBase,
  IEnvironment,
  IEnvNode,
  IJob,
  IPolicy,
  isFinal,
  jobDoing,
  jobLine,
  lastUsedText,
  matchesSkipped,
  notebookKernel,
  notKernels,
  orphanEnv,
  ownerLine,
  percent,
  plural,
  reasonCommands,
  scopeTitle
} from './model';
import { KernelName, PathLine } from './lines';
import { JobError, ProgressBar } from './progress';
import { StorageSection } from './storage';
import { LayenvStore } from './store';

export interface ISidebarActions {
  /** `blocked`: why the server would refuse any create (then explain instead of opening the form). */
  create(blocked: string | null): void;
  showJob(jobId: string): void;
  newNotebook(kernelName: string): void;
  exportEnv(env: IEnvironment): void;
  /** `blocked`: why the API would refuse (then explain instead of asking to confirm). */
  deleteEnv(env: IEnvironment, blocked: string | null): void;
  /** The Packages view of a layer or venv: its packages, changes and history. */
  packages?(env: IEnvironment): void;
}

export class EnvironmentsSidebar extends ReactWidget {
  constructor(
    readonly store: LayenvStore,
    readonly actions: ISidebarActions
  ) {
    super();
    this.id = 'jupyter-layenv-sidebar';
    this.addClass('jp-LayenvSidebar');
    this.title.icon = layenvIcon;
    this.title.caption = 'Environments (Conda bases and their layers)';
    this.store.changed.connect(this.update, this);
  }

  showNotKernels = true;

  /**
   * After a delete, the focus was on the deleted row's button, which is gone: it goes to the filter, not to the
   * page's body (where a keyboard user would have to start over from the top of JupyterLab).
   */
  focusAfterDelete(): void {
    this.node
      .querySelector<HTMLInputElement>(
        'input[aria-label="Filter environments"]'
      )
      ?.focus();
  }

  protected onAfterShow(): void {
    void this.store.refresh();
  }

  dispose(): void {
    this.store.changed.disconnect(this.update, this);
    super.dispose();
  }

  render(): JSX.Element {
    return (
      <SidebarView
        store={this.store}
        actions={this.actions}
        showNotKernels={this.showNotKernels}
      />
    );
  }
}

interface ISidebarProps {
  store: LayenvStore;
  actions: ISidebarActions;
  showNotKernels: boolean;
}

function SidebarView({
  store,
  actions,
  showNotKernels
}: ISidebarProps): JSX.Element {
  const [filter, setFilter] = React.useState('');
  const [collapsed, setCollapsed] = React.useState<Set<string>>(new Set());
  const scrollRef = React.useRef<HTMLDivElement>(null);
  React.useEffect(() => {
    // A new filter shows its matches from the top, wherever the long list was scrolled to.
    scrollRef.current?.scrollTo?.(0, 0);
  }, [filter]);
  const listing = store.listing;
  const envs = listing?.environments ?? [];
  const tree = React.useMemo(() => groupByBase(envs), [listing]);
  // A filter of spaces only is no filter, for the tree, the count and Storage alike.
  const filtering = filter.trim() !== '';
  const conda = React.useMemo(
    () => filterTree(tree.conda, filter),
    [tree, filter]
  );
  const other = React.useMemo(
    () => filterTree(tree.other, filter),
    [tree, filter]
  );
  const shown = countNodes(conda) + countNodes(other);
  // What Storage lists while a filter is set: the environments the tree shows.
  const shownPaths = React.useMemo(
    () => (filtering ? new Set(nodePaths([...conda, ...other])) : null),
    [filtering, conda, other]
  );
  const busy = store.busyPaths;
  const policy = store.policy;
  const createBlocked = createRefusal(policy);
  // Running jobs, and the few last ones that ended in the last hour (GET jobs keeps more).
  const recent = (job: IJob) =>
    (job.finished ?? job.created ?? 0) * 1000 > Date.now() - 60 * 60 * 1000;
  const jobs = [
    ...store.jobs.filter(job => !isFinal(job)),
    ...store.jobs.filter(job => isFinal(job) && recent(job)).slice(0, 3)
  ];
  const skipped = listing
    ? notKernels(listing).filter(s => matchesSkipped(s, filter))
    : [];

  const toggle = (path: string) => {
    const next = new Set(collapsed);
    if (next.has(path)) {
      next.delete(path);
    } else {
      next.add(path);
    }
    setCollapsed(next);
  };

  const renderNodes = (nodes: IEnvNode[], level: number): JSX.Element[] =>
    nodes.map(node => (
      <EnvRow
        key={node.env.path}
        node={node}
        level={level}
        busy={busy.has(node.env.path)}
        policy={policy}
        expanded={!collapsed.has(node.env.path) || filtering}
        onToggle={toggle}
        actions={actions}
        renderChildren={children => renderNodes(children, level + 1)}
      />
    ));

  return (
    <div className="jp-LayenvSidebar-body">
      <div className="jp-LayenvSidebar-header">
        <h2 className="jp-LayenvSidebar-title">Environments</h2>
        <button
          className="jp-LayenvButton jp-mod-icon"
          onClick={() => actions.create(createBlocked)}
          title={
            createBlocked
              ? plainText(createBlocked)
              : 'Create a new environment layered on a Conda env'
          }
          aria-label="New environment"
          // Not `disabled`: it stays focusable, and Enter explains why.
          aria-disabled={createBlocked ? true : undefined}
          data-blocked={createBlocked ? 'true' : undefined}
        >
          <addIcon.react tag="span" />
        </button>
        <button
          className="jp-LayenvButton jp-mod-icon"
          onClick={() => void store.refresh()}
          title="Refresh the list of environments"
          aria-label="Refresh environments"
          disabled={store.loading}
        >
          <refreshIcon.react tag="span" />
        </button>
      </div>
      <div className="jp-LayenvSidebar-filter">
        <input
          type="search"
          className="jp-LayenvInput"
          placeholder="Filter: name, path, kind, kernel…"
          aria-label="Filter environments"
          value={filter}
          onChange={e => setFilter(e.target.value)}
        />
      </div>
      {store.error && (
        <div className="jp-LayenvError" role="alert">
          Could not list environments: <CodeText text={store.error} />
        </div>
      )}
      <div className="jp-LayenvSidebar-scroll" ref={scrollRef}>
        {jobs.length > 0 && (
          <section className="jp-LayenvSection" aria-label="Jobs">
            <h3 className="jp-LayenvSection-title">Jobs</h3>
            <ul className="jp-LayenvJobs">
              {jobs.map(job => (
                <JobRow
                  key={job.id}
                  job={job}
                  onShow={() => actions.showJob(job.id)}
                />
              ))}
            </ul>
          </section>
        )}
        {!listing && store.loading && (
          <div className="jp-LayenvEmpty">Looking for environments…</div>
        )}
        {listing && (
          <>
            <TreeSection
              title="Conda bases and their layers"
              label="Conda environments and their layers"
              empty={
                filtering
                  ? 'No match.'
                  : policy?.conda?.can_create
                    ? 'No Conda environment found. Create a first base: New environment (+), then "A Conda base"; the server installs it, no conda needed.'
                    : 'No Conda environment found.'
              }
              rows={renderNodes(conda, 1)}
            />
            <TreeSection
              title="Virtualenvs"
              label="Virtualenvs"
              empty={filtering ? 'No match.' : 'No virtualenv found.'}
              rows={renderNodes(other, 1)}
            />
            {showNotKernels && (
              <section
                className="jp-LayenvSection jp-LayenvSkipped"
                aria-label="Not listed as kernels"
              >
                <h3 className="jp-LayenvSection-title">
                  Not listed as kernels ({skipped.length})
                </h3>
                {skipped.length ? (
                  <ul>
                    {skipped.map(s => (
                      <li key={s.path} className="jp-LayenvSkipped-item">
                        <div className="jp-LayenvSkipped-line">
                          <div className="jp-LayenvPath" title={s.path}>
                            {breakable(s.path, /(?<=\/)/)}
                          </div>
                          <SkippedDelete
                            env={orphanEnv(s)}
                            busy={busy.has(s.path)}
                            policy={policy}
                            actions={actions}
                          />
                        </div>
                        <div className="jp-LayenvSkipped-reason">
                          <CodeText text={s.reason} />
                        </div>
                      </li>
                    ))}
                  </ul>
                ) : (
                  <div className="jp-LayenvEmpty">
                    {filtering
                      ? 'No match.'
                      : 'Every environment found is a kernel.'}
                  </div>
                )}
              </section>
            )}
            <StorageSection store={store} shown={shownPaths} />
            <div className="jp-LayenvSidebar-count" aria-live="polite">
              {filtering
                ? `${shown} of ${plural(envs.length, 'environment')}`
                : plural(envs.length, 'environment')}
            </div>
          </>
        )}
      </div>
    </div>
  );
}

/** The paths of a tree's environments, its children's too. */
function nodePaths(nodes: IEnvNode[]): string[] {
  return nodes.flatMap(node => [node.env.path, ...nodePaths(node.children)]);
}

/** The delete button of a skipped entry the server may delete (a layer whose base was deleted), else nothing. */
function SkippedDelete(props: {
  env: IEnvironment | null;
  busy: boolean;
  policy: IPolicy | null;
  actions: ISidebarActions;
}): JSX.Element | null {
  const { env, busy, policy, actions } = props;
  if (!env) {
    return null;
  }
  return (
    <DeleteButton
      env={env}
      blocked={deleteBlockedReason(env, busy, policy)}
      title={`Delete ${env.name} (its base was deleted)`}
      actions={actions}
    />
  );
}

/** An env's delete button; when ``blocked``, its reason is the title and a click explains instead of deleting. */
function DeleteButton(props: {
  env: IEnvironment;
  blocked: string | null;
  title: string;
  actions: ISidebarActions;
}): JSX.Element {
  const { env, blocked, title, actions } = props;
  return (
    <button
      className="jp-LayenvButton jp-mod-icon jp-mod-danger"
      title={blocked ? plainText(blocked) : title}
      aria-label={`Delete ${env.name}`}
      aria-disabled={blocked ? true : undefined}
      // Not `disabled`: a disabled button cannot be focused, and its explanation must be reachable.
      onClick={() => actions.deleteEnv(env, blocked)}
      data-blocked={blocked ? 'true' : undefined}
    >
      <deleteIcon.react tag="span" />
    </button>
  );
}

function JobRow({
  job,
  onShow
}: {
  job: IJob;
  onShow: () => void;
}): JSX.Element {
  const pct = percent(job);
  const name = job.name ?? job.id;
  const final = isFinal(job);
  return (
    <li className={`jp-LayenvJob jp-mod-${job.state}`}>
      <div className="jp-LayenvJob-line">
        <span className="jp-LayenvJob-name" title={name}>
          {name}
        </span>
        <span className="jp-LayenvBadge">{job.state}</span>
        <button
          className="jp-LayenvButton jp-mod-small"
          onClick={onShow}
          aria-label={`Show the job: ${jobDoing(job)}`}
        >
          Show
        </button>
      </div>
      {!final && <ProgressBar pct={pct} label={`${name}: ${job.step}`} small />}
      {final && job.error ? (
        <JobError error={job.error} />
      ) : (
        <div className="jp-LayenvJob-step">{jobLine(job, pct)}</div>
      )}
    </li>
  );
}

interface IEnvRowProps {
  node: IEnvNode;
  level: number;
  busy: boolean;
  policy: IPolicy | null;
  expanded: boolean;
  onToggle(path: string): void;
  actions: ISidebarActions;
  renderChildren(children: IEnvNode[]): JSX.Element[];
}

/** A titled list of env rows, or a line saying why it is empty. */
function TreeSection(props: {
  title: string;
  label: string;
  empty: string;
  rows: JSX.Element[];
}): JSX.Element {
  return (
    <section className="jp-LayenvSection" aria-label={props.label}>
      <h3 className="jp-LayenvSection-title">{props.title}</h3>
      {props.rows.length ? (
        <ul className="jp-LayenvTree" aria-label={props.label}>
          {props.rows}
        </ul>
      ) : (
        <div className="jp-LayenvEmpty">{props.empty}</div>
      )}
    </section>
  );
}

/**
 * A name with a line-break opportunity after each "_", "-" and "." (a path: after each "/"): a long one wraps
 * between its words first.
 */
function breakable(name: string, after = /(?<=[_.-])/): React.ReactNode[] {
  return name
    .split(after)
    .flatMap((part, i) => (i ? [<wbr key={i} />, part] : [part]));
}

function EnvRow(props: IEnvRowProps): JSX.Element {
  const { node, level, busy, policy, expanded, onToggle, actions } = props;
  const env = node.env;
  const hasChildren = node.children.length > 0;
  const blocked = deleteBlockedReason(env, busy, policy);
  const owner = ownerLine(env);
  const kernel = notebookKernel(env);
  const notKernelTitle = `Not a kernel: ${plainText(env.skipped_reason ?? 'no kernel')}`;
  const notKernel = reasonCommands(env.skipped_reason ?? 'no kernel');
  return (
    <li
      className={`jp-LayenvEnv jp-mod-kind-${env.kind}`}
      data-level={level}
      data-env-id={env.id}
      data-env-path={env.path}
    >
      <div className="jp-LayenvEnv-row">
        {hasChildren ? (
          <button
            className="jp-LayenvButton jp-mod-icon jp-LayenvEnv-toggle"
            onClick={() => onToggle(env.path)}
            aria-expanded={expanded}
            aria-label={`Environments built on ${env.name}`}
          >
            {expanded ? (
              <caretDownIcon.react tag="span" />
            ) : (
              <caretRightIcon.react tag="span" />
            )}
          </button>
        ) : (
          <span className="jp-LayenvEnv-toggle" aria-hidden="true" />
        )}
        <span className="jp-LayenvEnv-name" title={`${env.name}\n${env.path}`}>
          {breakable(env.name)}
        </span>
        <span className="jp-LayenvEnv-actions">
          <button
            className="jp-LayenvButton jp-mod-icon"
            title={
              kernel
                ? `New notebook with the kernel ${kernel.display_name}`
                : notKernelTitle
            }
            aria-label={`New notebook with ${env.name}`}
            disabled={!kernel}
            onClick={() => kernel && actions.newNotebook(kernel.name)}
          >
            <notebookIcon.react tag="span" />
          </button>
          {actions.packages &&
            (env.kind === 'layered' || env.kind === 'venv') && (
              <button
                className="jp-LayenvButton jp-mod-icon"
                title={`Packages of ${env.name}: add, remove, history`}
                aria-label={`Packages of ${env.name}`}
                onClick={() => actions.packages?.(env)}
              >
                <listIcon.react tag="span" />
              </button>
            )}
          <button
            className="jp-LayenvButton jp-mod-icon"
            title={`Export ${env.name} (environment.yml, requirements.txt${env.kind.startsWith('conda') ? ' or explicit' : ''})`}
            aria-label={`Export ${env.name}`}
            onClick={() => actions.exportEnv(env)}
          >
            <downloadIcon.react tag="span" />
          </button>
          <DeleteButton
            env={env}
            blocked={blocked}
            title={`Delete ${env.name} and its kernel`}
            actions={actions}
          />
        </span>
      </div>
      <div className="jp-LayenvEnv-meta">
        <span className="jp-LayenvBadge" title="Python version">
          {env.python_version ? `Py ${env.python_version}` : 'Py ?'}
        </span>
        <span className={`jp-LayenvBadge jp-mod-kind`} title="kind">
          {env.kind}
        </span>
        <span
          className={`jp-LayenvBadge jp-mod-scope-${env.scope}`}
          title={scopeTitle(env)}
        >
          {env.scope}
        </span>
        {!env.writable && (
          <span
            className="jp-LayenvBadge jp-mod-readonly"
            title="read-only for the user this server runs as"
          >
            read-only
          </span>
        )}
        {busy && (
          <span className="jp-LayenvBadge jp-mod-busy">job running</span>
        )}
        {env.size_bytes !== null && env.size_bytes !== undefined && (
          <span
            className="jp-LayenvBadge jp-mod-size"
            title={`${formatBytes(env.size_bytes)} of its own (files hard-linked from a package cache or its base are not counted); ${lastUsedText(env.last_used, env.last_used_by)}`}
          >
            {formatBytes(env.size_bytes)}
          </span>
        )}
        {(env.shadowed?.length ?? 0) > 0 && (
          <span
            className="jp-LayenvBadge jp-mod-shadowed"
            title={`This layer holds its own copy of base packages: ${env.shadowed?.join(', ')} (see its Packages)`}
          >
            shadows {env.shadowed?.length}
          </span>
        )}
      </div>
      {owner && (
        <div className="jp-LayenvEnv-owner" title={owner}>
          {owner}
        </div>
      )}
      <PathLine path={env.path} />
      {env.kernels.length ? (
        <ul className="jp-LayenvKernels" aria-label={`Kernels of ${env.name}`}>
          {env.kernels.map(k => (
            <li
              key={k.name}
              className="jp-LayenvKernel"
              title={`${k.display_name}\nkernel name: ${k.name}`}
            >
              <KernelName name={k.display_name} />
            </li>
          ))}
        </ul>
      ) : (
        <div className="jp-LayenvEnv-notkernel">
          <div className="jp-LayenvEnv-notkernel-text" title={notKernelTitle}>
            Not a kernel: {notKernel.text}
          </div>
          {notKernel.commands.map(command => (
            <code
              key={command}
              className="jp-LayenvEnv-command"
              title="The command to run (a click selects it whole)"
            >
              {command}
            </code>
          ))}
        </div>
      )}
      {hasChildren && expanded && (
        <ul className="jp-LayenvTree-group" aria-label={`Built on ${env.name}`}>
          {props.renderChildren(node.children)}
        </ul>
      )}
    </li>
  );
}
