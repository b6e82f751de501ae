import { describe, expect, it, vi } from 'vitest';

import type { LayenvAPI } from '../src/api';
import { IJob, IListing, IPolicy } from '../src/model';
import { LayenvStore } from '../src/store';
import { policy } from './fixtures';

/** The API with its network replaced: a job that runs through `states`, and a log growing with them. */
function fakeApi(
  states: IJob[],
  log: string,
  listing: IListing,
  jobs: IJob[] = []
) {
  let step = 0;
  const api = {
    listEnvironments: vi.fn(async () => listing),
    listJobs: vi.fn(async () => jobs),
    getJob: vi.fn(async () => states[Math.min(step++, states.length - 1)]),
    getLog: vi.fn(async (_id: string, offset: number) => {
      const shown = Math.min(
        log.length,
        Math.ceil((log.length * step) / states.length)
      );
      return { text: log.slice(offset, shown), next: Math.max(offset, shown) };
    }),
    cancelJob: vi.fn(async () => ({ ...states[0], state: 'cancelled' })),
    getPolicy: vi.fn(async (): Promise<IPolicy> => POLICY)
  };
  return api;
}

const job = (
  state: string,
  progress: number,
  extra: Partial<IJob> = {}
): IJob => ({
  id: 'j1',
  name: 'myexp',
  path: '/home/ada/.virtualenvs/myexp',
  state,
  step: state,
  progress,
  created: 1,
  ...extra
});

const LISTING: IListing = { environments: [], skipped: [] };
const POLICY = policy({
  can_create: false,
  create_refused:
    'LayenvPolicy.max_envs_per_user: you own 5 environments, the most allowed; delete one first',
  max_envs_per_user: 5,
  envs_owned: 5
});

describe('LayenvStore', () => {
  it('follows a new job to the end: whole log, kernelspecs refreshed once, listing reloaded', async () => {
    vi.useFakeTimers();
    const api = fakeApi(
      [
        job('queued', 0),
        job('running', 0.4),
        job('running', 0.8),
        job('succeeded', 1)
      ],
      'creating\ninstalling iniconfig\ndone\n',
      LISTING
    );
    const succeeded = vi.fn(async () => undefined);
    const store = new LayenvStore(api as unknown as LayenvAPI, succeeded);
    store.pollInterval = 100;
    store.addJob(job('queued', 0));
    expect(store.busyPaths.has('/home/ada/.virtualenvs/myexp')).toBe(true);
    await vi.runAllTimersAsync();
    vi.useRealTimers();
    expect(store.job('j1')?.state).toBe('succeeded');
    expect(store.logs.get('j1')).toBe('creating\ninstalling iniconfig\ndone\n');
    expect(succeeded).toHaveBeenCalledTimes(1);
    expect(api.listEnvironments).toHaveBeenCalled();
    expect(store.busyPaths.size).toBe(0);
  });

  it('after a reload, refresh() finds the running job and follows it', async () => {
    vi.useFakeTimers();
    const api = fakeApi(
      [job('running', 0.5), job('failed', 0.5, { error: 'no such package' })],
      'x\n',
      LISTING,
      [job('running', 0.5)]
    );
    const succeeded = vi.fn(async () => undefined);
    const store = new LayenvStore(api as unknown as LayenvAPI, succeeded);
    store.pollInterval = 100;
    await store.refresh();
    expect(store.jobs.map(j => j.id)).toEqual(['j1']);
    await vi.runAllTimersAsync();
    vi.useRealTimers();
    expect(store.job('j1')?.state).toBe('failed');
    expect(store.job('j1')?.error).toBe('no such package');
    expect(succeeded).not.toHaveBeenCalled();
  });

  it('a finished job opened again is read once, not re-announced', async () => {
    vi.useFakeTimers();
    const done = job('succeeded', 1);
    const api = fakeApi([done], 'all of it\n', LISTING, [done]);
    const succeeded = vi.fn(async () => undefined);
    const store = new LayenvStore(api as unknown as LayenvAPI, succeeded);
    await store.refresh();
    store.follow('j1');
    await vi.runAllTimersAsync();
    store.follow('j1');
    await vi.runAllTimersAsync();
    vi.useRealTimers();
    expect(store.logs.get('j1')).toBe('all of it\n');
    expect(api.getJob).toHaveBeenCalledTimes(1);
    expect(succeeded).not.toHaveBeenCalled();
  });

  it('shows why the listing failed', async () => {
    const api = fakeApi([job('queued', 0)], '', LISTING);
    api.listEnvironments.mockRejectedValueOnce(
      new Error('404: is the server extension enabled?')
    );
    const store = new LayenvStore(api as unknown as LayenvAPI);
    await store.refresh();
    expect(store.error).toMatch(/server extension/);
    await store.refresh();
    expect(store.error).toBeNull();
    expect(store.listing).toBe(LISTING);
  });

  it('loads the policy with the listing; keeps it over a passing failure; none from a server without it', async () => {
    const api = fakeApi([job('queued', 0)], '', LISTING);
    const store = new LayenvStore(api as unknown as LayenvAPI);
    await store.refresh();
    expect(store.policy?.create_refused).toMatch(/max_envs_per_user/);
    api.getPolicy.mockRejectedValueOnce(
      Object.assign(new Error('502 Bad Gateway'), { status: 502 })
    );
    await store.refresh();
    expect(store.policy).toBe(POLICY);
    expect(store.error).toBeNull();
    api.getPolicy.mockRejectedValueOnce(
      Object.assign(new Error('no such endpoint'), { status: 404 })
    );
    await store.refresh();
    expect(store.policy).toBeNull();
    expect(store.listing).toBe(LISTING);
  });

  it('kernels starting one after another: the listing once they settle, never the policy or the jobs', async () => {
    vi.useFakeTimers();
    const api = fakeApi([job('queued', 0)], '', LISTING);
    const store = new LayenvStore(api as unknown as LayenvAPI);
    // five kernels started 200 ms apart: runningChanged fires five times
    for (let i = 0; i < 5; i++) {
      store.kernelsChanged();
      await vi.advanceTimersByTimeAsync(200);
    }
    expect(api.listEnvironments).not.toHaveBeenCalled();
    await vi.runAllTimersAsync();
    vi.useRealTimers();
    expect(api.listEnvironments).toHaveBeenCalledTimes(1);
    expect(api.getPolicy).not.toHaveBeenCalled();
    expect(api.listJobs).not.toHaveBeenCalled();
    expect(store.listing).toBe(LISTING);
  });

  it('a kernel change while the listing is read: read once more after it, not lost', async () => {
    vi.useFakeTimers();
    const api = fakeApi([job('queued', 0)], '', LISTING);
    let answer: (listing: IListing) => void = () => undefined;
    api.listEnvironments.mockImplementationOnce(
      () => new Promise<IListing>(resolve => (answer = resolve))
    );
    const store = new LayenvStore(api as unknown as LayenvAPI);
    store.kernelsChanged();
    await vi.advanceTimersByTimeAsync(5000);
    expect(api.listEnvironments).toHaveBeenCalledTimes(1);
    store.kernelsChanged(); // a kernel shut down while the first listing is on its way
    await vi.advanceTimersByTimeAsync(5000);
    answer({ environments: [], skipped: [] });
    await vi.runAllTimersAsync();
    vi.useRealTimers();
    expect(api.listEnvironments).toHaveBeenCalledTimes(2);
    expect(store.listing).toBe(LISTING);
  });
});
