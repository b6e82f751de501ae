/**
 * The Packages view of one layer: its own packages, what it inherits and shadows, add and remove with the
 * server's dry-run plan shown before anything is done, and its history with Restore. A change or restore is
 * followed through the shared store: the sidebar's Jobs list it at once, and the view shows its progress, its
 * live log and a Cancel (a build can take minutes).
 */
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import { IChangeBody } from './api';
import { CodeText } from './codetext';
import {
  errorMessage,
  IEnvironment,
  IEnvironmentDetails,
  IJob,
  IPackage,
  IPlan,
  isTooling,
  IFollowUpdate,
  IRevision,
  isFinal,
  percent,
  restoreChanges,
  revisionPackages,
  revisionSummary,
  revisionTime,
  splitSpecs
} from './model';
import { JobError, ProgressBar } from './progress';
import { LayenvStore } from './store';

export class PackagesWidget extends ReactWidget {
  constructor(
    readonly store: LayenvStore,
    readonly env: IEnvironment
  ) {
    super();
    this.addClass('jp-LayenvPackages');
  }

  render(): JSX.Element {
    return <PackagesView store={this.store} env={this.env} />;
  }
}

interface IPending {
  body: IChangeBody;
  plan: IPlan;
}

/** The view itself (exported for its tests: PackagesWidget is a Lumino widget). */
export function PackagesView(props: {
  store: LayenvStore;
  env: IEnvironment;
}): JSX.Element {
  const { store, env } = props;
  const api = store.api;
  const [details, setDetails] = React.useState<IEnvironmentDetails | null>(
    null
  );
  const [revisions, setRevisions] = React.useState<IRevision[]>([]);
  const [noneReason, setNoneReason] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [filter, setFilter] = React.useState('');
  const [addText, setAddText] = React.useState('');
  const [pending, setPending] = React.useState<IPending | null>(null);
  const [job, setJob] = React.useState<IJob | null>(null);
  const [log, setLog] = React.useState('');
  const [cancelling, setCancelling] = React.useState(false);
  const [notice, setNotice] = React.useState<string | null>(null);

  const reload = React.useCallback(async () => {
    try {
      const [d, r] = await Promise.all([
        api.getEnvironment(env.id),
        api.listRevisions(env.id)
      ]);
      setDetails(d);
      setRevisions(r.revisions);
      setNoneReason(r.none_reason ?? null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [api, env.id]);
  React.useEffect(() => {
    void reload();
  }, [reload]);

  const running = job !== null && !isFinal(job);

  // The store's follower polls the job and its log (and retries a failed poll): the sidebar lists it meanwhile.
  const follow = async (started: IJob, what: string) => {
    setJob(started);
    setLog('');
    setCancelling(false);
    const current = await new Promise<IJob>(resolve => {
      const updated = (_: LayenvStore, update: IFollowUpdate) => {
        if (update.job.id !== started.id) {
          return;
        }
        setJob(update.job);
        setLog(store.logs.get(started.id) ?? '');
        if (isFinal(update.job)) {
          store.jobChanged.disconnect(updated);
          resolve(update.job);
        }
      };
      store.jobChanged.connect(updated);
      store.addJob(started);
    });
    if (current.state === 'succeeded') {
      setNotice(
        `${what} done. Restart the kernels using ${env.name} to use the new packages.`
      );
    }
    await reload();
  };

  // Opened while a change or restore of this layer runs (this tab closed and opened again): that job is followed
  // here, with its Cancel, instead of a form the server would refuse with "a job is working on it".
  React.useEffect(() => {
    const busy = store.jobs.find(
      j =>
        !isFinal(j) &&
        j.path === env.path &&
        (j.action === 'change' || j.action === 'restore')
    );
    if (busy) {
      void follow(busy, busy.action === 'restore' ? 'Restore' : 'Change');
    }
  }, []);

  const jobLabel = job?.action === 'restore' ? 'Restore' : 'Package change';

  const cancel = async (jobId: string) => {
    setCancelling(true);
    try {
      await store.cancel(jobId);
    } catch (e) {
      setError(errorMessage(e));
      setCancelling(false);
    }
  };

  const preview = async (body: IChangeBody) => {
    setError(null);
    setNotice(null);
    // an ended job's line ("cancelled", its log) would read as this plan's outcome
    if (job && isFinal(job)) {
      setJob(null);
    }
    try {
      setPending({ body, plan: await api.planChange(env.id, body) });
    } catch (e) {
      setPending(null);
      setError(errorMessage(e));
    }
  };

  const apply = async () => {
    if (!pending) {
      return;
    }
    const body = pending.body;
    setPending(null);
    try {
      await follow(await api.changePackages(env.id, body), 'Change');
      setAddText('');
    } catch (e) {
      setError(errorMessage(e));
    }
  };

  const restore = async (rev: IRevision) => {
    const result = await showDialog({
      title: `Restore revision ${rev.revision} of ${env.name}?`,
      body: `The layer goes back to revision ${rev.revision}: ${restoreChanges(details?.packages.layer ?? [], rev.lock)}. Recorded as a new revision.`,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Restore' })]
    });
    if (!result.button.accept) {
      return;
    }
    setError(null);
    setNotice(null);
    try {
      await follow(
        await api.restoreRevision(env.id, rev.revision),
        `Restore of revision ${rev.revision}`
      );
    } catch (e) {
      setError(errorMessage(e));
    }
  };

  const match = (p: { name: string }) =>
    p.name.toLowerCase().includes(filter.trim().toLowerCase());
  const packages = details?.packages;
  const layer = (packages?.layer ?? []).filter(match);
  const inherited = (packages?.inherited ?? []).filter(match);
  const shadowed = (packages?.shadowed ?? []).filter(match);

  return (
    <div className="jp-LayenvPackages-body">
      <h2>Packages of {env.name}</h2>
      <code className="jp-LayenvPackages-path">{env.path}</code>
      <div className="jp-LayenvPackages-add">
        <input
          className="jp-LayenvInput"
          aria-label="Packages to add"
          placeholder="Add packages: flask>=3 requests"
          value={addText}
          disabled={running}
          onChange={e => setAddText(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter' && splitSpecs(addText).length) {
              void preview({ add: splitSpecs(addText) });
            }
          }}
        />
        <button
          className="jp-LayenvButton"
          disabled={running || !splitSpecs(addText).length}
          onClick={() => void preview({ add: splitSpecs(addText) })}
        >
          Preview
        </button>
      </div>
      {/* the server's first line says what went wrong; the resolver's own words follow, under "Show log" */}
      {error && <JobError error={error} />}
      {pending && (
        <PlanView
          plan={pending.plan}
          onApply={() => void apply()}
          onCancel={() => setPending(null)}
        />
      )}
      {job && (
        <div className={`jp-LayenvPackages-job jp-mod-${job.state}`}>
          {!isFinal(job) && (
            <ProgressBar
              pct={percent(job)}
              label={`${jobLabel}: ${job.step}`}
            />
          )}
          <div className="jp-LayenvPackages-jobLine">
            <span className="jp-LayenvBadge">{job.state}</span>{' '}
            <span>{isFinal(job) ? '' : job.step}</span>
            {!isFinal(job) && (
              <button
                className="jp-LayenvButton jp-mod-danger jp-mod-small"
                disabled={cancelling}
                onClick={() => void cancel(job.id)}
              >
                {cancelling ? 'Cancelling…' : 'Cancel'}
              </button>
            )}
          </div>
          {job.error && <JobError error={job.error} />}
          {!job.error && (
            <details className="jp-LayenvLog" open={!isFinal(job)}>
              <summary>Log</summary>
              <pre tabIndex={0} aria-label="Installer log">
                {log || (isFinal(job) ? '(empty log)' : 'Waiting for output…')}
              </pre>
            </details>
          )}
        </div>
      )}
      {notice && (
        <div className="jp-LayenvNotice" role="status">
          {notice}
        </div>
      )}
      <input
        type="search"
        className="jp-LayenvInput"
        aria-label="Filter packages"
        placeholder="Filter packages"
        value={filter}
        onChange={e => setFilter(e.target.value)}
      />
      <PackageList
        label="Layer packages"
        title="In this layer"
        items={layer}
        row={p => (
          <>
            <span>
              {p.name} {p.version}
              {isTooling(p.name) && (
                <>
                  {' '}
                  <span
                    className="jp-LayenvBadge"
                    title="The installer's own tooling, put there when the layer was made: like pip freeze, the history's package counts, requirements.txt and environment.yml leave it out"
                  >
                    installer tooling
                  </span>
                </>
              )}
            </span>
            <button
              className="jp-LayenvButton jp-mod-small"
              aria-label={`Remove ${p.name}`}
              disabled={running}
              onClick={() => void preview({ remove: [p.name] })}
            >
              Remove
            </button>
          </>
        )}
      />
      {shadowed.length > 0 && (
        <PackageList
          label="Shadowed base packages"
          title="Shadowing the base"
          items={shadowed}
          row={s => (
            <>
              {s.name} {s.layer_version} over the base&apos;s {s.base_version}
              {s.reason ? (
                <>
                  {' ('}
                  <CodeText text={s.reason} />)
                </>
              ) : (
                ''
              )}
            </>
          )}
        />
      )}
      <details>
        <summary>Inherited from the base ({inherited.length})</summary>
        <ul className="jp-LayenvPackages-list" aria-label="Inherited packages">
          {inherited.map(p => (
            <li key={p.name}>
              {p.name} {p.version}
            </li>
          ))}
        </ul>
      </details>
      <section aria-label="History">
        <h3 className="jp-LayenvSection-title">History</h3>
        {revisions.length === 0 && (
          <div className="jp-LayenvEmpty">
            <CodeText text={noneReason ?? 'No revisions recorded.'} />
          </div>
        )}
        <ol className="jp-LayenvPackages-history">
          {revisions.map((rev, i) => (
            <li key={rev.revision} data-revision={rev.revision}>
              <span title={rev.created}>
                #{rev.revision} {revisionTime(rev.created)} {rev.user}:{' '}
                {revisionSummary(rev)} {revisionPackages(rev)}
                {rev.base_changed ? ' · the base changed since' : ''}
              </span>
              {i === 0 ? (
                <span
                  className="jp-LayenvBadge"
                  title="The layer is this revision now"
                >
                  current
                </span>
              ) : (
                <button
                  className="jp-LayenvButton jp-mod-small"
                  aria-label={`Restore revision ${rev.revision}`}
                  disabled={running}
                  onClick={() => void restore(rev)}
                >
                  Restore
                </button>
              )}
            </li>
          ))}
        </ol>
      </section>
    </div>
  );
}

/** A titled list of packages, one row each (the layer's own with Remove, or those shadowing the base). */
function PackageList<T extends { name: string }>(props: {
  label: string;
  title: string;
  items: T[];
  row: (item: T) => React.ReactNode;
}): JSX.Element {
  return (
    <section aria-label={props.label}>
      <h3 className="jp-LayenvSection-title">
        {props.title} ({props.items.length})
      </h3>
      <ul className="jp-LayenvPackages-list">
        {props.items.map(item => (
          <li key={item.name} data-package={item.name}>
            {props.row(item)}
          </li>
        ))}
      </ul>
    </section>
  );
}

function names(list: IPackage[]): string {
  return list.map(p => `${p.name} ${p.version}`).join(', ') || 'nothing';
}

function PlanView(props: {
  plan: IPlan;
  onApply: () => void;
  onCancel: () => void;
}): JSX.Element {
  const { plan } = props;
  return (
    <div className="jp-LayenvPlan" aria-label="Plan">
      <div className="jp-LayenvPlan-install">
        Install: {names(plan.install)}
      </div>
      <div className="jp-LayenvPlan-remove">Remove: {names(plan.remove)}</div>
      {plan.shadow.length > 0 && (
        <div className="jp-LayenvPlan-shadow">
          Shadows the base&apos;s:{' '}
          {plan.shadow
            .map(
              s => `${s.name} ${s.base_version} → ${s.version} (${s.reason})`
            )
            .join(', ')}
        </div>
      )}
      <div className="jp-LayenvPlan-kept">
        Kept from the base: {names(plan.kept_from_base)}
      </div>
      <button className="jp-LayenvButton jp-mod-accept" onClick={props.onApply}>
        Apply
      </button>
      <button className="jp-LayenvButton" onClick={props.onCancel}>
        Cancel
      </button>
    </div>
  );
}
