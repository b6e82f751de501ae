"""``jupyter layenv sync``: the env kernelspecs on disk, for tools that do not load the server extension."""

from __future__ import annotations

import json
import os
import shutil
import sys

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool

from .cli_base import LayenvCommand
from .clitext import json_text
from .kernels import SYNC_MARKER
from .kernelspecs import LayenvKernelSpecManager
from .model import KernelEntry


class SyncApp(LayenvCommand):
    takes_names = False
    name = "jupyter-layenv-sync"
    description = (
        "Write the env kernelspecs to disk for tools that do not load the server extension "
        "(nbconvert, papermill, voila), and remove stale ones written earlier."
    )
    user = Bool(True, config=True, help="Write to the user's Jupyter data dir (default).")
    sys_prefix = Bool(False, config=True, help="Write to sys.prefix/share/jupyter/kernels.")
    flags = {
        "user": ({"SyncApp": {"user": True, "sys_prefix": False}}, "Install for this user (default)."),
        "sys-prefix": ({"SyncApp": {"sys_prefix": True, "user": False}}, "Install into sys.prefix."),
        "json": ({"LayenvCommand": {"json_output": True}}, "Print JSON."),
    }

    def start(self) -> None:
        target = (
            os.path.join(sys.prefix, "share", "jupyter", "kernels")
            if self.sys_prefix
            else os.path.join(jupyter_data_dir(), "kernels")
        )
        written, removed = sync_kernelspecs(self.manager(), target)
        if self.json_output:
            self.emit({"directory": target, "written": written, "removed": removed})
            return
        print(f"{len(written)} kernelspec(s) written to {target}; {len(removed)} stale one(s) removed.")
        for name in removed:
            print(f"  removed {name}")


def sync_kernelspecs(ksm: LayenvKernelSpecManager, target: str) -> tuple[list[str], list[str]]:
    """Write every env kernel to ``target``; remove only the ones this command wrote earlier.

    The names nb_conda_kernels gave the same kernels (``conda-env-<env>-py``) are written too, so a notebook saved
    with one runs in nbconvert or papermill; a kernelspec of that name this command did not write is left alone.
    """
    table = ksm.kernel_table()
    os.makedirs(target, exist_ok=True)
    wanted: dict[str, tuple[KernelEntry, str | None]] = {name: (entry, None) for name, entry in table.entries.items()}
    for alias, name in table.nb_conda_aliases.items():
        if alias not in wanted and name in table.entries and _ours_or_absent(os.path.join(target, alias)):
            wanted[alias] = (table.entries[name], name)
    written = []
    for name, (entry, alias_of) in sorted(wanted.items()):
        directory = os.path.join(target, name)
        os.makedirs(directory, exist_ok=True)
        for logo in os.listdir(entry.resource_dir) if os.path.isdir(entry.resource_dir) else []:
            if logo.startswith("logo-"):
                shutil.copyfile(os.path.join(entry.resource_dir, logo), os.path.join(directory, logo))
        metadata = {**entry.spec.get("metadata", {}), SYNC_MARKER: True, **({"alias_of": alias_of} if alias_of else {})}
        text = json_text({**entry.spec, "metadata": metadata}, indent=1)  # an env's name need not be UTF-8
        with open(os.path.join(directory, "kernel.json"), "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(name)
    removed = []
    for name in sorted(os.listdir(target)):
        if name not in wanted and _synced_here(os.path.join(target, name)):
            shutil.rmtree(os.path.join(target, name))
            removed.append(name)
    return written, removed


def _synced_here(directory: str) -> bool:
    """A kernelspec ``jupyter layenv sync`` wrote (its marker in the metadata)."""
    try:
        with open(os.path.join(directory, "kernel.json"), encoding="utf-8") as handle:
            spec = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(spec, dict) and bool((spec.get("metadata") or {}).get(SYNC_MARKER))


def _ours_or_absent(directory: str) -> bool:
    return not os.path.lexists(directory) or _synced_here(directory)
