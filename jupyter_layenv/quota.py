"""A user's quotas: what counts against LayenvPolicy.max_jobs, max_envs_per_user and max_bytes_per_user, and the one
check every create makes with it (a layer, a Conda env, a base built for an environment.yml), so that no kind of
create can slip past a quota the others meet. GET policy reports the same numbers. Blocking: call from a thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import fsread
from .model import Discovered, Environment
from .policy import CreateRoot, PolicyError

if TYPE_CHECKING:
    from .service import LayenvService


@dataclass(frozen=True)
class Usage:
    envs_owned: int  # the user's envs, and its creates under way
    bytes_owned: int  # their own bytes (size_bytes), as measured
    active_jobs: int  # this server's queued and running jobs


class Quotas:
    def __init__(self, service: LayenvService) -> None:
        self.service = service

    def mine(self, discovered: Discovered, roots: list[CreateRoot]) -> list[Environment]:
        """This user's envs where it creates: the user and group roots, and its Conda envs dir (Conda creates)."""
        uid = os.getuid()
        places = [*(root.path for root in roots), fsread.expand(self.service.conda_envs_dir)]
        prefixes = tuple(path.rstrip(os.sep) + os.sep for path in places)
        return [env for env in discovered.environments if env.owner_uid == uid and env.path.startswith(prefixes)]

    def usage(
        self, discovered: Discovered, roots: list[CreateRoot], *, wait: bool = False, sizes: bool = True
    ) -> Usage:
        """What counts against the quotas now. ``wait``: measure the sizes not known yet, as a create does (GET
        policy counts what is known, no walk); ``sizes=False``: leave them out (0), as a create does with no size
        quota."""
        mine = self.mine(discovered, roots)
        listed = {env.path for env in discovered.environments}
        # a create whose env is listed already is in its last step (registering it, queueing the layer of a base
        # built first): it counts as that env, not a second time, and no longer as a job
        plans = [
            plan
            for plan in self.service.jobs.active_plans()
            if plan.get("kind") == "change" or plan.get("path") not in listed
        ]
        creating = sum(1 for plan in plans if plan.get("kind") != "change")
        size = self.service.usage.size_bytes([env.path for env in mine], wait=wait) if sizes else 0
        return Usage(len(mine) + creating, size, len(plans))

    def refusal(self, usage: Usage) -> PolicyError | None:
        """Why one more create is refused by a quota, or ``None``."""
        try:
            self.service.policy.check_quota(usage.envs_owned, usage.active_jobs)
            self.service.policy.check_bytes(usage.bytes_owned)
        except PolicyError as err:
            return err
        return None

    def check(self, discovered: Discovered, roots: list[CreateRoot]) -> None:
        """Raise the refusal of one more create (the sizes are measured only when a size quota is set)."""
        sized = bool(self.service.policy.max_bytes_per_user)
        refusal = self.refusal(self.usage(discovered, roots, wait=True, sizes=sized))
        if refusal is not None:
            raise refusal
