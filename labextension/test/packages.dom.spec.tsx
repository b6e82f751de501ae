// @vitest-environment happy-dom
/** The Packages view rendered (happy-dom): its History section with what the server says. */
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { LayenvAPI } from '../src/api';
import type { IEnvironmentDetails, IJob, IRevisions } from '../src/model';
import { PackagesView } from '../src/packages';
import { LayenvStore } from '../src/store';
import { env } from './fixtures';

// JupyterLab's widgets do not load outside a browser; the view itself uses only React
vi.mock('@jupyterlab/apputils', () => ({
  Dialog: { cancelButton: () => ({}), okButton: () => ({}) },
  ReactWidget: class {},
  // a confirmation dialog, accepted
  showDialog: vi.fn(async () => ({ button: { accept: true } }))
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

function store(answer: IRevisions): LayenvStore {
  return new LayenvStore(api(answer));
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
          store={store({ revisions: [], none_reason: reason })}
          env={layer}
        />
      )
    );
    expect(history()).toContain(reason);
    expect(history()).not.toContain('No revisions recorded.');
  });

  it('says no revisions are recorded when an older server gives no reason', async () => {
    await act(async () =>
      root.render(<PackagesView store={store({ revisions: [] })} env={layer} />)
    );
    expect(history()).toContain('No revisions recorded.');
  });

  it("follows a slow change: progress, live log, in the sidebar's jobs, and Cancel stops it", async () => {
    const revision = {
      revision: 1,
      created: '2026-12-07T10:00:00Z',
      user: 'ada',
      request: { action: 'create' },
      lock: [],
      base_fingerprint: null,
      base_changed: false
    };
    let state: IJob = {
      id: 'j9',
      name: 'byhand',
      path: layer.path,
      action: 'restore',
      state: 'running',
      step: 'install',
      progress: 0.35,
      created: 1
    };
    const cancelJob = vi.fn(async () => {
      state = { ...state, state: 'cancelled', finished: 2 };
      return state;
    });
    const fake = {
      getEnvironment: async () => ({
        ...details,
        packages: {
          ...details.packages,
          layer: [{ name: 'iniconfig', version: '2.0.0' }]
        }
      }),
      planChange: async () => ({
        install: [],
        remove: [{ name: 'iniconfig', version: '2.0.0' }],
        shadow: [],
        kept_from_base: []
      }),
      listRevisions: async () => ({
        revisions: [{ ...revision, revision: 2 }, revision]
      }),
      listEnvironments: async () => ({ environments: [], skipped: [] }),
      listJobs: async () => [state],
      getPolicy: async () => null,
      restoreRevision: async () => state,
      getJob: async () => state,
      getLog: async (_id: string, offset: number) => {
        const text = 'Building wheel for slowbuild\n';
        return { text: text.slice(offset), next: text.length };
      },
      cancelJob
    } as unknown as LayenvAPI;
    const shared = new LayenvStore(fake);
    shared.pollInterval = 20;
    await act(async () =>
      root.render(<PackagesView store={shared} env={layer} />)
    );
    const restore = container.querySelector(
      'button[aria-label="Restore revision 1"]'
    ) as HTMLButtonElement;
    expect(restore).not.toBeNull();
    await act(async () => {
      restore.click();
      await new Promise(resolve => setTimeout(resolve, 100));
    });
    const job = container.querySelector(
      '.jp-LayenvPackages-job'
    ) as HTMLElement;
    expect(
      job.querySelector('[role="progressbar"]')?.getAttribute('aria-valuenow')
    ).toBe('35');
    expect(job.querySelector('.jp-LayenvLog pre')?.textContent).toContain(
      'Building wheel for slowbuild'
    );
    // the sidebar's store lists it at once
    expect(shared.job('j9')?.state).toBe('running');
    const cancel = Array.from(job.querySelectorAll('button')).find(
      b => b.textContent === 'Cancel'
    ) as HTMLButtonElement;
    expect(cancel).toBeDefined();
    await act(async () => {
      cancel.click();
      await new Promise(resolve => setTimeout(resolve, 100));
    });
    expect(cancelJob).toHaveBeenCalledWith('j9');
    expect(
      container.querySelector('.jp-LayenvPackages-job .jp-LayenvBadge')
        ?.textContent
    ).toBe('cancelled');
    const add = container.querySelector(
      'input[aria-label="Packages to add"]'
    ) as HTMLInputElement;
    expect(add.disabled).toBe(false);
    // the next preview: the ended job's line (its "cancelled", its log) goes, it is not this plan's
    const remove = container.querySelector(
      'button[aria-label="Remove iniconfig"]'
    ) as HTMLButtonElement;
    await act(async () => {
      remove.click();
      await new Promise(resolve => setTimeout(resolve, 20));
    });
    expect(container.querySelector('.jp-LayenvPlan')).not.toBeNull();
    expect(container.querySelector('.jp-LayenvPackages-job')).toBeNull();
    shared.dispose();
  });

  it("shows a refused plan's first line, the resolver's explanation under Show log", async () => {
    const message =
      'the packages cannot be installed (no versions satisfy the request): No solution found when resolving ' +
      'dependencies: Because nope was not found in the provided package locations, we can conclude that your ' +
      'requirements are unsatisfiable.\n  cause: Because nope was not found in the provided package locations';
    const fake = {
      getEnvironment: async () => ({
        ...details,
        packages: {
          ...details.packages,
          layer: [{ name: 'iniconfig', version: '2.0.0' }]
        }
      }),
      listRevisions: async () => ({ revisions: [] }),
      planChange: async () => {
        throw new Error(message);
      }
    } as unknown as LayenvAPI;
    await act(async () =>
      root.render(<PackagesView store={new LayenvStore(fake)} env={layer} />)
    );
    const remove = container.querySelector(
      'button[aria-label="Remove iniconfig"]'
    ) as HTMLButtonElement;
    await act(async () => {
      remove.click();
      await new Promise(resolve => setTimeout(resolve, 20));
    });
    const error = container.querySelector('[role="alert"]') as HTMLElement;
    expect(error.querySelector('.jp-LayenvJobError-first')?.textContent).toBe(
      message.split('\n')[0]
    );
    const log = error.querySelector('details');
    expect(log?.open).toBe(false);
    expect(log?.textContent).toContain('cause: Because nope');
  });

  it('opened again while a change of its layer runs: shows that job, with Cancel', async () => {
    const running: IJob = {
      id: 'j7',
      name: 'byhand',
      path: layer.path,
      action: 'change',
      state: 'running',
      step: 'install',
      progress: 0.6,
      created: 1
    };
    const fake = {
      getEnvironment: async () => details,
      listRevisions: async () => ({ revisions: [] }),
      getJob: async () => running,
      getLog: async () => ({ text: 'Building slowbuild\n', next: 18 })
    } as unknown as LayenvAPI;
    const shared = new LayenvStore(fake);
    shared.pollInterval = 20;
    // another layer's job, and this layer's create that ended, are not this view's
    shared.jobs = [
      { ...running, id: 'other', path: '/home/ada/.virtualenvs/other' },
      running,
      { ...running, id: 'old', action: 'create', state: 'succeeded' }
    ];
    await act(async () => {
      root.render(<PackagesView store={shared} env={layer} />);
      await new Promise(resolve => setTimeout(resolve, 100));
    });
    const job = container.querySelector(
      '.jp-LayenvPackages-job'
    ) as HTMLElement;
    expect(job).not.toBeNull();
    expect(job.textContent).toContain('install');
    expect(
      Array.from(job.querySelectorAll('button')).some(
        b => b.textContent === 'Cancel'
      )
    ).toBe(true);
    expect(
      (
        container.querySelector(
          'input[aria-label="Packages to add"]'
        ) as HTMLInputElement
      ).disabled
    ).toBe(true);
    shared.dispose();
  });
});
