"""Who can still change a group root's environments: the Unix owner of an env's files keeps the right to change
them after leaving the group (or after the account is deleted, whoever gets its uid next), while the members'
kernels run them. ``jupyter layenv doctor`` tells the administrator, with what to do."""

from __future__ import annotations

import os
import pwd

from .kernels import group_name
from .model import SCOPE_GROUP, Discovered, ScopedRoot


def foreign_owners(root: ScopedRoot, discovered: Discovered) -> list[dict[str, str]]:
    """The envs directly in the group ``root`` whose owner is not a member of its group, each with what to do."""
    if root.scope != SCOPE_GROUP:
        return []
    group = group_name(root.gid)
    prefix = root.path.rstrip(os.sep) + os.sep
    member: dict[int, str | None] = {}  # uid -> None: a member (or root), else how to name the outsider
    found = []
    for env in discovered.environments:
        if not env.path.startswith(prefix) or os.sep in env.path[len(prefix) :]:
            continue
        if env.owner_uid not in member:
            member[env.owner_uid] = _outsider(env.owner_uid, root.gid)
        owner = member[env.owner_uid]
        if owner is not None:
            found.append({
                "env": env.name,
                "path": env.path,
                "owner": owner,
                "message": f"{env.name} is owned by {owner}, who is not a member of {group}: as its owner, they can "
                f"still change its files, which the members' kernels run; make a member its owner (chown -R MEMBER "
                f"{env.path}) or delete it",
            })  # fmt: skip
    return found


def _outsider(uid: int, gid: int) -> str | None:
    """How to name ``uid`` when it is not in group ``gid`` (``None``: it is, or it is root). Membership as a login
    gets it (``getgrouplist``: /etc/group, LDAP, SSSD), not the group's member list, which directories may omit."""
    if uid == 0:
        return None
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return f"uid {uid}, an account that no longer exists (whoever is given that uid next)"
    return None if gid in os.getgrouplist(entry.pw_name, entry.pw_gid) else entry.pw_name
