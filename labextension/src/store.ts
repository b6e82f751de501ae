/**
 * State shared by the sidebar and the create/progress panels: the listing, the caller's jobs and the
 * followers of the running ones (one per job, whatever number of views show it).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { LayenvAPI } from './api';
import {
  errorMessage,
  IFollowUpdate,
  IJob,
  IListing,
  IPolicy,
  isFinal,
  JobFollower
} from './model';

export class LayenvStore {
  constructor(
    readonly api: LayenvAPI,
    private readonly _onSucceeded: (job: IJob) => Promise<void> = async () =>
      undefined
  ) {}

  listing: IListing | null = null;
  /**
   * GET policy: what the caller may do. null until loaded, and on a server without the endpoint (then the
   * panel offers everything, as before, and the server's refusals are shown where they apply).
   */
  policy: IPolicy | null = null;
  error: string | null = null;
  loading = false;
  jobs: IJob[] = [];
  pollInterval = 500;
  /** The log text received so far, per job. */
  readonly logs = new Map<string, string>();
  readonly followErrors = new Map<string, string>();
  /** Envs deleted from this page: the job views that made them stop offering a notebook on them. */
  readonly deletedEnvs = new Set<string>();
  private _followers = new Map<string, JobFollower>();
  private _changed = new Signal<this, void>(this);
  private _jobChanged = new Signal<this, IFollowUpdate>(this);
  private _refreshing: Promise<void> | null = null;
  /** How long kernels must stay as they are before the listing is read again (ms). */
  kernelsSettle = 1000;
  private _kernelsTimer: ReturnType<typeof setTimeout> | null = null;
  private _listing: Promise<void> | null = null;
  private _listingAgain = false;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get jobChanged(): ISignal<this, IFollowUpdate> {
    return this._jobChanged;
  }

  /** Jobs that a job works on (their env path), so actions on them wait. */
  get busyPaths(): Set<string> {
    return new Set(
      this.jobs
        .filter(job => !isFinal(job) && job.path)
        .map(job => job.path as string)
    );
  }

  envDeleted(envId: string): void {
    this.deletedEnvs.add(envId);
    this._changed.emit();
  }

  job(id: string): IJob | undefined {
    return this.jobs.find(job => job.id === id);
  }

  refresh(): Promise<void> {
    if (!this._refreshing) {
      this._refreshing = this._refresh().finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  /**
   * Kernels started or shut down: which envs may be deleted changed (the listing's `delete_blocked_reason`), not
   * the policy or the jobs. The listing alone is read again, once the kernels stay as they are for
   * `kernelsSettle` ms: five kernels started together make one request, not five of each endpoint.
   */
  kernelsChanged(): void {
    if (this._kernelsTimer !== null) {
      clearTimeout(this._kernelsTimer);
    }
    this._kernelsTimer = setTimeout(() => {
      this._kernelsTimer = null;
      void this._relist();
    }, this.kernelsSettle);
  }

  /** GET environments, once at a time; asked again meanwhile: once more after it (it may predate the change). */
  private _relist(): Promise<void> {
    if (this._listing) {
      this._listingAgain = true;
      return this._listing;
    }
    this._listing = (async () => {
      do {
        this._listingAgain = false;
        try {
          this.listing = await this.api.listEnvironments();
          this.error = null;
        } catch (error) {
          this.error = errorMessage(error);
        }
        this._changed.emit();
      } while (this._listingAgain);
    })().finally(() => {
      this._listing = null;
    });
    return this._listing;
  }

  private async _refresh(): Promise<void> {
    this.loading = true;
    this._changed.emit();
    try {
      const [listing, jobs, policy] = await Promise.all([
        this.api.listEnvironments(),
        this.api.listJobs().catch(() => this.jobs),
        this.api.getPolicy().catch((error: unknown) => {
          // 404: a server without the endpoint; anything else: keep what applied (a passing failure).
          return (error as { status?: number })?.status === 404
            ? null
            : this.policy;
        })
      ]);
      this.listing = listing;
      this.policy = policy;
      this.error = null;
      this._mergeJobs(jobs);
      // A job started in an earlier page (or another tab) keeps being followed here.
      for (const job of this.jobs) {
        if (!isFinal(job)) {
          this.follow(job.id);
        }
      }
    } catch (error) {
      this.error = errorMessage(error);
    } finally {
      this.loading = false;
      this._changed.emit();
    }
  }

  private _mergeJobs(jobs: IJob[]): void {
    const byId = new Map(this.jobs.map(job => [job.id, job]));
    for (const job of jobs) {
      const known = byId.get(job.id);
      // A follower's state is fresher than the listing's (and it must see the end itself).
      if (!known || !this._followers.has(job.id)) {
        byId.set(job.id, job);
      }
    }
    this.jobs = Array.from(byId.values()).sort(
      (a, b) => (b.created ?? 0) - (a.created ?? 0)
    );
  }

  addJob(job: IJob): void {
    this._mergeJobs([job]);
    this._changed.emit();
    this.follow(job.id);
  }

  /** Follow a job (idempotent). Reads its log from the start the first time in this page. */
  follow(jobId: string): void {
    const existing = this._followers.get(jobId);
    if (existing && !existing.stopped) {
      return;
    }
    if (existing && existing.job && isFinal(existing.job)) {
      return;
    }
    if (!existing) {
      this.logs.set(jobId, '');
    }
    const follower = new JobFollower(
      this.api,
      jobId,
      update => this._onUpdate(update),
      this.pollInterval,
      error => {
        this.followErrors.set(jobId, errorMessage(error));
        this._changed.emit();
      }
    );
    if (existing) {
      follower.offset = existing.offset;
    }
    this._followers.set(jobId, follower);
    follower.start();
  }

  private _onUpdate(update: IFollowUpdate): void {
    const { job, log } = update;
    const before = this.job(job.id);
    this.followErrors.delete(job.id);
    if (log) {
      this.logs.set(job.id, (this.logs.get(job.id) ?? '') + log);
    }
    this.jobs = this.jobs.some(j => j.id === job.id)
      ? this.jobs.map(j => (j.id === job.id ? job : j))
      : [job, ...this.jobs];
    const justFinished = isFinal(job) && !!before && !isFinal(before);
    this._jobChanged.emit(update);
    this._changed.emit();
    if (justFinished) {
      void this._finished(job);
    }
  }

  private async _finished(job: IJob): Promise<void> {
    if (job.state === 'succeeded') {
      try {
        await this._onSucceeded(job);
      } catch (error) {
        console.warn('jupyter_layenv: kernelspec refresh failed', error);
      }
    }
    await this.refresh();
  }

  async cancel(jobId: string): Promise<void> {
    const job = await this.api.cancelJob(jobId);
    this._mergeJobs([job]);
    this._changed.emit();
  }

  dispose(): void {
    if (this._kernelsTimer !== null) {
      clearTimeout(this._kernelsTimer);
    }
    for (const follower of this._followers.values()) {
      follower.stop();
    }
    this._followers.clear();
  }
}
