// @vitest-environment happy-dom
/** The Storage section rendered (happy-dom): what it computes once per GET usage answer and filter. */
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { IUsage } from '../src/model';
import { StorageSection } from '../src/storage';
import type { LayenvStore } from '../src/store';
import * as usageModule from '../src/usage';

vi.mock('../src/usage', async importOriginal => {
  const real = await importOriginal<typeof usageModule>();
  return { ...real, usageShown: vi.fn(real.usageShown) };
});

(
  globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }
).IS_REACT_ACT_ENVIRONMENT = true;

const usage: IUsage = {
  user: 'ada',
  total_bytes: 2048,
  measuring: 0,
  roots: [
    {
      root: '/srv/envs',
      kind: 'folder',
      source: 'configured',
      scope: 'user',
      size_bytes: 2048,
      shared_bytes: 0,
      environments: 1,
      owners: []
    }
  ],
  environments: [
    {
      id: 'a',
      name: 'a',
      path: '/srv/envs/a',
      owner: 'ada',
      root: '/srv/envs',
      size_bytes: 2048,
      last_used: null,
      last_used_by: null
    }
  ]
};
const store = {
  api: { getUsage: async () => usage },
  listing: null
} as unknown as LayenvStore;

const container = document.createElement('div');
document.body.appendChild(container);
const root = createRoot(container);
afterEach(() => act(() => root.render(<></>)));

describe('StorageSection', () => {
  it('works out what it shows once per GET usage answer and filter, not on every render', async () => {
    const shown = new Set(['/srv/envs/a']);
    await act(async () =>
      root.render(<StorageSection store={store} shown={shown} />)
    );
    await act(async () =>
      (container.querySelector('button') as HTMLButtonElement).click()
    );
    expect(container.textContent).toContain('2.0 KiB in 1 of 1 environment');
    const spy = vi.mocked(usageModule.usageShown);
    const calls = spy.mock.calls.length;
    expect(calls).toBeGreaterThan(0);
    // the sidebar re-renders on every poll of a running job: the same usage and filter
    for (let i = 0; i < 3; i++) {
      await act(async () =>
        root.render(<StorageSection store={store} shown={shown} />)
      );
    }
    expect(spy.mock.calls.length).toBe(calls);
    // a new filter is worked out again
    await act(async () =>
      root.render(<StorageSection store={store} shown={null} />)
    );
    expect(spy.mock.calls.length).toBe(calls + 1);
    expect(container.textContent).toContain('2.0 KiB in 1 environment');
  });
});
