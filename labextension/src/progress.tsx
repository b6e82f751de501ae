import * as React from 'react';

/** The job progress bar, in the progress view and (small) in the sidebar's job list. */
export function ProgressBar(props: {
  pct: number;
  label: string;
  valueText?: string;
  small?: boolean;
}): JSX.Element {
  return (
    <div
      className={
        props.small ? 'jp-LayenvProgress jp-mod-small' : 'jp-LayenvProgress'
      }
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={props.pct}
      aria-valuetext={props.valueText}
      aria-label={props.label}
    >
      <div
        className="jp-LayenvProgress-fill"
        style={{ width: `${props.pct}%` }}
      />
    </div>
  );
}
