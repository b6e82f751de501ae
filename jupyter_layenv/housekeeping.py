"""GET usage and cleanup: the service's side of keeping a shared server tidy (the rules are in ``usage/``).

Kept out of service.py, which it extends: it goes through the service's delete (same rules, lock, rename, audit)
for every removal. Every blocking step runs in a thread.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

from . import fsread, inuse
from .create.installers import find_uv, installer_environment
from .create.locks import EnvLock
from .kernels import user_name
from .locators import SOURCE_CONDARC
from .model import CONDA_BASE, CONDA_ENV, Discovered, Environment
from .policy import PolicyError, bad_request
from .usage import clean
from .usage.clean import Verdict  # by name: the ``clean`` method hides the module in Housekeeping's annotations
from .usage.groups import Places, group_envs

if TYPE_CHECKING:
    from .service import LayenvService

CLEAN_FIELDS = frozenset({"unused_days", "dry_run"})


class Housekeeping:
    def __init__(self, service: LayenvService) -> None:
        self.service = service

    # -- usage -----------------------------------------------------------------------------------------

    async def usage(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._usage)

    def _usage(self) -> dict[str, Any]:
        """Per group (a root, a Conda install or a folder: see ``usage.groups``) and owner, what the envs hold, largest
        first: where a cleanup would free most. Never waits for a size (``measuring`` counts the envs not measured
        yet)."""
        discovered, _ = self.service.ksm.current()
        facts = self.service.usage.facts(discovered)
        groups = group_envs(discovered.environments, self._places(discovered))
        envs: list[dict[str, Any]] = []
        for env in discovered.environments:
            group = groups[env.path]
            envs.append(
                {
                    "id": env.id,
                    "name": env.name,
                    "path": env.path,
                    "kind": env.kind,
                    "base": env.base,
                    "scope": env.scope,
                    "owner": user_name(env.owner_uid),
                    "root": group.path,
                    **facts[env.path],
                }
            )
        envs.sort(key=lambda e: -(e["size_bytes"] or 0))
        by_root: dict[str, dict[str, Any]] = {}
        for item in envs:
            group = groups[item["path"]]
            root = by_root.setdefault(
                group.path,
                {
                    "root": group.path,
                    "kind": group.kind,
                    "source": group.source,
                    "scope": item["scope"],
                    "size_bytes": 0,
                    "shared_bytes": 0,
                    "environments": 0,
                    "owners": {},
                },
            )
            owner = root["owners"].setdefault(
                item["owner"], {"owner": item["owner"], "size_bytes": 0, "environments": 0, "last_used": None}
            )
            for total in (root, owner):
                total["size_bytes"] += item["size_bytes"] or 0
                total["environments"] += 1
            root["shared_bytes"] += item["shared_bytes"] or 0
            if item["last_used"] and (owner["last_used"] or "") < item["last_used"]:
                owner["last_used"] = item["last_used"]
        listed = sorted(by_root.values(), key=lambda r: -r["size_bytes"])
        for root in listed:
            root["owners"] = sorted(root["owners"].values(), key=lambda o: -o["size_bytes"])
        return {
            "user": user_name(os.getuid()),
            "total_bytes": sum(env["size_bytes"] or 0 for env in envs),
            "measuring": sum(1 for env in envs if env["size_bytes"] is None),
            "roots": listed,
            "environments": envs,
        }

    def _places(self, discovered: Discovered) -> Places:
        """The roots discovery looks in, told apart: named in the configuration or searched by default."""
        ksm, expand = self.service.ksm, fsread.expand
        dirs = ("conda_roots", "envs_dirs", "venv_roots")
        # one name: its default itself (traitlets types the call as the many-names dict)
        defaults = {expand(path) for name in dirs for path in cast(list[str], ksm.trait_defaults(name))}
        current = {expand(path) for name in (*dirs, "user_roots") for path in getattr(ksm, name)}
        return Places(
            create_root=self.service.root(),
            scoped={root.path: root.scope for root in discovered.roots},
            configured=frozenset(current - defaults),
            defaults=frozenset(current & defaults),
            named=frozenset(expand(path) for path in ksm.env_paths),
            condarc=frozenset(path for path, source in ksm.discovery.scanned_by().items() if source == SOURCE_CONDARC),
        )

    # -- cleaning ----------------------------------------------------------------------------------------

    async def clean(self, body: Any, user: str) -> dict[str, Any]:
        """Remove the caller's envs unused for N days and prune the package caches of what no env links."""
        unused_days, dry_run = _parse_clean(body)
        server = await self.service.running_kernels()
        verdicts = await asyncio.to_thread(self._verdicts, unused_days, server)
        removed, kept = [], [_kept(v.env, v.kept_because) for v in verdicts if v.kept_because]
        going = [v for v in verdicts if v.kept_because is None]
        why = f"clean: no kernel started for {unused_days} days"
        for verdict in going:
            if dry_run:
                removed.append(_removed(verdict))
                continue
            try:
                await self.service.delete(verdict.env.id, user, detail=why)
            except PolicyError as err:  # a job or a kernel started since, or another server removed it
                kept.append(_kept(verdict.env, err.message))
            else:
                removed.append(_removed(verdict))
        gone = [entry["path"] for entry in removed] if dry_run else []
        caches = await asyncio.to_thread(self._prune, gone, dry_run)
        for cache in caches:
            if cache["entries"] and not dry_run:
                detail = f"{cache['entries']} package(s) no env links, {cache['bytes']} bytes"
                self.service.audit.emit("cleanup", user, "package cache", "succeeded", path=cache["cache"],
                                        detail=detail)  # fmt: skip
        return {
            "dry_run": dry_run,
            "unused_days": unused_days,
            "removed": removed,
            "kept": kept,
            "caches": caches,
            "bytes_freed": sum(entry["size_bytes"] for entry in removed) + sum(c["bytes"] for c in caches),
        }

    def _verdicts(self, unused_days: int, server: list[inuse.RunningKernel]) -> list[Verdict]:
        discovered, _ = self.service.ksm.current()
        uid = os.getuid()
        running: dict[str, list[str]] = {}  # a kernel of this server, or any process whose command line names the env
        for process in inuse.running(discovered.environments, server, kernels_only=False):
            running.setdefault(process.env, []).append(process.where)
        mine = [env for env in discovered.environments if env.owner_uid == uid]
        facts = self.service.usage.facts(discovered, mine, wait=True)
        policy = self.service.policy

        def refusal(env: Environment) -> str | None:
            # Envs other tools made (conda, poetry, pipenv, virtualenvwrapper, a project's .venv) are used from
            # terminals too, which leave no kernel start behind: "unused" is not known for them.
            if env.creator is None:
                made = "a Conda environment" if env.kind in (CONDA_BASE, CONDA_ENV) else "an environment"
                return (f"{env.name} is {made} jupyter_layenv did not create: clean never removes one "
                        "(`jupyter layenv delete` does, when asked by name)")  # fmt: skip
            error = policy.delete_refusal(env, discovered, uid)
            return error.message if error is not None else None

        return clean.select(mine, uid=uid, cutoff=datetime.now(timezone.utc) - timedelta(days=unused_days),
                            facts=facts, refusal=refusal, busy=self._busy, running=running)  # fmt: skip

    def _busy(self, env: Environment) -> bool:
        """A job of this server, or another process holding the env's lock (a build, a change)."""
        if self.service.jobs.busy(env.path):
            return True
        lock = EnvLock.try_acquire(env.path, create=False)
        if lock is None:
            return True
        lock.release()
        return False

    def _prune(self, gone: list[str], dry_run: bool) -> list[dict[str, Any]]:
        """The package caches jupyter_layenv installs from (uv's, py-rattler's), pruned of what no env links."""
        going = clean.inode_links(gone) if gone else Counter()
        pruned = [clean.prune_conda_cache(clean.rattler_cache_dir(self.service.conda_pkgs_dir), going,
                                          dry_run=dry_run)]  # fmt: skip
        uv_cache = self._uv_cache_dir()
        if uv_cache is not None:
            pruned.append(clean.prune_uv_cache(uv_cache, going, dry_run=dry_run))
        return [{"cache": p.cache, "entries": len(p.entries), "bytes": p.bytes, "skipped": p.skipped} for p in pruned]

    def _uv_cache_dir(self) -> str | None:
        uv = find_uv()
        if uv is None:
            return None
        try:
            out = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, timeout=60, check=True,
                                 env=installer_environment(self.service.jobs.settings))  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None


def _parse_clean(body: Any) -> tuple[int, bool]:
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise bad_request('send a JSON object like {"unused_days": 90, "dry_run": true}')
    unknown = sorted(set(body) - CLEAN_FIELDS)
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(unknown)}: use unused_days and dry_run")
    days = body.get("unused_days", 90)
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 36500:
        raise bad_request(f"unused_days must be a whole number of days from 0 to 36500, not {days!r}")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request(f"dry_run must be true or false, not {dry_run!r}")
    return days, dry_run


def _kept(env: Environment, reason: str | None) -> dict[str, Any]:
    return {"id": env.id, "path": env.path, "reason": reason}


def _removed(verdict: Verdict) -> dict[str, Any]:
    env = verdict.env
    return {"id": env.id, "path": env.path, "size_bytes": verdict.size_bytes, "last_used": verdict.last_used}
