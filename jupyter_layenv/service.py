"""The environment service the REST handlers and the CLI share: list, inspect, create, delete, export, jobs.

It applies the policy, places envs inside a configured root, hands builds to the job queue and keeps the
kernel spec manager's cache honest. Every blocking call runs in a thread: this object lives on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Enum, Float, Instance, Int, List, Unicode, default

from . import basefirst, condabase, envfile, fsread, inuse, inventory, namecase, removal
from . import export as exporting
from .create.builder import BuildPlan
from .create.conda import CondaPlan, unregister_environment
from .create.disk import DiskFull
from .create.installers import InstallerSettings, find_uv
from .create.jobs import Job, JobConflict, JobManager, JobStore, NotRegistered
from .create.locks import PlantedLink
from .create.recovery import clean_abandoned
from .discovery import layer_id
from .events import Audit
from .housekeeping import Housekeeping
from .identity import account_name
from .kernelnames import ResolvedKernelName, resolve_kernel_name
from .kernels import environment_json, group_name, listing_json
from .kernelspecs import LayenvKernelSpecManager
from .layers import revisions
from .lifecycle import LayerLifecycle
from .model import (
    BEING_CREATED,
    BUILDING_MARKER,
    CONDA_ENV,
    SCOPE_GROUP,
    SCOPE_SYSTEM,
    SCOPE_USER,
    Discovered,
    Environment,
)
from .policy import (
    USER_ROOT_ID,
    CreateRequest,
    CreateRoot,
    LayenvPolicy,
    PolicyError,
    bad_request,
    requirement_names,
)
from .policyreport import SYSTEM_ROOT_REFUSAL, policy_report, refusal_message
from .quota import Quotas
from .resolve import is_conda, resolve_env
from .unlisted import listed_as, unlisted_message
from .usage import health
from .usage.tracker import UsageTracker


def not_found(what: str) -> PolicyError:
    return PolicyError(
        404, f"{what} not found: see GET environments and GET jobs (or `jupyter layenv list`)", "not found"
    )


class LayenvService(condabase.CondaBases):
    """Configuration of where and how envs are created, and the operations on them."""

    user_root = Unicode(
        "~/.virtualenvs",
        config=True,
        help="Where new environments go (VS Code and virtualenvwrapper read this directory too).",
    )
    layout = Enum(
        ["user_root", "inside_base"],
        "user_root",
        config=True,
        help="inside_base: the seed's layout, the new env inside its base Conda env when that is writable "
        "(envs/py311_ai/myexp_env); user_root otherwise.",
    )
    job_concurrency = Int(2, config=True, help="How many create jobs run at once; the others wait in the queue.")
    jobs_kept = Int(100, config=True, help="How many finished jobs (and their logs) are kept.")
    jobs_dir = Unicode(config=True, help="Where job records and logs are kept (default: <jupyter data dir>/layenv).")
    installer = Enum(["auto", "uv", "pip"], "auto", config=True, help="auto: uv when it is installed, else pip.")
    seed_pip = Enum(
        ["auto", "always", "never"],
        "auto",
        config=True,
        help="Put pip into new envs: auto = only when the base's pip cannot serve them (no inherit, or no pip in "
        "the base), so %pip works in their kernels.",
    )
    index_url = Unicode(None, allow_none=True, config=True, help="Package index for installs (default: PyPI).")
    extra_index_urls = List(Unicode(), config=True, help="Extra package indexes.")
    find_links = List(Unicode(), config=True, help="Directories or pages of wheels to install from (a wheelhouse).")
    offline = Bool(False, config=True, help="Never use an index: install from find_links only.")
    proxy = Unicode(None, allow_none=True, config=True, help="HTTP(S) proxy for the installers.")
    size_refresh_seconds = Float(
        30.0, config=True, help="How often a listing has an env's measured size checked against its directories."
    )

    policy = Instance(LayenvPolicy)
    ksm = Instance(LayenvKernelSpecManager)

    @default("jobs_dir")
    def _default_jobs_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "layenv", "jobs")

    @default("policy")
    def _default_policy(self) -> LayenvPolicy:
        return LayenvPolicy(parent=self)

    def __init__(self, *, ksm: LayenvKernelSpecManager, audit: Audit | None = None, **kwargs: Any) -> None:
        super().__init__(ksm=ksm, **kwargs)
        self.audit = audit or Audit()
        self.usage = UsageTracker(os.path.join(jupyter_data_dir(), "layenv"), self.size_refresh_seconds)
        self.housekeeping = Housekeeping(self)
        self.running_kernels = inuse.no_kernels  # the server's kernels (set by the extension), see inuse.running
        self.quotas = Quotas(self)
        self._include_root_in_discovery()
        if self.layout == "inside_base" and not ksm.nested_venvs:
            self.log.warning(
                "jupyter_layenv: LayenvService.layout = inside_base needs LayenvKernelSpecManager.nested_venvs = True "
                "(discovery would not list a layer inside its base): new layers go to %s",
                self.root(),
            )
        self.jobs = JobManager(
            JobStore(fsread.expand(self.jobs_dir), keep=self.jobs_kept),
            concurrency=max(1, self.job_concurrency),
            settings=InstallerSettings(
                index_url=self.index_url,
                extra_index_urls=tuple(self.extra_index_urls),
                find_links=tuple(fsread.expand(p) if "://" not in p else p for p in self.find_links),
                offline=self.offline,
                proxy=self.proxy,
            ),
            register=self._register,
            on_finished=self._job_finished,
            log=self.log,
        )
        self.lifecycle = LayerLifecycle(self)

    def _include_root_in_discovery(self) -> None:
        """A created env must be listed: the user root is one of discovery's venv roots."""
        root = self.root()
        if root not in {fsread.expand(path) for path in self.ksm.venv_roots}:
            self.ksm.venv_roots = [*self.ksm.venv_roots, root]
        if root not in {fsread.expand(path) for path in self.ksm.user_roots}:
            self.ksm.user_roots = [*self.ksm.user_roots, root]

    def _inside_base(self, scope: str, base: Environment) -> bool:
        """The seed's layout, where the new layer will be listed: only with nested venvs looked for."""
        return (
            scope == SCOPE_USER
            and self.layout == "inside_base"
            and self.ksm.nested_venvs
            and base.kind == CONDA_ENV
            and base.writable
        )

    def root(self) -> str:
        return fsread.expand(self.user_root)

    def recover(self) -> None:
        """Fail the jobs a dead server left running and remove their half-made envs; each is audited by
        :meth:`_job_finished`, as is a job a later read of the jobs recovers."""
        self.jobs.recover()

    async def stop(self) -> None:
        self.usage.stop()
        await self.jobs.stop()

    # -- reading ----------------------------------------------------------------------------------------

    async def listing(self) -> dict[str, Any]:
        server = await self.running_kernels()
        return await asyncio.to_thread(self.listing_now, server=server)

    def listing_now(self, *, wait_health: bool = False, server: Sequence[inuse.RunningKernel] = ()) -> dict[str, Any]:
        """GET environments: discovery's listing, each env with why it may not be deleted (a kernel running from it
        too: this ``server``'s, or any kernel process) and why no layer may be built on it (``null``: it may), so the
        panel shows the server's reasons instead of copying its rules. ``health`` is what is known (``null``: being
        checked) unless ``wait_health`` (a command)."""
        discovered, table = self.ksm.current()
        unlisted = removal.unlisted([root.path for root in self.create_roots(discovered)], discovered)
        cleaned, stuck = self._clean_abandoned(discovered, unlisted)
        if cleaned:
            self.ksm.invalidate()
            discovered, table = self.ksm.current()
            unlisted = [path for path in unlisted if os.path.lexists(path)]
        listing = listing_json(discovered, table)
        uid = os.getuid()
        orphans = {env.path: env for env in removal.orphaned_layers(discovered)}
        running = inuse.running([*discovered.environments, *orphans.values()], server)
        facts = self.usage.facts(discovered)
        shadows = self.usage.shadows.shadowing(discovered)
        issues = self.usage.health(discovered, wait=wait_health)
        for env, env_json in zip(discovered.environments, listing["environments"], strict=True):
            env_json.update(facts[env.path], shadowed=shadows.get(env.path, []), health=issues[env.path])
            refusal = self.policy.delete_refusal(env, discovered, uid, running)
            env_json["delete_blocked_reason"] = refusal_message(refusal)
            env_json["layer_blocked_reason"] = refusal_message(self.policy.layer_refusal(env))
        listing["skipped"] += [removal.leftover(path) for path in unlisted if not self.jobs.busy(path)]
        listing["skipped"] = [removal.abandoned(s["path"]) if s["path"] in stuck else s for s in listing["skipped"]]
        for skipped in listing["skipped"]:
            if (orphan := orphans.get(skipped["path"])) is not None:  # a layer whose base is gone: deletable
                skipped["id"] = orphan.id
                refusal = self.policy.delete_refusal(orphan, discovered, uid, running)
                skipped["delete_blocked_reason"] = refusal_message(refusal)
        if not condabase.has_conda_env(discovered):
            listing["hint"] = condabase.first_base_hint("rest")  # nothing to build a layer on: make a base
        return listing

    def _clean_abandoned(self, discovered: Discovered, unlisted: list[str]) -> tuple[bool, set[str]]:
        """Half-made envs whose builder died (another server that crashed, say): whoever finds them removes them.
        Returns whether one was removed, and those no build holds that could not be (a root made read-only).

        Also a directory a build left with only its marker (killed before the env took shape). Only an env whose
        lock nobody holds is touched; a live build holds its lock from start to end.
        """
        cleaned, stuck = False, set()
        half_made = [skipped.path for skipped in discovered.skipped if skipped.reason.startswith(BEING_CREATED)]
        for path in [*half_made, *unlisted]:  # clean_abandoned touches only a marked env whose lock is free
            removed = None if self.jobs.busy(path) else clean_abandoned(path)
            if removed is False:
                stuck.add(path)
            elif removed:
                cleaned = True
                self.log.warning("jupyter_layenv: removed %s, left half-made by a build that died", path)
                self.audit.emit("cleanup", account_name(), os.path.basename(path), "succeeded",
                                    path=path, detail="half-made by a build that died")  # fmt: skip
        return cleaned, stuck

    # -- who may do what where --------------------------------------------------------------------------

    def create_roots(self, discovered: Discovered) -> list[CreateRoot]:
        """The user root and the group roots this server's user is a member of."""
        user = CreateRoot(USER_ROOT_ID, SCOPE_USER, self.root(), None, condabase.can_make_in(self.root()))
        groups = [
            CreateRoot(root.id, SCOPE_GROUP, root.path, group_name(root.gid), root.writable)
            for root in discovered.roots
            if root.scope == SCOPE_GROUP and root.member
        ]
        return [user, *groups]

    async def policy_for(self, write_refused: str | None) -> dict[str, Any]:
        return await asyncio.to_thread(policy_report, self, write_refused)

    async def environment(self, env_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._environment, env_id)

    def _environment(self, env_id: str) -> dict[str, Any]:
        discovered, table = self.ksm.current()
        env = self._find(discovered, env_id)
        base = discovered.by_path(env.base) if env.base else None
        return {
            **environment_json(env, table),
            **self.usage.facts(discovered, [env])[env.path],
            "packages": inventory.package_split(env, base, frozenset(revisions.requested_names(env.path))),
            "health": [issue.json() for issue in health.check(env, base)],
        }

    async def kernel_started(self, kernel_name: str, user: str) -> None:
        await asyncio.to_thread(self._kernel_started, kernel_name, user)

    def _kernel_started(self, kernel_name: str, user: str) -> None:
        self.usage.kernel_started(*self.ksm.current(), kernel_name, user)

    def _find(self, discovered: Discovered, env_id: str) -> Environment:
        env = discovered.by_id(env_id)
        if env is None:
            raise not_found(f"environment {env_id!r}")
        return env

    async def resolve(self, ref: str) -> str:
        """The id of the env a person named by id, path, name or kernel name (see :func:`resolve_env`); a layer
        whose base was deleted can be named too, to delete it."""
        discovered, table = await asyncio.to_thread(self.ksm.current)
        orphans = await asyncio.to_thread(removal.orphaned_layers, discovered)
        kernels = {name: entry.env_id for name, entry in table.entries.items()}
        return resolve_env(discovered, ref, kernels=kernels, also=orphans).id

    async def kernel_name(self, name: str) -> ResolvedKernelName:
        """The listed kernel a notebook's saved kernel name (an nb_conda_kernels one) starts."""
        _, table = await asyncio.to_thread(self.ksm.current)
        return resolve_kernel_name(table, name)

    # -- creating ---------------------------------------------------------------------------------------

    async def create(self, body: Any, user: str) -> Job:
        """Validate, place and queue a create; refusals raise :class:`PolicyError` and write nothing."""
        env_name: str = body["name"] if isinstance(body, dict) and isinstance(body.get("name"), str) else "?"
        try:
            if condabase.is_conda_request(body):
                plan: BuildPlan | CondaPlan = await asyncio.to_thread(self.plan_conda, body, account_name())
            elif basefirst.asks(body):
                plan = await asyncio.to_thread(self._base_first, body)
            else:
                request, source = await asyncio.to_thread(self._request, body)
                env_name = request.name
                plan = await asyncio.to_thread(self._plan, request, source)
            job = await self.jobs.submit(plan, base=getattr(plan, "base_path", ""))
        except (JobConflict, PlantedLink) as err:
            self.audit.emit("create", user, env_name, "refused", detail=str(err))
            raise PolicyError(
                409, str(err), "planted link" if isinstance(err, PlantedLink) else "exists or busy"
            ) from None
        except DiskFull as err:
            self.audit.emit("create", user, env_name, "refused", detail=str(err))
            raise PolicyError(507, str(err), err.reason) from None
        except PolicyError as err:
            self.audit.emit("create", user, env_name, "refused", detail=err.message)
            raise
        return job

    def _base_first(self, body: dict[str, Any]) -> BuildPlan | CondaPlan:
        """``build_base``: the base's Conda job, which queues the layer's (:meth:`_then`), or the layer if one fits."""
        first = basefirst.split(body, self.policy, self.ksm.current()[0])
        if first.conda is None:
            return self._plan(*self._request(first.layer))
        return dataclasses.replace(self.plan_conda(first.conda, account_name()), then=first.layer)

    async def _then(self, job: Job) -> None:
        """A base built for an environment.yml: queue its layer on it; a refusal is the base job's ``then.error``."""
        layer = job.plan["then"]
        try:
            discovered = (await asyncio.to_thread(self.ksm.current))[0]
            request, source = await asyncio.to_thread(
                envfile.request_from_file, layer, self.policy, discovered, job.path
            )
            plan = await asyncio.to_thread(self._plan, request, source)
            await self.jobs.submit_then(job, plan)
        except (PolicyError, JobConflict, PlantedLink, DiskFull) as err:
            error = (
                f"the base {job.path} was built and is kept, but its layer {layer['name']} was not queued: {err}; "
                "then POST the environment.yml again (without build_base): its layer goes on that base"
            )
            self.jobs.then_refused(job, error)
            self.audit.emit("create", job.user, layer["name"], "refused", detail=error)

    def _request(self, body: Any) -> tuple[CreateRequest, dict[str, Any] | None]:
        """The create a body asks for; with ``environment_yml``, the file picks the base (and its provenance)."""
        if isinstance(body, dict) and "environment_yml" in body:
            return envfile.request_from_file(body, self.policy, self.ksm.current()[0])
        return self.policy.parse_create(body), None

    def _plan(self, request: CreateRequest, source: dict[str, Any] | None = None) -> BuildPlan:
        discovered, _ = self.ksm.current()
        wanted = request.base
        base = self.policy.check_base(resolve_env(discovered, wanted, role="base", suitable=is_conda), wanted)
        create_roots = self.create_roots(discovered)
        where = self._create_root(discovered, create_roots, request.root)
        self.quotas.check(discovered, create_roots)
        root = where.path
        if self._inside_base(where.scope, base):
            root = base.path
        path = os.path.join(root, request.name)
        if os.path.realpath(os.path.dirname(path)) != os.path.realpath(root):
            raise PolicyError(403, f"{path} would leave the environment root {root}", "outside root")
        # a half-made env is the job queue's to refuse: it tells "being created" (here or elsewhere) from "exists"
        # (this server's jobs first: its directory may exist a moment before its marker does)
        being_built = self.jobs.busy(path) or os.path.isfile(os.path.join(path, BUILDING_MARKER))
        if not being_built and (
            os.path.lexists(path)
            or any(env.name == request.name and env.path == path for env in discovered.environments)
        ):
            if root == base.path and not any(env.path == path for env in discovered.environments):
                raise PolicyError(409, f"{path} is a folder of the Conda environment {base.name} (a layer goes inside "
                                  "it in this layout), not an environment: pick another name", "exists")  # fmt: skip
            raise PolicyError(409, f"{path} exists already; pick another name or delete it first", "exists")
        if (twin := namecase.case_refusal(path)) is not None:
            raise twin
        if request.inherit:
            provided = inventory.distributions(base.path, base.python_version)
            self.policy.check_overrides(request.requirements, {d.key: d for d in provided})
        base_pip = request.inherit and inventory.has_distribution(base.path, base.python_version, "pip")
        seed_pip = self.seed_pip == "always" or (self.seed_pip == "auto" and not base_pip)
        requirements = list(request.requirements)
        imports_ipykernel = request.inherit and base.has_ipykernel
        if not imports_ipykernel and "ipykernel" not in requirement_names(requirements):
            requirements.append("ipykernel")  # every created env is a kernel
        uv = find_uv() if self.installer in ("auto", "uv") else None
        if self.installer == "uv" and uv is None:
            raise PolicyError(500, "LayenvService.installer is 'uv' but uv is not installed", "no uv")
        return BuildPlan(
            name=request.name,
            path=path,
            base_id=base.id,
            base_path=base.path,
            base_python=base.python or "",
            python_version=base.python_version,
            inherit=request.inherit,
            seed_pip=seed_pip,
            installer="uv" if uv else "pip",
            uv=uv,
            requirements=tuple(requirements),
            requested=request.requirements,
            display_name=request.display_name,
            creator=account_name(),
            group_gid=os.stat(where.path).st_gid if where.scope == SCOPE_GROUP else None,
            options=request.options,
            environment_yml=source,
        )

    def _create_root(
        self, discovered: Discovered, create_roots: list[CreateRoot], wanted: str, *, in_user_root: bool = True
    ) -> CreateRoot:
        """The root ``wanted`` names, if this caller may create there; ``in_user_root=False``: the user's root
        holds nothing of it (a Conda env), so only a group root need be writable."""
        roots = {root.id: root for root in create_roots}
        root = roots.get(wanted)
        if root is None:
            known = next((r for r in discovered.roots if r.id == wanted), None)
            if known is not None and known.scope == SCOPE_SYSTEM:
                raise PolicyError(403, f"{known.path}: {SYSTEM_ROOT_REFUSAL}", "system")
            if known is not None:
                raise PolicyError(
                    403,
                    f"{known.path} belongs to the group {group_name(known.gid)}, which you are not a member of; "
                    "ask your administrator to add you to it",
                    "not a member",
                )
            raise bad_request(
                f"unknown root {wanted!r}: use one of {', '.join(sorted(roots))} (GET policy lists them)",
                "unknown root",
            )
        refusal = self.policy.root_refusal(root, writes_in_it=in_user_root or root.scope != SCOPE_USER)
        if refusal is not None:
            raise refusal
        return root

    async def _register(self, job: Job) -> dict[str, Any]:
        """The new env must be a kernel in the very next listing: rescan now and check it is."""
        self.ksm.invalidate()
        discovered, table = await asyncio.to_thread(self.ksm.current)
        env = await asyncio.to_thread(listed_as, discovered, job.path)
        if env is None:
            # a layer's packages, a Conda env's match specs
            installed = bool(job.plan.get("requirements") or job.plan.get("specs"))
            raise NotRegistered(unlisted_message(discovered, job.path, job.id, installed_packages=installed))
        listed = environment_json(env, table)
        if not listed["kernels"] and job.plan.get("ipykernel", True):
            raise NotRegistered(f"{job.path} was built but is not a kernel: {listed['skipped_reason']}")
        if job.plan.get("then") is not None:
            await self._then(job)
        return listed

    def _job_finished(self, job: Job) -> None:
        self.ksm.invalidate()
        outcome = job.state if job.state in ("succeeded", "failed", "cancelled") else "failed"
        action = job.plan.get("action", "create")  # a change job's plan says "change" or "restore"
        self.audit.emit(action, job.user, job.name, outcome, path=job.path, detail=job.error)

    # -- jobs -------------------------------------------------------------------------------------------

    # A single-user server's jobs are all its owner's: token requests without a cookie each get a fresh
    # anonymous identity, so the identity's name is recorded (audit) but does not filter.

    async def list_jobs(self) -> list[dict[str, Any]]:
        return [job.public() for job in await self.jobs.newest_first()]

    async def job(self, job_id: str) -> Job:
        job = await self.jobs.get(job_id)
        if job is None:
            raise not_found(f"job {job_id!r}")
        return job

    async def job_log(self, job_id: str, offset: int) -> bytes:
        job = await self.job(job_id)
        try:
            return await asyncio.to_thread(self.jobs.store.read_log, job.id, offset)
        except OSError:
            return b""

    async def cancel(self, job_id: str, user: str) -> Job:
        try:
            job = await self.job(job_id)
            if job.state not in ("queued", "running"):
                raise PolicyError(409, f"job {job_id} has already {job.state}; nothing to cancel", "finished")
            cancelled = await self.jobs.cancel(job_id)
            if cancelled is None:
                raise PolicyError(409, f"job {job_id} runs in another process; cancel it there", "elsewhere")
        except PolicyError as err:
            self.audit.emit("cancel", user, job_id, "refused", detail=err.message)
            raise
        self.audit.emit("cancel", user, job.name, "succeeded", path=job.path)
        return cancelled

    # -- deleting and exporting -------------------------------------------------------------------------

    async def delete(self, env_id: str, user: str, detail: str | None = None, *, kernels: bool = True) -> str:
        """The path of the env deleted; ``kernels=False`` (the CLI's ``--force``) deletes it under running kernels."""
        try:
            path = await asyncio.to_thread(self._delete, env_id, await self.running_kernels() if kernels else None)
        except PolicyError as err:
            self.audit.emit("delete", user, env_id, "refused", detail=err.message)
            raise
        self.audit.emit("delete", user, env_id, "succeeded", path=path, detail=detail)
        return path

    def _delete(self, env_id: str, server: list[inuse.RunningKernel] | None) -> str:
        for plan in self.jobs.active_plans():
            if layer_id(plan.get("base_id", ""), plan["name"]) == env_id:
                raise PolicyError(409, f"a job is working on {plan['name']}; wait for it or cancel it first", "busy")
        discovered, _ = self.ksm.current()
        env = removal.find_deletable(discovered, env_id)
        if env is None:
            raise not_found(f"environment {env_id!r}")
        if self.jobs.busy(env.path):
            raise PolicyError(
                409, f"a job is working on {discovered.label(env)}; wait for it or cancel it first", "busy"
            )
        if building := self.jobs.building_on(env.path):
            raise PolicyError(
                409,
                f"a job is building {', '.join(building)} on {discovered.label(env)}; wait for it or cancel it",
                "busy",
            )

        def running() -> list[inuse.RunningKernel]:
            return [] if server is None else inuse.running([env, *discovered.environments], server)

        try:
            self.policy.check_delete(env, discovered, os.getuid(), running())
        except PolicyError:
            if not os.path.lexists(env.path):  # the listing read it while another server deleted it
                raise not_found(f"environment {env_id!r}") from None
            raise
        try:
            if not removal.remove(env, discovered, self.policy, self.log, running):  # another server deleted it
                raise not_found(f"environment {env_id!r}")
        finally:
            self.ksm.invalidate()
        self.usage.forget(env.path)
        if env.kind == CONDA_ENV:
            unregister_environment(env.path)  # as conda does: its environments.txt no longer lists it
        return env.path

    async def export(self, env_id: str, fmt: str, user: str) -> tuple[str, str]:
        """``(filename, text)`` of an env exported as environment.yml or requirements.txt."""
        try:
            if fmt not in exporting.FORMATS:
                raise bad_request(f"unknown format {fmt!r}: use format={', format='.join(exporting.FORMATS)}")
            filename, text = await asyncio.to_thread(self._export, env_id, fmt)
        except PolicyError as err:
            self.audit.emit("export", user, env_id, "refused", detail=err.message)
            raise
        self.audit.emit("export", user, env_id, "succeeded", detail=fmt)
        return filename, text

    def _export(self, env_id: str, fmt: str) -> tuple[str, str]:
        discovered, _ = self.ksm.current()
        env = discovered.by_id(env_id) or removal.skipped_to_export(discovered, env_id, fmt)
        if env is None:
            raise not_found(f"environment {env_id!r}")
        base = discovered.by_path(env.base) if env.base else None
        if fmt == "explicit":
            try:
                return f"{env.name}-explicit.txt", exporting.explicit(env)
            except exporting.ExportError as err:
                raise bad_request(str(err), "not a Conda env") from None
        stem, ext = fmt.rsplit(".", 1) if "." in fmt else (fmt, "txt")
        return f"{env.name}-{stem}.{ext}", exporting.export(env, base, fmt)
