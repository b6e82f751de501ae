"""``jupyter layenv list|doctor``: what discovery found, where it looked and what it skipped, as text or JSON."""

from __future__ import annotations

import glob
import os
from typing import Any

from jupyter_core.application import JupyterApp

from .cli_base import LayenvCommand, ServiceCommand
from .clitext import printable
from .cliwords import cli_words
from .condabase import first_base_hint, has_conda_env
from .kernels import group_name
from .kernelspecs import LayenvKernelSpecManager
from .sharing import foreign_owners
from .usage import health


class DoctorApp(LayenvCommand):
    takes_names = False
    name = "jupyter-layenv-doctor"
    description = "Explain what discovery looked at, what it found, what it skipped and why."

    def start(self) -> None:
        ksm = self.manager()
        listing = ksm.listing()
        issues = health.of_all(ksm.current()[0])
        for env in listing["environments"]:
            env["health"] = [issue.json() for issue in issues.get(env["id"], [])]
        report = {
            "locations": _locations(ksm),
            "shared_roots": _shared_roots(ksm),
            **listing,
            "kernel_spec_manager": _server_ksm_report(self),
        }
        if not has_conda_env(ksm.current()[0]):
            report["hint"] = first_base_hint("cli")
        if self.json_output:
            self.emit(report)
            return
        print("Where discovery looked:")
        for loc in report["locations"]:
            print(printable(f"  {'found  ' if loc['exists'] else 'absent '} {loc['kind']:<18} {loc['path']}"))
        for root in report["shared_roots"]:
            access = "writable" if root["writable"] else "read-only"
            if root["scope"] == "group":
                member = "member" if root["member"] else "NOT a member: not listed"
                access = f"group {root['group']}, {member}, {access}"
            print(printable(f"  found   {root['scope'] + ' root':<18} {root['path']}  [{root['id']}: {access}]"))
            for owned in root["foreign_owners"]:
                print(printable(f"            ! {owned['message']}"))
        print()
        print(render_listing(report))
        server = report["kernel_spec_manager"]
        print()
        print(f"Server kernel spec manager: {server['message']}")


class ListApp(ServiceCommand):
    takes_names = False
    name = "jupyter-layenv-list"
    description = "List every environment found, grouped by base, with its kernels or why it has none."

    def start(self) -> None:
        listing = self.service().listing_now(wait_health=True)  # the JSON of GET environments, every env checked
        if "hint" in listing:
            listing["hint"] = first_base_hint("cli")  # in the CLI's words
        if self.json_output:
            self.emit(listing)
            return
        print(render_listing(listing, health_detail=False))


def render_listing(listing: dict[str, Any], *, health_detail: bool = True) -> str:
    """Environments as a tree by base, each with its kernels or the reason it has none, and its health issues
    (``health_detail``: each with what to do, as ``doctor`` prints them; else one short line)."""
    envs = listing["environments"]
    by_path = {env["path"]: env for env in envs}
    children: dict[str, list[dict]] = {}
    roots = []
    for env in envs:
        if env["base"] in by_path:
            children.setdefault(env["base"], []).append(env)
        else:
            roots.append(env)
    lines = []

    def show(env: dict, depth: int) -> None:
        indent = "  " * depth + ("└ " if depth else "")
        scope = f"group {env['group']}" if env["scope"] == "group" else env["scope"]
        flags = [env["kind"], f"Python {env['python_version'] or '?'}", scope]
        if not env["writable"]:
            flags.append("read-only")
        head = f"{indent}{env['name']}  [{', '.join(flags)}]"
        lines.append(f"{head}  {env['path']}")
        pad = "  " * (depth + 2)
        for kernel in env["kernels"]:
            lines.append(f"{pad}kernel {kernel['name']}: {kernel['display_name']}")
        if not env["kernels"]:
            lines.append(f"{pad}not a kernel: {env['skipped_reason'] or 'no kernel'}")
        issues = env.get("health") or []
        if health_detail:
            lines.extend(f"{pad}{issue['kind']}: {cli_words(issue['message'])}" for issue in issues)
        elif issues:
            named = ", ".join(f"{issue['kind']} {issue['package'] or ''}".strip() for issue in issues)
            count = f"{len(issues)} issue{'s' if len(issues) > 1 else ''}"
            lines.append(f"{pad}health: {count} ({named}); `jupyter layenv doctor` says what to do")
        for child in children.get(env["path"], []):
            show(child, depth + 1)

    for env in roots:
        show(env, 0)
    if listing["skipped"]:
        lines.append("")
        lines.append("Skipped (not usable environments):")
        lines.extend(f"  {skip['path']}: {skip['reason']}" for skip in listing["skipped"])
    if listing.get("hint"):
        lines += ["", listing["hint"]]
    return (
        "\n".join(map(printable, lines))
        if lines
        else "No environments found. Run `jupyter layenv doctor` to see where it looked."
    )


def _locations(ksm: LayenvKernelSpecManager) -> list[dict[str, Any]]:
    cfg = ksm.discovery.config
    kinds = [
        ("conda root", cfg.conda_roots),
        ("envs dir", cfg.envs_dirs),
        ("environments.txt", cfg.environments_files),
        ("condarc", cfg.condarc_paths),
        ("venv root", cfg.venv_roots),
        ("env path", cfg.env_paths),
        ("system root", cfg.system_roots),
        ("group root (glob)", cfg.group_roots),
    ]
    found = {path: bool(glob.glob(path)) for path in cfg.group_roots}  # a glob "exists" when it matches
    return [
        {"kind": kind, "path": path, "exists": found[path] if paths is cfg.group_roots else os.path.exists(path)}
        for kind, paths in kinds
        for path in paths
    ]


def _shared_roots(ksm: LayenvKernelSpecManager) -> list[dict[str, Any]]:
    """The system and group roots found, with what the filesystem says about them for this user."""
    discovered, _ = ksm.current()
    return [
        {
            "id": root.id,
            "scope": root.scope,
            "path": root.path,
            "group": group_name(root.gid),
            "member": root.member,
            "writable": root.writable,
            "foreign_owners": foreign_owners(root, discovered),
        }
        for root in discovered.roots
    ]


def _server_ksm_report(app: JupyterApp) -> dict[str, Any]:
    config = app.config
    for section in ("ServerApp", "NotebookApp", "JupyterApp"):
        if section in config and "kernel_spec_manager_class" in config[section]:
            value = str(config[section]["kernel_spec_manager_class"])
            ours = value.startswith("jupyter_layenv")
            return {
                "ours": ours,
                "message": f"{value} (set by {section}.kernel_spec_manager_class)"
                + (
                    ""
                    if ours
                    else "; env kernels will NOT be listed: remove that setting (for nb_conda_kernels: "
                    "`python -m nb_conda_kernels uninstall`) or set "
                    "c.ServerApp.kernel_spec_manager_class = 'jupyter_layenv.LayenvKernelSpecManager'"
                ),
            }
    return {
        "ours": True,
        "message": "jupyter_layenv.LayenvKernelSpecManager (set by the jupyter_layenv server extension)",
    }
