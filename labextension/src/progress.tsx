import * as React from 'react';

import { CodeText, plainText } from './codetext';
import { splitError } from './model';

/**
 * The job progress bar, in the progress view and (small) in the sidebar's job list; `pct` null: nothing measured
 * yet, an indeterminate bar (no value for assistive technology, a moving stripe instead of a width).
 */
export function ProgressBar(props: {
  pct: number | null;
  label: string;
  valueText?: string;
  small?: boolean;
}): JSX.Element {
  const { pct } = props;
  const classes = ['jp-LayenvProgress'];
  if (props.small) {
    classes.push('jp-mod-small');
  }
  if (pct === null) {
    classes.push('jp-mod-indeterminate');
  }
  return (
    <div
      className={classes.join(' ')}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct ?? undefined}
      aria-valuetext={props.valueText}
      aria-label={props.label}
    >
      <div
        className="jp-LayenvProgress-fill"
        style={pct === null ? undefined : { width: `${pct}%` }}
      />
    </div>
  );
}

/** A failed job's error: its first line, and the installer's output under "Show log" (not the whole sidebar). */
export function JobError(props: { error: string }): JSX.Element {
  const { first, rest } = splitError(props.error);
  return (
    <div className="jp-LayenvError jp-LayenvJobError" role="alert">
      <div className="jp-LayenvJobError-first" title={plainText(first)}>
        <CodeText text={first} />
      </div>
      {rest && (
        <details className="jp-LayenvJobError-log">
          <summary>Show log</summary>
          <pre>{rest}</pre>
        </details>
      )}
    </div>
  );
}
