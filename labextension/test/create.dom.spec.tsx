// @vitest-environment happy-dom
/** The job view of the New environment panel, for a layer's package change or restore (opened from the sidebar). */
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { LayenvAPI } from '../src/api';
import { ProgressView } from '../src/create';
import type { IJob } from '../src/model';
import { LayenvStore } from '../src/store';
import { env } from './fixtures';

vi.mock('@jupyterlab/apputils', () => ({
  Dialog: {},
  ReactWidget: class {},
  showDialog: vi.fn()
}));

(
  globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }
).IS_REACT_ACT_ENVIRONMENT = true;

const container = document.createElement('div');
document.body.appendChild(container);
const root = createRoot(container);
afterEach(() => act(() => root.render(<></>)));

const layer = env({
  id: 'conda-py311_ai.byhand',
  name: 'byhand',
  path: '/home/ada/.virtualenvs/byhand',
  kind: 'layered',
  kernels: [
    {
      name: 'k',
      display_name: 'Python 3.11 (py311_ai ▸ byhand)',
      language: 'python'
    }
  ]
});

function show(job: IJob, deleted: string[] = []): string {
  const store = new LayenvStore({} as LayenvAPI);
  store.jobs = [job];
  deleted.forEach(id => store.envDeleted(id));
  act(() =>
    root.render(
      <ProgressView
        store={store}
        jobId={job.id}
        actions={{
          pickFile: async () => null,
          openNotebook: () => undefined,
          started: () => undefined
        }}
        onAnother={() => undefined}
        canEdit={false}
      />
    )
  );
  return container.textContent ?? '';
}

const done = (action: string): IJob => ({
  id: 'j',
  name: 'byhand',
  path: layer.path,
  state: 'succeeded',
  step: 'done',
  progress: 1,
  action,
  environment: layer
});

describe("a package change's job view", () => {
  it('says the packages changed and to restart its kernels, not "is ready" and "create another"', () => {
    const text = show(done('change'));
    expect(text).toContain('The packages of byhand changed');
    expect(text).toContain('Restart the kernels using byhand');
    expect(text).not.toContain('is ready');
    expect(text).not.toContain('New kernel');
    expect(text).not.toContain('Create another environment');
  });

  it('says a restore is done', () => {
    const text = show(done('restore'));
    expect(text).toContain('byhand is restored');
    expect(text).not.toContain('Create another environment');
  });

  it('a create still offers its new kernel and another environment', () => {
    const text = show(done('create'));
    expect(text).toContain('Environment byhand is ready');
    expect(text).toContain('New kernel');
    expect(text).toContain('Create another environment');
  });

  it('a create whose environment was deleted since offers no notebook on it', () => {
    const text = show(done('create'), [layer.id]);
    expect(text).toContain('byhand was deleted since');
    expect(text).not.toContain('Open a notebook with it');
    expect(container.querySelector('button.jp-mod-accept')).toBeNull();
  });

  it('a queued job says what it waits for, not "queued" twice', () => {
    const text = show({
      ...done('create'),
      state: 'queued',
      step: 'queued',
      progress: 0
    });
    expect(text).toContain('waiting for other jobs to finish');
    expect(text).not.toMatch(/queued\s*queued/);
    expect(
      container
        .querySelector('[role="progressbar"]')
        ?.getAttribute('aria-valuetext')
    ).toBe('waiting for other jobs to finish');
  });
});
