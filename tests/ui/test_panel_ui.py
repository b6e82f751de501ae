"""Browser tests of the JupyterLab panel: real JupyterLab, real Chromium, real environments.

The server is a real ``jupyter lab`` of an environment where the *built wheel* is installed (``.ci/run`` makes
``.venv-ui`` and exports ``LAYENV_UI_JUPYTER``), on a fake HOME holding the Conda-style tree of
``tests/envtree.py``; the creation service installs from a local wheelhouse, set through its traitlets in the
server's config file, with one group root (``groups/physics``, the server's own group) and two of
``LayenvPolicy``'s rules (only some bases allowed, one package denied), so the panel's policy state is real.
``panel_flow.cjs`` (playwright-core, Debian's chromium) drives the whole flow once per theme and saves a
screenshot of every stage under ``test-artifacts/``.

Without ``LAYENV_UI_JUPYTER``, Chromium or ``labextension/node_modules`` the tests are skipped, unless
``LAYENV_UI_REQUIRED=1`` (as in ``.ci/run``), where a missing piece fails them.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from jupyter_process import JupyterProcess

REPO = Path(__file__).resolve().parents[2]
FLOW = Path(__file__).with_name("panel_flow.cjs")
ARTIFACTS = Path(os.environ.get("LAYENV_UI_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("LAYENV_UI_REQUIRED") == "1"
TOKEN = "layenv-ui-test-token"
INICONFIG_VERSION = "2.0.0"
GROUP_ROOT = "group:physics"  # groups/physics: GET policy's id of the group root (its directory's name)
DENIED_PACKAGE = "forbidden-demo"  # LayenvPolicy.denied_packages: a create naming it is refused (403)
ALLOWED_BASES = ["conda-py311_ai", "*/miniconda3"]  # LayenvPolicy.allowed_bases: the others are greyed out
REFUSED_BASE_ID = "conda-rstats"  # a Conda env that allowed_bases leaves out


def _missing() -> str | None:
    jupyter = os.environ.get("LAYENV_UI_JUPYTER")
    if not jupyter or not os.access(jupyter, os.X_OK):
        return "LAYENV_UI_JUPYTER is not the jupyter of an env with the built wheel and jupyterlab (see .ci/run)"
    if not shutil.which("node"):
        return "node is not on PATH"
    if not (REPO / "labextension" / "node_modules" / "playwright-core").is_dir():
        return "labextension/node_modules/playwright-core is missing: run `npm ci` in labextension/"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    return None


def require_browser() -> None:
    """Skip when a piece of the browser tests is missing; fail instead under LAYENV_UI_REQUIRED=1 (CI)."""
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"browser tests required (LAYENV_UI_REQUIRED=1) but {missing}")
        pytest.skip(missing)


def start_lab(base: Path, home: Path, config: dict) -> JupyterProcess:
    """A real ``jupyter lab`` of LAYENV_UI_JUPYTER on ``home`` (its root dir) with ``config``, ready to serve."""
    from jupyter_process import JupyterProcess

    # No "get Jupyter news?" toast over the screenshots (user settings live in the Jupyter config dir).
    news = base / "config/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}\n', encoding="utf-8")
    # The env this JupyterLab runs from is the test harness (.venv-ui), not a user's env: not listed, so neither
    # it nor its folder (the checkout) shows up in the panel, its Storage roots or the screenshots.
    manager = config.setdefault("LayenvKernelSpecManager", {})
    manager.setdefault("include_server_prefix", False)
    lab = JupyterProcess(
        base,
        home,
        app="lab",
        jupyter=os.environ["LAYENV_UI_JUPYTER"],
        token=TOKEN,
        config_files={"jupyter_server_config.json": config},
        args=[f"--ServerApp.root_dir={home}", "--LabApp.expose_app_in_browser=True"],
        drop_env=("PYTHONPATH", "VIRTUAL_ENV", "CONDA", "MAMBA", "JUPYTER", "WORKON_HOME"),
        cwd=home,
    )
    try:
        lab.wait_ready("layenv/environments")
    except BaseException:
        lab.stop()
        raise
    return lab


def run_flow(script: Path, env: dict[str, str], timeout: float) -> tuple[int, list[str], list[str]]:
    """Run a browser flow with node against the server; echo its lines. Its exit code, stdout and stderr lines."""
    env = {**os.environ, "LAYENV_UI_TOKEN": TOKEN, "LAYENV_UI_ARTIFACTS": str(ARTIFACTS), "CHROMIUM": CHROMIUM, **env}
    proc = subprocess.run(["node", str(script)], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip
    # Chromium's own stderr chatter (dbus, vulkan) is noise; the flow's lines say what was checked.
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("[pid=")]
    sys.stdout.write("\n".join(lines) + "\n")
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("[pid=")]
    return proc.returncode, lines, errors


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_browser()
    from envtree import build_home_tree, make_conda_prefix, make_layered_env
    from wheelhouse import write_wheel

    base = tmp_path_factory.mktemp("ui")
    home = base / "home"
    build_home_tree(home)
    wheelhouse = base / "wheelhouse"
    write_wheel(
        wheelhouse, "iniconfig", INICONFIG_VERSION, {"iniconfig/__init__.py": f'__version__ = "{INICONFIG_VERSION}"\n'}
    )
    _write_slow_sdist(wheelhouse)
    # A layer per theme whose Conda base was deleted: listed under "Not listed as kernels", deleted from there.
    doomed = make_conda_prefix(home / "miniconda3" / "envs" / "doomed_ui")
    for theme in ("light", "dark"):
        make_layered_env(doomed, home / ".virtualenvs" / f"orphan_{theme}")
    shutil.rmtree(doomed)
    # In the server's root dir, for the "pick a requirements.txt in the file browser" step.
    (home / "requirements-ui.txt").write_text("iniconfig\n", encoding="utf-8")
    # A group root: a directory of the server's own group (so it is a member), setgid and group-writable.
    group_root = base / "groups" / "physics"
    group_root.mkdir(parents=True)
    group_root.chmod(0o2775)
    config = {
        # The creation service installs from the wheelhouse only: configured on the server, never in a request.
        "LayenvService": {"find_links": [str(wheelhouse)], "offline": True},
        "LayenvKernelSpecManager": {"group_roots": [str(base / "groups" / "*")]},
        "LayenvPolicy": {"allowed_bases": ALLOWED_BASES, "denied_packages": [DENIED_PACKAGE]},
    }
    lab = start_lab(base, home, config)
    try:
        yield lab.url
    finally:
        lab.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(lab.log, ARTIFACTS / "server.log")


_SLOW_BACKEND = """\
\"\"\"A build backend that never ends (a stand-in for a long compile): the job stays running until cancelled.\"\"\"
import sys
import time


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    for step in range(1200):
        print(f"compiling slowbuild: step {step}", file=sys.stderr, flush=True)
        time.sleep(0.5)
    raise RuntimeError("slowbuild never finishes")
"""


def _write_slow_sdist(wheelhouse: Path) -> Path:
    """``slowbuild-1.0.tar.gz``: an sdist with an in-tree backend (no build requirements, works offline)."""
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "slowbuild"\nversion = "1.0"\n',
        "backend.py": _SLOW_BACKEND,
        "PKG-INFO": "Metadata-Version: 2.1\nName: slowbuild\nVersion: 1.0\n",
    }
    sdist = wheelhouse / "slowbuild-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"slowbuild-1.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist


@pytest.mark.timeout(600)
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_panel_flow(lab_server: str, theme: str) -> None:
    """Sidebar, create from the launcher with live progress, kernel, notebook, reload, export, delete; the policy;
    a layer whose base was deleted deleted from "Not listed as kernels".

    The light run creates its env in the group root, the dark run in the user root.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{theme}-*"):
        old.unlink()
    env = {
        "LAYENV_UI_URL": lab_server,
        "LAYENV_UI_THEME": theme,
        "LAYENV_UI_ENV_NAME": f"ui_{theme}",
        "LAYENV_UI_BASE_ID": "conda-py311_ai",
        "LAYENV_UI_BASE_PACKAGE": "layenv_base_marker",
        "LAYENV_UI_PACKAGE": "iniconfig",
        "LAYENV_UI_SLOW_PACKAGE": "slowbuild",
        "LAYENV_UI_GROUP_ROOT": GROUP_ROOT,
        "LAYENV_UI_ROOT": GROUP_ROOT if theme == "light" else "user",
        "LAYENV_UI_DENIED_PACKAGE": DENIED_PACKAGE,
        "LAYENV_UI_REFUSED_BASE_ID": REFUSED_BASE_ID,
        "LAYENV_UI_ORPHAN_NAME": f"orphan_{theme}",
    }
    returncode, flow_lines, errors = run_flow(FLOW, env, timeout=540)
    assert returncode == 0, "browser flow failed:\n" + "\n".join(flow_lines[-40:] + errors[-60:])
    shots = sorted(ARTIFACTS.glob(f"{theme}-*.png"))
    assert len(shots) >= 25, f"expected a screenshot per stage in {ARTIFACTS}, found {[p.name for p in shots]}"


def test_the_harness_venv_is_not_a_user_env(lab_server: str) -> None:
    """The env the test JupyterLab runs from (``.venv-ui``, next to the checkout) is the harness, not a user's:
    neither listed nor a Storage root (its folder, the checkout, was shown as one)."""
    from jupyter_process import http

    harness = Path(os.environ["LAYENV_UI_JUPYTER"]).resolve().parents[1]
    listed = http("GET", f"{lab_server}layenv/environments", TOKEN).body["environments"]
    assert not [env["path"] for env in listed if Path(env["path"]).resolve() == harness]
    roots = [root["root"] for root in http("GET", f"{lab_server}layenv/usage", TOKEN).body["roots"]]
    assert not [root for root in roots if harness.is_relative_to(Path(root).resolve())], roots
