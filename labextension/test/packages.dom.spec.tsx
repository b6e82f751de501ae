// @vitest-environment happy-dom
/** The Packages view rendered (happy-dom): its History section with what the server says. */
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { LayenvAPI } from '../src/api';
import type { IEnvironmentDetails, IRevisions } from '../src/model';
import { PackagesView } from '../src/packages';
import { env } from './fixtures';

// JupyterLab's widgets do not load outside a browser; the view itself uses only React
vi.mock('@jupyterlab/apputils', () => ({
  Dialog: {},
  ReactWidget: class {},
  showDialog: vi.fn()
}));

(
  globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }
).IS_REACT_ACT_ENVIRONMENT = true;

const layer = env({
  id: 'conda-py311_ai.byhand',
  name: 'byhand',
  path: '/home/ada/.virtualenvs/byhand',
  kind: 'layered'
});
const details: IEnvironmentDetails = {
  ...layer,
  packages: { layer: [], inherited: [], shadowed: [] }
};

function api(answer: IRevisions): LayenvAPI {
  return {
    getEnvironment: async () => details,
    listRevisions: async () => answer
  } as unknown as LayenvAPI;
}

const container = document.createElement('div');
document.body.appendChild(container);
const root = createRoot(container);
afterEach(() => act(() => root.render(<></>)));

function history(): string {
  return (
    container.querySelector('section[aria-label="History"]')?.textContent ?? ''
  );
}

describe('the Packages view', () => {
  it("shows why an env has no revisions where its history would be (the server's none_reason)", async () => {
    const reason =
      'byhand has no revisions (made before jupyter_layenv recorded them, or not by it)';
    await act(async () =>
      root.render(
        <PackagesView
          api={api({ revisions: [], none_reason: reason })}
          env={layer}
          onChanged={() => undefined}
        />
      )
    );
    expect(history()).toContain(reason);
    expect(history()).not.toContain('No revisions recorded.');
  });

  it('says no revisions are recorded when an older server gives no reason', async () => {
    await act(async () =>
      root.render(
        <PackagesView
          api={api({ revisions: [] })}
          env={layer}
          onChanged={() => undefined}
        />
      )
    );
    expect(history()).toContain('No revisions recorded.');
  });
});
