"""GET policy: what a create or delete by this caller would meet, so the panel greys out the rest with the reason.

A report only: it reads the service's roots, policy, quotas and jobs, and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import condabase
from .identity import account_name
from .kernels import group_name
from .model import SCOPE_SYSTEM
from .policy import CreateRoot, PolicyError

if TYPE_CHECKING:
    from .service import LayenvService

SYSTEM_ROOT_REFUSAL = "system roots hold the administrator's bases: jupyter_layenv never writes there"


def policy_report(service: LayenvService, write_refused: str | None) -> dict[str, Any]:
    """The JSON of GET policy for this caller (``write_refused``: why the authorizer refuses it any write)."""
    discovered, _ = service.ksm.current()
    create_roots = service.create_roots(discovered)
    roots = [
        _root_json(root, write_refused or refusal_message(service.policy.root_refusal(root))) for root in create_roots
    ]
    for root in discovered.roots:
        if root.scope == SCOPE_SYSTEM:
            system = CreateRoot(root.id, SCOPE_SYSTEM, root.path, group_name(root.gid), root.writable)
            roots.append(_root_json(system, SYSTEM_ROOT_REFUSAL))
    usage = service.quotas.usage(discovered, create_roots)  # the sizes measured so far: a report never waits
    create_refused = write_refused or refusal_message(service.quotas.refusal(usage))
    conda = service.conda_policy(create_refused, roots)
    if create_refused is None and not any(root["can_create"] for root in roots):
        create_refused = "; ".join(dict.fromkeys(root["refused"] for root in roots if root["refused"]))
    settings = service.jobs.settings
    return {
        "user": account_name(),
        "conda": conda,
        "hint": None if condabase.has_conda_env(discovered) else condabase.first_base_hint("rest"),
        "can_create": create_refused is None,
        "can_delete": write_refused is None,
        "create_refused": create_refused,
        "roots": roots,
        "allowed_bases": list(service.policy.allowed_bases),
        "max_envs_per_user": service.policy.max_envs_per_user,
        "envs_owned": usage.envs_owned,
        "max_bytes_per_user": service.policy.max_bytes_per_user,
        "bytes_owned": usage.bytes_owned,
        "max_jobs": service.policy.max_jobs,
        "active_jobs": usage.active_jobs,
        "packages": {
            "allowed": list(service.policy.allowed_packages),
            "denied": list(service.policy.denied_packages),
            "direct_references": service.policy.allow_direct_references,
            "installer_options": list(service.policy.allowed_installer_options),
        },
        "index": {
            "index_url": settings.index_url,
            "extra_index_urls": list(settings.extra_index_urls),
            "find_links": list(settings.find_links),
            "offline": settings.offline,
        },
    }


def refusal_message(error: PolicyError | None) -> str | None:
    return error.message if error is not None else None


def _root_json(root: CreateRoot, refused: str | None) -> dict[str, Any]:
    return {
        "id": root.id,
        "scope": root.scope,
        "path": root.path,
        "group": root.group,
        "writable": root.writable,
        "can_create": refused is None,
        "refused": refused,
    }
