"""The job queue: each create is a job with steps, a progress fraction and a log a client can follow.

A job holds its env's file lock from submit to end. Its record and log are kept by :mod:`.jobstore`; what a
dead process's jobs left behind is cleaned up by :mod:`.recovery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ..layers import revisions
from ..layers.apply import install_argv, layer_state
from ..layers.change import SNAPSHOT_DIR, ChangePlan, restore_snapshot, run_change
from ..layers.plan import LayerPlan, Pin, PlanError, plan_change
from ..layers.resolve import ToolResolver
from . import builder, conda
from .conda import CondaPlan
from .disk import (
    NOTHING_KEPT,
    UNCHANGED,
    full_at,
    is_no_space,
    is_read_only,
    mentions_no_space,
    no_space_message,
    read_only_message,
)
from .installers import InstallerSettings, installer_environment
from .jobstore import ACTIVE, Job, JobStore
from .locks import EnvLock, PlantedLink
from .needed import packages_needed
from .process import error_line, run_logged
from .recovery import AGAIN, HALF_MADE_KEPT, PUT_BACK, recover_job


class JobConflict(Exception):
    """The env exists, or a job (here or in another process) is working on it."""


Register = Callable[[Job], Awaitable[dict[str, Any]]]
Finished = Callable[[Job], None]  # a job ended: one of this server's, or a dead process's that it recovered


class JobManager:
    """Runs at most ``concurrency`` builds at once; one job per env path across every process sharing the root."""

    def __init__(
        self,
        store: JobStore,
        *,
        concurrency: int,
        settings: InstallerSettings,
        register: Register,
        on_finished: Finished,
        log: logging.Logger,
    ) -> None:
        self.store = store
        self.settings = settings
        self._register = register
        self._on_finished = on_finished
        self.log = log
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._paths: set[str] = set()
        self._outcome: dict[str, tuple[str, str | None]] = {}  # job id -> (state, error) when stopped on purpose
        self._needed: dict[str, str] = {}  # job id -> what its install needed, where known (for a full disk)
        self._unsaved: set[str] = set()  # finished jobs whose file could not be written (a full disk): retried
        self._locks: dict[str, EnvLock] = {}  # the running jobs' env locks

    # -- queries --------------------------------------------------------------------------------------

    def busy(self, path: str) -> bool:
        return path in self._paths

    def building_on(self, path: str) -> list[str]:
        """The layers this server's queued and running jobs build or change on the env at ``path``."""
        return [job.name for job in self._jobs.values() if job.state in ACTIVE and job.base == path]

    def active_plans(self) -> list[dict[str, Any]]:
        """What the queued and running jobs of this server are building."""
        return [job.plan for job in self._jobs.values() if job.state in ACTIVE]

    async def get(self, job_id: str) -> Job | None:
        await self._repaired()
        return self._jobs.get(job_id) or await asyncio.to_thread(self.store.load, job_id)

    async def newest_first(self) -> list[Job]:
        stored = await self._repaired()
        live = {job.id: job for job in stored} | self._jobs
        return sorted(live.values(), key=lambda job: job.created, reverse=True)

    async def _repaired(self) -> list[Job]:
        """The stored jobs after :meth:`_repair`; a dead process's job failed here ends as at a start (audited)."""
        stored, recovered = await asyncio.to_thread(self._repair)
        for job in recovered:
            self._on_finished(job)
        return stored

    def _repair(self) -> tuple[list[Job], list[Job]]:
        """Memory and disk agree again: finished jobs whose file a full disk kept stale are written now, and a
        stored job still "running" whose process is gone (its lock free) is failed as at a server start.

        Returns the stored jobs and those this call failed (a job another server recovered first is not among
        them: its lock and a re-read of its record under it make every job recovered once)."""
        for job_id in list(self._unsaved):
            try:
                self.store.save(self._jobs[job_id])
                self._unsaved.discard(job_id)
            except OSError:
                break  # still full: the next read tries again; memory has the truth meanwhile
        stored = self.store.load_all()
        recovered = []
        for job in stored:
            if job.state in ACTIVE and job.id not in self._jobs:
                with contextlib.suppress(OSError):
                    if recover_job(self.store, job, self.log):
                        recovered.append(job)
        return stored, recovered

    # -- submitting and running -----------------------------------------------------------------------

    async def submit(self, plan: builder.BuildPlan | CondaPlan, base: str) -> Job:
        """Queue a build; :class:`JobConflict` at once when the env exists or is being made anywhere."""
        if plan.path in self._paths:
            raise JobConflict(f"{plan.name} is being created right now; wait for that job or pick another name")
        self._paths.add(plan.path)
        job = Job(id=uuid.uuid4().hex, name=plan.name, path=plan.path, base=base, user=plan.creator,
                  plan=plan.to_json())  # fmt: skip
        lock = None
        reserved = False
        try:
            lock = await asyncio.to_thread(EnvLock.try_acquire, plan.path)
            if lock is None:
                raise JobConflict(f"{plan.name} is being created by another process; wait or pick another name")
            if not await asyncio.to_thread(builder.reserve, plan.path, plan.group_gid, job.id):
                raise JobConflict(f"{plan.path} exists already; pick another name or delete that environment")
            reserved = True
            await asyncio.to_thread(self.store.save, job)
        except BaseException as err:
            self._paths.discard(plan.path)
            if reserved:  # nothing half-made left, the name free
                await asyncio.to_thread(builder.remove_half_made, plan.path, job.id)
            if lock is not None:
                await asyncio.to_thread(lock.release)
            if is_no_space(err):
                where = getattr(err, "filename", None) or await asyncio.to_thread(self._fuller, plan.path)
                raise full_at(err, str(where)) from None
            raise
        self._start(job, lock, lambda: self._build(job, plan), lambda: self._clean(job))
        return job

    async def submit_then(self, job: Job, plan: builder.BuildPlan) -> Job:
        """Queue the layer a base job was built for (an environment.yml's); the base job names it (``then.job``)."""
        layer = await self.submit(plan, base=plan.base_path)
        job.plan["next_job"] = layer.id
        return layer

    def then_refused(self, job: Job, error: str) -> None:
        """The layer a base job was built for was refused: the base job says why (``then.error``)."""
        job.plan["then_error"] = error

    async def submit_change(self, change: ChangePlan) -> Job:
        """Queue a change of an existing layer; :class:`JobConflict` at once when a job works on it anywhere."""
        if change.path in self._paths:
            raise JobConflict(f"a job is working on {change.name} right now; wait for it or cancel it")
        try:
            lock = await asyncio.to_thread(EnvLock.try_acquire, change.path)
        except PlantedLink as err:
            raise JobConflict(str(err)) from None
        if lock is None:
            raise JobConflict(f"another process is working on {change.name}; try again when it is done")
        job = Job(id=uuid.uuid4().hex, name=change.name, path=change.path, base=change.base_path or "",
                  user=change.creator, plan=change.to_json())  # fmt: skip
        try:
            await asyncio.to_thread(self.store.save, job)
        except BaseException as err:
            await asyncio.to_thread(lock.release)
            if is_no_space(err):  # the layer is untouched: nothing was snapshotted yet
                where = getattr(err, "filename", None) or self.store.directory
                raise full_at(err, str(where), outcome=UNCHANGED) from None
            raise
        self._paths.add(change.path)
        self._start(job, lock, lambda: run_change(self, job, change), lambda: self._undo(job))
        return job

    def _start(
        self, job: Job, lock: EnvLock, work: Callable[[], Awaitable[None]], clean: Callable[[], Awaitable[str | None]]
    ) -> None:
        self._jobs[job.id] = job
        self._locks[job.id] = lock
        self._tasks[job.id] = asyncio.create_task(self._run(job, lock, work, clean), name=f"layenv-job-{job.id}")

    async def _run(
        self, job: Job, lock: EnvLock, work: Callable[[], Awaitable[None]], clean: Callable[[], Awaitable[str | None]]
    ) -> None:
        # A client sees the final state only once the half-made env is gone and the log is complete.
        outcome: tuple[str, str | None] = ("succeeded", None)
        logged = False  # the error is a failed command's, whose output is in the log already
        try:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self._concurrency)
            async with self._slots:
                job.state = "running"
                await work()
        except asyncio.CancelledError:
            outcome = self._outcome.pop(job.id, ("cancelled", None))
            await clean()
        except Exception as err:
            outcome = ("failed", await asyncio.to_thread(self._failure, job, err))
            logged = isinstance(err, StepFailed) and outcome[1] == str(err)  # not rewritten (a full disk)
            if not isinstance(err, (StepFailed, NotRegistered)) and not is_no_space(err):
                self.log.exception("jupyter_layenv: job %s (%s) failed", job.id, job.path)
            undone = await clean()
            if undone:  # the error said the env was built: it says now that it is gone again
                outcome = ("failed", f"{outcome[1]}; {undone}")
        finally:
            if outcome[0] == "succeeded":
                job.step, job.progress = "done", 1.0
            job.finished, job.pid = time.time(), None
            try:
                await asyncio.to_thread(self._finish_files, job, lock, outcome, logged)
            finally:  # whatever the disk says: the name is free and the end is recorded
                # in one step on the event loop: a client that sees the job ended may at once start another
                job.state, job.error = outcome
                self._paths.discard(job.path)
                self._needed.pop(job.id, None)
                self._tasks.pop(job.id, None)
                self._locks.pop(job.id, None)
                self._on_finished(job)

    def _failure(self, job: Job, err: Exception) -> str:
        """The job's error; a full disk (the env's root, or the job store) is named with what is free there."""
        message = str(err) or type(err).__name__
        needed = self._needed.get(job.id)
        outcome = UNCHANGED if job.plan.get("kind") == "change" else NOTHING_KEPT  # a change is undone, not removed
        if is_no_space(err):
            where = getattr(err, "filename", None) or self._fuller(job.path)
            quota = err.errno != errno.ENOSPC  # type: ignore[attr-defined]
            return no_space_message(str(where), quota=quota, needed=needed, outcome=outcome)
        if mentions_no_space(message):  # an installer's write failed: say where, the fuller of the two places
            where = self._fuller(job.path)
            return f"{no_space_message(where, quota='quota' in message, needed=needed, outcome=outcome)} ({message})"
        if is_read_only(err, message):  # what became of the env is added once the clean-up has tried
            return f"{read_only_message(job.path)} ({message})"
        return message

    def _fuller(self, env_path: str) -> str:
        """Of the env's root and the job store, the one with less space left: the one that filled up."""
        return min((env_path, self.store.directory), key=_free_bytes)

    def _finish_files(self, job: Job, lock: EnvLock, outcome: tuple[str, str | None], logged: bool = False) -> None:
        state, error = outcome
        try:
            # a failed command's output is in the log already: the trailer does not print it a second time
            self.store.append_log(job.id, f"\n== {state}{f': {error}' if error and not logged else ''}\n")
            self.store.save(dataclasses.replace(job, state=state, error=error))
        except OSError as err:
            self._unsaved.add(job.id)  # memory has the truth; the file is repaired at the next read
            self.log.error("jupyter_layenv: job %s %s, but its record could not be written: %s", job.id, state, err)
        finally:
            shutil.rmtree(self.store.work_dir(job.id), ignore_errors=True)
            lock.release()
        with contextlib.suppress(OSError):
            self.store.prune()

    async def _build(self, job: Job, plan: builder.BuildPlan | CondaPlan) -> None:
        if isinstance(plan, CondaPlan):
            await self._build_conda(job, plan)
            return
        env = installer_environment(self.settings)
        if plan.environment_yml:  # which base the file chose, and why
            await asyncio.to_thread(self.store.append_log, job.id, f"# {plan.environment_yml['summary']}\n")
        await self.step(job, "create", 0.05)
        await self.command(job, "virtualenv", builder.virtualenv_command(plan), env, plan.umask)
        installed: tuple[Pin, ...] = ()
        if plan.requirements:
            await asyncio.to_thread(self.store.append_log, job.id, "".join(f"#   {s}\n" for s in plan.requirements))
            await self.step(job, "resolve", 0.25)
            base = plan.base_path if plan.inherit else None
            layer_plan = await self.plan_layer(job, plan.python, plan.python_version, base, plan.path, plan.installer,
                                               plan.uv, add=plan.requirements, options=plan.options)  # fmt: skip
            installed = layer_plan.install
            if installed:
                await self.step(job, "install", 0.35)
                await self.install(job, plan.installer, plan.uv, plan.python, installed, plan.options, plan.umask)
        await self.step(job, "register", 0.9)
        request = {"action": "create", "add": list(plan.requested), "remove": []}
        await asyncio.to_thread(self.record, job, plan.path, plan.python_version,
                                plan.base_path if plan.inherit else None, request, installed, {})  # fmt: skip
        await asyncio.to_thread(builder.finish, plan, job.id)
        job.environment = await self._register(job)

    async def _build_conda(self, job: Job, plan: CondaPlan) -> None:
        """Solve and install with py-rattler in a worker process; its progress lines move the job's step."""
        await self.step(job, "solve", 0.02)
        plan_file = os.path.join(await asyncio.to_thread(self.store.work_dir, job.id), "conda-plan.json")
        await asyncio.to_thread(conda.write_plan, plan_file, plan)
        argv = conda.worker_command(plan_file, plan.path)
        await asyncio.to_thread(self.store.append_log, job.id, "$ " + " ".join(argv) + "\n")
        start = await asyncio.to_thread(self.store.log_size, job.id)

        async def progressed(step: str, progress: float) -> None:
            job.step, job.progress = step, max(job.progress, progress)
            await asyncio.to_thread(self.store.save, job)

        env = {**installer_environment(self.settings), "PYTHONUNBUFFERED": "1"}
        for attempt in (1, 2):
            code = await conda.run_worker(
                argv, log_path=self.store.log_path(job.id), env=env, cwd=plan.path,
                on_spawn=self._spawned(job), on_progress=progressed, umask=plan.umask, keep_fds=self._kept_fds(job),
                on_needed=lambda needed: self._needed.__setitem__(job.id, needed),
            )  # fmt: skip
            if attempt == 2 or not conda.crashed(code):
                break
            # rattler (native code) crashed, rarely, under load: it continues where it stopped (conda-meta says
            # what is linked), so once more before the job fails
            note = f"py-rattler crashed (exit {code}); running it once more, it continues where it stopped\n"
            await asyncio.to_thread(self.store.append_log, job.id, note)
        job.pid = None
        if code != 0:
            tail = await asyncio.to_thread(self.store.log_tail, job.id, start)
            raise StepFailed(failure_message(f"{job.step} failed (py-rattler exited with {code})", tail))
        await self.step(job, "register", 0.9)
        await asyncio.to_thread(conda.finish, plan, job.id)
        job.environment = await self._register(job)

    async def plan_layer(
        self, job: Job, python: str, python_version: str | None, base: str | None, layer: str, installer: str,
        uv: str | None, *, add: tuple[str, ...] = (), remove: tuple[str, ...] = (), force: bool = False,
        options: tuple[str, ...] = (),
    ) -> LayerPlan:  # fmt: skip
        """What the layer needs, against what it sees (``python_version``: its Python's, see ``layer_state``): a
        conflict fails the job before anything is installed."""
        state = await asyncio.to_thread(layer_state, python, python_version, base, layer)
        workdir = await asyncio.to_thread(self.store.work_dir, job.id)

        async def runner(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
            """The resolver's output streams into the job's live log (a long sdist build shows as it goes)."""
            await asyncio.to_thread(self.store.append_log, job.id, "$ " + " ".join(argv) + "\n")
            start = await asyncio.to_thread(self.store.log_size, job.id)
            code = await run_logged(argv, log_path=self.store.log_path(job.id), env=env, cwd=layer,
                                    on_spawn=self._spawned(job))  # fmt: skip
            return code, await asyncio.to_thread(self.store.log_tail, job.id, start)

        resolver = ToolResolver(installer, uv, self.settings, workdir, options, runner=runner)
        try:
            layer_plan = await plan_change(state, resolver, add, remove, force)
        except PlanError as err:  # the job's error; the resolver's output is in the log already, not repeated
            raise StepFailed(err.message) from None
        summary = json.dumps(layer_plan.json())
        await asyncio.to_thread(self.store.append_log, job.id, f"# plan: {summary}\n")
        return layer_plan

    async def install(
        self, job: Job, installer: str, uv: str | None, python: str, pins: tuple[Pin, ...],
        options: tuple[str, ...], umask: int | None,
    ) -> None:  # fmt: skip
        requirements = self.store.requirements_path(job.id)
        needed = await asyncio.to_thread(packages_needed, pins, self.settings.find_links)
        if needed:
            self._needed[job.id] = needed
        await asyncio.to_thread(builder.write_requirements, requirements, tuple(p.requirement() for p in pins))
        argv = install_argv(installer, uv, python, requirements, self.settings, options)
        await self.command(job, installer, argv, installer_environment(self.settings), umask)

    def record(
        self, job: Job, path: str, python_version: str | None, base: str | None, request: dict[str, Any],
        pins: tuple[Pin, ...], known: dict[str, dict[str, Any]],
    ) -> None:  # fmt: skip
        """The revision of what the job made: the layer's lock, hashes from the resolver where it gave them."""
        known = {**known, **{pin.key: pin.lock_json() for pin in pins}}
        lock = revisions.current_lock(path, python_version, known)
        revisions.record(path, user=job.user, request=request, lock=lock, base_path=base, python_version=python_version)

    async def step(self, job: Job, step: str, progress: float) -> None:
        job.step, job.progress = step, progress
        await asyncio.to_thread(self._save_step, job)

    def _save_step(self, job: Job) -> None:
        self.store.append_log(job.id, f"== {job.step}\n")
        self.store.save(job)

    async def command(self, job: Job, tool: str, argv: list[str], env: dict[str, str], umask: int | None) -> None:
        await asyncio.to_thread(self.store.append_log, job.id, "$ " + " ".join(argv) + "\n")
        start = await asyncio.to_thread(self.store.log_size, job.id)

        code = await run_logged(
            argv, log_path=self.store.log_path(job.id), env=env, cwd=job.path, on_spawn=self._spawned(job), umask=umask,
            keep_fds=self._kept_fds(job),
        )  # fmt: skip
        if code != 0:
            tail = await asyncio.to_thread(self.store.log_tail, job.id, start)
            raise StepFailed(failure_message(f"{job.step} failed ({tool} exited with {code})", tail))

    def _kept_fds(self, job: Job) -> tuple[int, ...]:
        """The job's lock descriptor, kept open by every process of a step: the lock outlives none of them."""
        lock = self._locks.get(job.id)
        return (lock.fd,) if lock is not None and lock.fd is not None else ()

    def _spawned(self, job: Job) -> Callable[[int], Awaitable[None]]:
        async def spawned(pid: int) -> None:
            job.pid = pid  # on disk before anything can go wrong: recovery kills what a dead server left running
            await asyncio.to_thread(self.store.save, job)

        return spawned

    def installer_env(self) -> dict[str, str]:
        return installer_environment(self.settings)

    async def register(self, job: Job) -> dict[str, Any]:
        return await self._register(job)

    async def _undo(self, job: Job) -> str | None:
        """A change that did not finish: the layer as it was before the job. Returns what the error adds when the
        snapshot could not be put back (its file system made read-only, say): where it is kept."""
        try:
            restored = await asyncio.to_thread(restore_snapshot, job.path, job.id)
        except OSError as err:
            return (
                f"{job.name or job.path} could not be put back as it was ({err.strerror}): its files before the "
                f"change are kept in {os.path.join(job.path, SNAPSHOT_DIR)}"
            )
        if restored:
            await asyncio.to_thread(self.store.append_log, job.id, f"restored {job.path} as it was before\n")
        return None

    async def _clean(self, job: Job) -> str | None:
        """A create that did not succeed leaves nothing and the name free: its half-made env, or the env it finished
        but its last step found no kernel (the building marker gone by then). Returns what the error adds then."""
        finished = await asyncio.to_thread(builder.finished_by, job.path, job.id)
        remove = builder.remove_unlisted if finished else builder.remove_half_made
        removed = await asyncio.to_thread(remove, job.path, job.id)
        if removed and finished and job.plan.get("kind") == conda.KIND:
            await asyncio.to_thread(conda.unregister_environment, job.path)  # conda.finish had listed it
        if removed:
            with contextlib.suppress(OSError):  # a full job store must not keep the env or the name
                what = "the environment the job built" if finished else "the half-made"
                await asyncio.to_thread(self.store.append_log, job.id, f"removed {what} {job.path}\n")
        if not finished:
            kept = not removed and await asyncio.to_thread(builder.owned_by, job.path, job.id)
            return HALF_MADE_KEPT % job.path if kept else None
        return f"{job.path} was removed, {AGAIN}" if removed else f"{job.path} could not be removed entirely: delete it"

    # -- cancelling, stopping, recovering -------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job of this process and wait until its env is gone; ``None``: not ours."""
        task = self._tasks.get(job_id)
        if task is None:
            return None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return self._jobs[job_id]

    async def stop(self) -> None:
        """Server shutdown: stop every job, removing its half-made env (a change's layer: restored)."""
        for job_id, task in list(self._tasks.items()):
            change = self._jobs[job_id].plan.get("kind") == "change"
            redo = PUT_BACK if change else AGAIN
            self._outcome[job_id] = ("failed", f"interrupted by server shutdown; {redo}")
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def recover(self) -> None:
        """Jobs a dead process left queued/running: failed, their half-made envs removed, each ended (audited) as a
        job of this server ends. A later read recovers those a live process still held at this start.

        Runs before the server answers requests, so no client ever sees such a job as still running.
        """
        active = (job for job in self.store.load_all() if job.state in ACTIVE and job.id not in self._tasks)
        for job in active:
            if recover_job(self.store, job, self.log):
                self._on_finished(job)


class StepFailed(Exception):
    """A build command failed; the message carries the end of its output."""


class NotRegistered(Exception):
    """The built env is not listed as a kernel; the message says why and what to do (no traceback: not a bug)."""


def failure_message(summary: str, output: str) -> str:
    """``summary: <the output's error line>`` on the first line (what the panel and the CLI show), then the end of
    the output (the panel's "Show log"); the error line is the first that says "error", else the last."""
    return f"{summary}: {error_line(output) or 'see the log'}" + (f"\n{output}" if output else "")


def _free_bytes(path: str) -> int:
    """Free space where ``path`` is (or would be made: a job store not yet written is not a full one)."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize
