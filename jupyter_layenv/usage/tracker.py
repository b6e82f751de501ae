"""The usage facts the service adds to environments: sizes and health (worked out in the background), last kernel
starts, and the base packages a layer shadows."""

from __future__ import annotations

from typing import Any

from ..kernels import KernelTable, layenv_provisioner
from ..model import Discovered, Environment, group_root_of
from .health import HealthIssue
from .healthcache import HealthTracker
from .lastuse import LastUse, LastUseStore
from .shadows import Shadows
from .sizing import Measure, SizeTracker


class UsageTracker:
    def __init__(self, data_dir: str, size_refresh: float) -> None:
        self.sizes = SizeTracker(size_refresh)
        self.uses = LastUseStore(data_dir)
        self.checks = HealthTracker(size_refresh)
        self.shadows = Shadows()  # the listing's shadowed badge, cached by site-packages mtimes

    def stop(self) -> None:
        self.sizes.stop()
        self.checks.stop()

    def facts(
        self, discovered: Discovered, envs: list[Environment] | None = None, *, wait: bool = False
    ) -> dict[str, dict[str, Any]]:
        """``{env path: {size_bytes, shared_bytes, last_used, last_used_by}}``; ``wait``: measure what is not yet
        (a command or a cleanup, never a request)."""
        envs = list(discovered.environments) if envs is None else envs
        paths = [env.path for env in envs]
        sizes = self._sizes(paths, wait)
        roots = {env.path: root for env in envs if (root := group_root_of(env, discovered)) is not None}
        uses = self.uses.last_used(paths, roots)
        return {path: _facts(sizes.get(path), uses.get(path)) for path in paths}

    def size_bytes(self, paths: list[str], *, wait: bool = False) -> int:
        """The own bytes of the envs at ``paths`` together (a quota): what is measured; ``wait``: measure the rest."""
        return sum(measure.size_bytes for measure in self._sizes(paths, wait).values() if measure is not None)

    def _sizes(self, paths: list[str], wait: bool) -> dict[str, Measure | None]:
        return dict(self.sizes.measured(paths)) if wait else self.sizes.sizes(paths)

    def health(self, discovered: Discovered, *, wait: bool = False) -> dict[str, list[dict[str, Any]] | None]:
        """``{env path: [issue…]}`` of every env, ``None`` where not checked yet (``wait``: a command checks all)."""
        found: dict[str, list[HealthIssue]] | dict[str, list[HealthIssue] | None]
        found = self.checks.checked(discovered) if wait else self.checks.issues(discovered)
        return {env.path: _issues_json(found.get(env.path)) for env in discovered.environments}

    def kernel_started(self, discovered: Discovered, table: KernelTable, kernel_name: str, user: str) -> None:
        """Record a start of an env's kernel (its ``last_used``); a kernel of no env (a native one) is not."""
        name = table.resolve(kernel_name)
        if name is not None and _provisioned(table.all_specs[name]["spec"]):
            return  # the provisioner recorded this start at launch (a second record raced with it)
        env_id = next((env_id for env_id, names in table.env_kernels.items() if name in names), None)
        env = discovered.by_id(env_id) if env_id else None
        if env is not None:
            self.uses.record(env.path, user, group_root_of(env, discovered))

    def forget(self, env_path: str) -> None:
        self.sizes.forget(env_path)
        self.checks.forget(env_path)


def _provisioned(spec: dict[str, Any]) -> bool:
    """Whether the spec starts through jupyter_layenv's provisioner, which records every start itself."""
    return layenv_provisioner(spec) is not None


def _issues_json(issues: list[HealthIssue] | None) -> list[dict[str, Any]] | None:
    return None if issues is None else [issue.json() for issue in issues]


def _facts(measure: Measure | None, use: LastUse | None) -> dict[str, Any]:
    return {
        "size_bytes": measure.size_bytes if measure is not None else None,
        "shared_bytes": measure.shared_bytes if measure is not None else None,
        "last_used": use.time if use is not None else None,
        "last_used_by": use.user if use is not None else None,
    }
