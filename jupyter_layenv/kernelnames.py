"""Which listed kernel a saved kernel name stands for: JupyterLab asks before it starts a notebook's kernel.

A notebook saved under nb_conda_kernels names ``conda-env-<env>-py``; the kernel spec manager resolves such names
when a kernel is started by name (nbconvert, papermill), but JupyterLab only matches names it sees in
``/api/kernelspecs`` and would show its "Select Kernel" dialog. ``GET layenv/kernel-names/<name>`` answers the
listed name instead, so the browser can start that kernel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .kernels import KernelTable
from .policy import PolicyError


@dataclass(frozen=True, slots=True)
class ResolvedKernelName:
    """A saved name and the listed kernel it starts; ``env`` is the env's id (``null`` for a native kernelspec)."""

    name: str
    kernel: str
    display_name: str
    env: str | None

    def public(self) -> dict[str, Any]:
        return asdict(self)


def resolve_kernel_name(table: KernelTable, name: str) -> ResolvedKernelName:
    """The listed kernel ``name`` starts (itself when listed); a 404 saying so when it starts none."""
    kernel = table.resolve(name)
    spec = table.all_specs.get(kernel) if kernel is not None else None
    if kernel is None or spec is None:
        raise PolicyError(
            404,
            f"no listed kernel for the kernel name {name[:200]!r}: it names no environment's kernel here "
            "(see GET /api/kernelspecs, or `jupyter layenv list`), so the notebook needs a kernel picked for it",
            "kernel not found",
        )
    entry = table.entries.get(kernel)
    display_name = str(spec.get("spec", {}).get("display_name") or kernel)
    return ResolvedKernelName(name, kernel, display_name, entry.env_id if entry is not None else None)
