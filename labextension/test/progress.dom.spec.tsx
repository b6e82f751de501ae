// @vitest-environment happy-dom
/** The job progress bar: determinate with a measured value, indeterminate while nothing is measured. */
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';
import { describe, expect, it } from 'vitest';

import { ProgressBar } from '../src/progress';

(
  globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }
).IS_REACT_ACT_ENVIRONMENT = true;

function bar(pct: number | null): HTMLElement {
  const host = document.createElement('div');
  act(() => createRoot(host).render(<ProgressBar pct={pct} label="p" />));
  return host.querySelector('[role="progressbar"]') as HTMLElement;
}

describe('ProgressBar', () => {
  it('shows a measured value as its width and aria-valuenow', () => {
    const el = bar(35);
    expect(el.getAttribute('aria-valuenow')).toBe('35');
    expect(el.classList.contains('jp-mod-indeterminate')).toBe(false);
    const fill = el.querySelector('.jp-LayenvProgress-fill') as HTMLElement;
    expect(fill.style.width).toBe('35%');
  });

  it('is indeterminate while nothing is measured: no value, no width', () => {
    const el = bar(null);
    expect(el.hasAttribute('aria-valuenow')).toBe(false);
    expect(el.classList.contains('jp-mod-indeterminate')).toBe(true);
    const fill = el.querySelector('.jp-LayenvProgress-fill') as HTMLElement;
    expect(fill.style.width).toBe('');
  });
});
