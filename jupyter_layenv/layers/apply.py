"""The commands that carry out a :class:`~.plan.LayerPlan`: pinned installs with ``--no-deps``, plain uninstalls.

Nothing is left for the installer to decide: the plan already chose every version against the base.
Names and specs go through files, never the command line.
"""

from __future__ import annotations

from ..create.installers import InstallerSettings, pip_command, uv_command
from .installed import installed
from .plan import LayerState


def layer_state(python: str, python_version: str | None, base_path: str | None, layer_path: str) -> LayerState:
    """What a layer's Python sees (``base_path`` ``None``: the layer does not inherit). ``python_version``: that
    Python's (its base's): the ``lib/pythonX.Y/site-packages`` of the layer and of its base it imports from. Blocking.
    """
    base = installed(base_path, python_version) if base_path else {}
    return LayerState(python, base, installed(layer_path, python_version))


def install_argv(
    installer: str, uv: str | None, python: str, requirements: str, settings: InstallerSettings,
    options: tuple[str, ...] = (),
) -> list[str]:  # fmt: skip
    pinned = tuple(dict.fromkeys([*options, "--no-deps"]))
    if installer == "uv" and uv:
        return uv_command(uv, python, requirements, settings, pinned)
    return pip_command(python, requirements, settings, pinned)


def uninstall_argv(installer: str, uv: str | None, python: str, names: str) -> list[str]:
    if installer == "uv" and uv:
        return [uv, "pip", "uninstall", "--no-config", "--python", python, "-r", names]
    return [python, "-m", "pip", "uninstall", "--yes", "--isolated", "--disable-pip-version-check", "-r", names]
