/**
 * The sidebar's Storage view: what the environments hold per place (a root, a Conda install, a folder) and owner
 * (GET usage), the largest first with their last kernel start, and a cleanup of the caller's unused ones, previewed
 * (dry run) before it runs.
 */
import * as React from 'react';

import {
  cleanSummary,
  errorMessage,
  formatBytes,
  ICleanReport,
  IUsage,
  lastUsedText,
  plural,
  storageGroupLabel
} from './model';
import { CodeText } from './codetext';
import { PathLine } from './lines';
import { LayenvStore } from './store';
import { usageShown } from './usage';

const LARGEST = 10;

/** `shown`: while the environment list is filtered, the paths it shows (Storage lists only those); else null. */
export function StorageSection({
  store,
  shown
}: {
  store: LayenvStore;
  shown: ReadonlySet<string> | null;
}): JSX.Element {
  const [open, setOpen] = React.useState(false);
  const [usage, setUsage] = React.useState<IUsage | null>(null);
  const [report, setReport] = React.useState<ICleanReport | null>(null);
  const [days, setDays] = React.useState(90);
  const [error, setError] = React.useState<string | null>(null);
  const [working, setWorking] = React.useState(false);

  const load = async () => {
    try {
      setUsage(await store.api.getUsage());
      setError(null);
    } catch (err) {
      setError(errorMessage(err));
    }
  };
  React.useEffect(() => {
    if (open) {
      void load();
    }
  }, [open, store.listing]);

  const clean = async (dryRun: boolean) => {
    setWorking(true);
    try {
      setReport(await store.api.clean(days, dryRun));
      setError(null);
      if (!dryRun) {
        await store.refresh();
      }
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setWorking(false);
    }
  };

  // Once per answer of GET usage and filter, not on every render (a poll re-renders the sidebar twice a second).
  const view = React.useMemo(
    () => usage && usageShown(usage, shown),
    [usage, shown]
  );

  return (
    <section className="jp-LayenvSection jp-LayenvStorage" aria-label="Storage">
      <h3 className="jp-LayenvSection-title">
        <button
          className="jp-LayenvButton jp-LayenvStorage-toggle"
          aria-expanded={open}
          onClick={() => setOpen(!open)}
        >
          Storage
        </button>
      </h3>
      {open && error && (
        <div className="jp-LayenvError" role="alert">
          <CodeText text={error} />
        </div>
      )}
      {open && !usage && !error && (
        <div className="jp-LayenvEmpty">Adding up sizes…</div>
      )}
      {open && view && (
        <>
          <div className="jp-LayenvStorage-total">{view.total}</div>
          <ul className="jp-LayenvStorage-roots" aria-label="Storage by place">
            {view.roots.map(root => (
              <li
                key={root.root}
                title={root.root}
                data-kind={root.kind}
                data-source={root.source}
              >
                <div className="jp-LayenvStorage-kind">
                  {storageGroupLabel(root)}
                </div>
                <PathLine path={root.root} />
                <div className="jp-LayenvStorage-line">{root.line}</div>
              </li>
            ))}
          </ul>
          <ul
            className="jp-LayenvStorage-envs"
            aria-label="Largest environments"
          >
            {view.environments.slice(0, LARGEST).map(env => (
              <li key={env.path} data-env-path={env.path} title={env.path}>
                <span className="jp-LayenvEnv-name">{env.name}</span>{' '}
                <span className="jp-LayenvStorage-line">
                  {formatBytes(env.size_bytes)} ·{' '}
                  {lastUsedText(env.last_used, env.last_used_by)}
                </span>
              </li>
            ))}
          </ul>
          <div className="jp-LayenvStorage-clean">
            <label>
              {shown
                ? 'All your environments (not only the filtered ones)'
                : 'Your environments'}{' '}
              unused for{' '}
              <input
                type="number"
                min={0}
                className="jp-LayenvInput jp-LayenvStorage-days"
                aria-label="Unused for days"
                value={days}
                onChange={e => {
                  setDays(Math.max(0, Math.floor(Number(e.target.value) || 0)));
                  setReport(null);
                }}
              />{' '}
              days
            </label>
            <button
              className="jp-LayenvButton"
              disabled={working}
              onClick={() => void clean(true)}
            >
              Preview cleanup
            </button>
          </div>
          {report && (
            <div className="jp-LayenvStorage-report" aria-live="polite">
              <div className="jp-LayenvStorage-summary">
                {cleanSummary(report)}
              </div>
              <ul>
                {report.removed.map(env => (
                  <li key={env.path} title={env.path}>
                    {report.dry_run ? 'would remove' : 'removed'} {env.id} (
                    {formatBytes(env.size_bytes)})
                  </li>
                ))}
                {report.kept.map(env => (
                  <li key={env.path} title={env.path}>
                    kept {env.id}: <CodeText text={env.reason} />
                  </li>
                ))}
              </ul>
              {report.dry_run && report.removed.length > 0 && (
                <button
                  className="jp-LayenvButton jp-mod-danger"
                  disabled={working}
                  onClick={() => void clean(false)}
                >
                  Remove {plural(report.removed.length, 'environment')}
                </button>
              )}
            </div>
          )}
        </>
      )}
    </section>
  );
}
