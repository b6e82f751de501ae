"""A layer's life after its create, for the REST API and the CLI: change its packages, its history, restore.

The service's part of it: find the env, apply the policy, plan a dry run here or hand the change to the job queue,
audit. Planning and the atomic change itself are in ``layers/``. Every blocking call runs in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import inventory, removal
from .create.disk import DiskFull
from .create.installers import find_uv
from .create.jobs import Job, JobConflict
from .kernels import environment_json
from .layers import revisions
from .layers.apply import layer_state
from .layers.change import ChangePlan
from .layers.plan import PlanError, check_removal, plan_change
from .layers.resolve import ToolResolver
from .model import CONDA_BASE, CONDA_ENV, LAYERED, SCOPE_GROUP, VENV, Environment, kind_noun
from .policy import ChangeRequest, PolicyError, bad_request

if TYPE_CHECKING:
    from .service import LayenvService


@dataclass(frozen=True)
class Outcome:
    """What a change request gave: a dry run's plan (200) or a queued job (202)."""

    status: int
    body: dict[str, Any]
    job_id: str | None = None


class LayerLifecycle:
    def __init__(self, service: LayenvService) -> None:
        self.service = service

    # -- changing packages --------------------------------------------------------------------------------

    async def change(self, env_id: str, body: Any, user: str) -> Outcome:
        """``POST environments/<id>/packages``: refusals raise :class:`PolicyError` and write nothing."""
        try:
            request = self.service.policy.parse_change(body)
            env, base = await asyncio.to_thread(self._target, env_id, request.add)
            if request.remove:
                await asyncio.to_thread(_check_removal, env, base, request)
            if request.dry_run:
                return Outcome(200, await self._dry_run(env, base, request))
            plan = await asyncio.to_thread(functools.partial(self._plan, env, base, user, request=request))
            job = await self.service.jobs.submit_change(plan)
        except JobConflict as err:
            self.service.audit.emit("change", user, env_id, "refused", detail=str(err))
            raise PolicyError(409, str(err), "busy") from None
        except DiskFull as err:
            self.service.audit.emit("change", user, env_id, "refused", detail=str(err))
            raise PolicyError(507, str(err), err.reason) from None
        except PolicyError as err:
            self.service.audit.emit("change", user, env_id, "refused", detail=err.message)
            raise
        return Outcome(202, job.public(), job.id)

    def _target(self, env_id: str, add: tuple[str, ...] = ()) -> tuple[Environment, Environment | None]:
        """The env to change (a layer or venv this caller may write) and the base it inherits, if any."""
        discovered, _ = self.service.ksm.current()
        env = discovered.by_id(env_id)
        if env is None:
            unusable = removal.unusable_refusal(discovered, env_id)  # its base deleted: named, not "not found"
            raise unusable or PolicyError(404, f"environment {env_id!r} not found: see GET environments", "not found")
        if env.kind not in (LAYERED, VENV):
            raise PolicyError(
                403,
                f"{discovered.label(env)} is {kind_noun(env.kind)}: jupyter_layenv changes the packages of layers "
                "and venvs",
                env.kind,
            )
        refusal = self.service.policy.change_refusal(env, os.getuid(), name=discovered.label(env))
        if refusal is not None:
            raise refusal
        base = discovered.by_path(env.base) if env.base and env.inherits_base else None
        if base is not None and add:
            provided = inventory.distributions(base.path, base.python_version)
            self.service.policy.check_overrides(add, {d.key: d for d in provided})
        return env, base

    def _installer(self) -> tuple[str, str | None]:
        uv = find_uv() if self.service.installer in ("auto", "uv") else None
        if self.service.installer == "uv" and uv is None:
            raise PolicyError(500, "LayenvService.installer is 'uv' but uv is not installed", "no uv")
        return ("uv" if uv else "pip"), uv

    def _plan(
        self, env: Environment, base: Environment | None, user: str, *, request: ChangeRequest | None = None,
        revision: revisions.Revision | None = None,
    ) -> ChangePlan:  # fmt: skip
        installer, uv = self._installer()
        common: dict[str, Any] = {
            "name": env.name, "path": env.path, "base_id": base.id if base else "", "installer": installer, "uv": uv,
            "base_path": base.path if base else None, "python_version": _python_version(env, base), "creator": user,
            "umask": 0o002 if env.scope == SCOPE_GROUP else None, "ipykernel": self._is_kernel(env),
        }  # fmt: skip
        if revision is not None:
            return ChangePlan("restore", revision=revision.revision, lock=tuple(revision.lock), **common)
        assert request is not None
        return ChangePlan("change", add=request.add, remove=request.remove, force=request.force,
                          options=request.options, **common)  # fmt: skip

    def _is_kernel(self, env: Environment) -> bool:
        _, table = self.service.ksm.current()
        return bool(environment_json(env, table)["kernels"])

    async def _dry_run(self, env: Environment, base: Environment | None, request: ChangeRequest) -> dict[str, Any]:
        """The plan, nothing written in the env (the resolver's scratch files go to a temporary directory)."""
        installer, uv = await asyncio.to_thread(self._installer)  # looks for uv on disk
        python = os.path.join(env.path, "bin", "python")
        state = await asyncio.to_thread(layer_state, python, _python_version(env, base), base.path if base else None,
                                        env.path)  # fmt: skip
        workdir = await asyncio.to_thread(tempfile.mkdtemp, prefix="layenv-plan-")
        try:
            resolver = ToolResolver(installer, uv, self.service.jobs.settings, workdir, request.options)
            plan = await plan_change(state, resolver, request.add, request.remove, request.force)
        except PlanError as err:
            raise PolicyError(err.status, err.message, "conflict" if err.status == 409 else "not found") from None
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        return plan.json()

    # -- history ------------------------------------------------------------------------------------------

    async def revisions(self, env_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._revisions, env_id)

    def _revisions(self, env_id: str) -> dict[str, Any]:
        discovered, _ = self.service.ksm.current()
        env = discovered.by_id(env_id)
        if env is None:
            raise PolicyError(404, f"environment {env_id!r} not found: see GET environments", "not found")
        inherited = env.base if env.base and env.inherits_base else None
        base = discovered.by_path(inherited) if inherited else None
        current = revisions.base_fingerprint(inherited, _python_version(env, base))
        found = [revision.json(current) for revision in revisions.read_all(env.path)]
        return {"revisions": found, "none_reason": None if found else _no_revisions(env)}

    async def restore(self, env_id: str, number: str, user: str) -> Job:
        """``POST environments/<id>/revisions/<n>/restore``: a job making the layer exactly revision n's lock."""
        try:
            if not number.isdecimal() or len(number) > 9:
                raise bad_request(f"revision must be a number like 1, not {number!r}")
            env, base = await asyncio.to_thread(self._target, env_id)
            found = await asyncio.to_thread(revisions.read_all, env.path)
            revision = next((r for r in found if r.revision == int(number)), None)
            if revision is None:
                known = ", ".join(str(r.revision) for r in reversed(found)) or "none"
                raise PolicyError(404, f"{env.name} has no revision {number} (it has: {known})", "not found")
            plan = await asyncio.to_thread(functools.partial(self._plan, env, base, user, revision=revision))
            job = await self.service.jobs.submit_change(plan)
        except JobConflict as err:
            self.service.audit.emit("restore", user, env_id, "refused", detail=str(err))
            raise PolicyError(409, str(err), "busy") from None
        except DiskFull as err:
            self.service.audit.emit("restore", user, env_id, "refused", detail=str(err))
            raise PolicyError(507, str(err), err.reason) from None
        except PolicyError as err:
            self.service.audit.emit("restore", user, env_id, "refused", detail=err.message)
            raise
        return job


def _python_version(env: Environment, base: Environment | None) -> str | None:
    """The version of the Python a layer runs (its base's; its own when it has none it inherits): the
    ``lib/pythonX.Y/site-packages`` of the layer and of its base that Python imports from."""
    return (base.python_version if base is not None else None) or env.python_version


def _check_removal(env: Environment, base: Environment | None, request: ChangeRequest) -> None:
    """Removing what the layer does not have, what its base provides, or what other layer packages need is
    refused at once (the job would only fail the same way)."""
    python = os.path.join(env.path, "bin", "python")
    state = layer_state(python, _python_version(env, base), base.path if base else None, env.path)
    try:
        check_removal(state, request.remove, request.force)
    except PlanError as err:
        raise PolicyError(err.status, err.message, "conflict" if err.status == 409 else "not found") from None


def _no_revisions(env: Environment) -> str:
    """Why an env has no revisions: a Conda env keeps none (only layers and venvs do), a layer may predate them."""
    if env.kind in (CONDA_BASE, CONDA_ENV):
        return (f"{env.name} is {kind_noun(env.kind)}: revisions are kept for layers and venvs (its export with "
                "format=explicit gives its exact Conda packages)")  # fmt: skip
    return f"{env.name} has no revisions (made before jupyter_layenv recorded them, or not by it)"
