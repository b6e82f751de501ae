"""Health from files only: pip over conda, two copies of one distribution, unmet requirements across a layer and
its base, on real prefixes changed by a real installer (uv), through GET environments/<id> and `doctor`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from envtree import add_pure_python_package, make_conda_prefix, make_layered_env, site_packages, uv_install
from isolated_ksm import looking_only_at
from jupyter_process import JUPYTER
from layenv_api import fetch_json
from wheelhouse import write_wheel

from jupyter_layenv.discovery import RACY_WINDOW_NS
from jupyter_layenv.usage.healthcache import HealthTracker


@pytest.fixture(scope="module")
def health_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("health-home")
    wheels = home / "wheels"
    write_wheel(wheels, "six", "99.0", {"six.py": "PLANTED = True\n"})
    write_wheel(wheels, "iniconfig", "2.0", {"iniconfig/__init__.py": ""})
    write_wheel(wheels, "iniconfig", "1.0", {"iniconfig/__init__.py": ""})
    write_wheel(wheels, "sciutil", "1.0", {"sciutil.py": ""}, requires=("iniconfig>=2",))
    write_wheel(wheels, "lonely", "1.0", {"lonely.py": ""}, requires=("notthere>=1",))
    write_wheel(wheels, "needsnew", "1.0", {"needsnew.py": ""},
                requires=('iniconfig>=3; python_version >= "3"', 'missingpkg; python_version < "3"',
                          'alsomissing; extra == "fast"'))  # fmt: skip
    root = make_conda_prefix(home / "miniconda3", conda_root=True)
    sci = make_conda_prefix(root / "envs" / "sci", packages=["six", "packaging"])  # installed by conda
    uv_install(sci, wheels, "six==99.0", "sciutil==1.0", "iniconfig==2.0")  # pip over conda's six
    uv_install(sci, wheels, "lonely==1.0", deps=False)  # a requirement the base itself does not meet
    layer = make_layered_env(sci, home / ".virtualenvs" / "proj", inherit=True, tool="uv")
    uv_install(layer, wheels, "needsnew==1.0", "iniconfig==1.0", deps=False)  # shadows the base's iniconfig 2.0
    add_pure_python_package(site_packages(layer), "twice", "1.0")
    add_pure_python_package(site_packages(layer), "twice", "2.0")
    return home


@pytest.fixture
def jp_home_dir(health_home: Path) -> Path:
    return health_home


@pytest.fixture
def jp_server_config() -> dict:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}}}


def by_kind(health: list[dict]) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for issue in health:
        assert issue["message"], issue
        kinds.setdefault(issue["kind"], set()).add(issue["package"])
    return kinds


async def test_planted_pip_over_conda_and_broken_requirements_are_flagged(jp_fetch, health_home: Path):
    code, listing = await fetch_json(jp_fetch, "environments")
    assert code == 200
    ids = {env["path"]: env["id"] for env in listing["environments"]}
    sci, layer = health_home / "miniconda3" / "envs" / "sci", health_home / ".virtualenvs" / "proj"

    _, base = await fetch_json(jp_fetch, "environments", ids[str(sci)])
    # sciutil is met in the base (iniconfig 2.0); lonely is not
    assert by_kind(base["health"]) == {"pip-over-conda": {"six"}, "unmet-requirement": {"lonely"}}
    (six,) = [issue for issue in base["health"] if issue["kind"] == "pip-over-conda"]
    assert "installed by uv over the conda package six" in six["message"]
    assert f"conda install --force-reinstall -p {sci} six" in six["message"]
    # what to do in the API's words (the panel shows it): no command-line option of jupyter layenv's
    assert "a new environment on the base conda-sci with the package six" in six["message"], six
    assert "jupyter layenv" not in six["message"] and "--base" not in six["message"], six

    _, proj = await fetch_json(jp_fetch, "environments", ids[str(layer)])
    assert by_kind(proj["health"]) == {
        # needsnew's own requirement (marker true), and the base's sciutil broken by the layer's iniconfig 1.0;
        # not missingpkg (marker false) nor alsomissing (an extra nobody asked for); lonely is the base's own
        # problem, reported on the base only
        "unmet-requirement": {"needsnew", "sciutil"},
        "duplicate-distribution": {"twice"},
    }
    messages = " | ".join(issue["message"] for issue in proj["health"])
    assert "needsnew 1.0 requires iniconfig>=3, but iniconfig 1.0 is installed" in messages
    assert "sciutil 1.0 requires iniconfig>=2, but iniconfig 1.0 is installed" in messages
    assert "%pip install 'iniconfig>=3'" in messages
    assert "missingpkg" not in messages and "alsomissing" not in messages
    assert "twice-1.0.dist-info, twice-2.0.dist-info" in messages

    _, root = await fetch_json(jp_fetch, "environments", ids[str(health_home / "miniconda3")])
    assert root["health"] == []  # a sound env says so


async def test_every_env_in_the_listing_carries_its_health(jp_fetch, health_home: Path):
    """GET environments: ``health`` on every env, ``null`` until checked in the background, then the issues."""
    sci, layer = health_home / "miniconda3" / "envs" / "sci", health_home / ".virtualenvs" / "proj"
    deadline = time.monotonic() + 60
    while True:
        code, listing = await fetch_json(jp_fetch, "environments")
        assert code == 200
        assert all("health" in env for env in listing["environments"]), listing["environments"]
        envs = {env["path"]: env for env in listing["environments"]}
        if all(env["health"] is not None for env in envs.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert by_kind(envs[str(sci)]["health"]) == {"pip-over-conda": {"six"}, "unmet-requirement": {"lonely"}}
    assert by_kind(envs[str(layer)]["health"]) == {
        "unmet-requirement": {"needsnew", "sciutil"},
        "duplicate-distribution": {"twice"},
    }
    assert envs[str(health_home / "miniconda3")]["health"] == []


def test_health_is_cached_until_the_env_changes(tmp_path: Path):
    """A second check reads no file while the env's directories are unchanged and settled (an edit in place, which no
    installer makes once it is done, is not seen until a directory changes); a planted copy is seen at once."""
    base = make_conda_prefix(tmp_path / "miniconda3", conda_root=True)
    layer = make_layered_env(base, tmp_path / "venvs" / "lay", inherit=True, tool="uv")
    ksm = looking_only_at(conda_roots=[str(base)], venv_roots=[str(tmp_path / "venvs")], ensure_native_kernel=False)
    discovered = ksm.current()[0]
    tracker = HealthTracker(refresh=0)
    try:
        add_pure_python_package(site_packages(layer), "solo", "1.0")
        assert tracker.issues(discovered)[str(layer)] is None  # not checked yet: the caller does not wait
        assert tracker.checked(discovered)[str(layer)] == []
        metadata = site_packages(layer) / "solo-1.0.dist-info" / "METADATA"
        # written after the check (an install still writing) moves no directory the check stamped; a check made
        # within the racy window of a change is made again, so it is seen
        metadata.write_text("Metadata-Version: 2.1\nName: solo\nVersion: 1.0\nRequires-Dist: gone\n")
        assert [issue.kind for issue in tracker.checked(discovered)[str(layer)]] == ["unmet-requirement"]
        metadata.write_text("Metadata-Version: 2.1\nName: solo\nVersion: 1.0\n")
        time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)  # settled: the stamps alone validate the next check
        assert tracker.checked(discovered)[str(layer)] == []
        metadata.write_text("Metadata-Version: 2.1\nName: solo\nVersion: 1.0\nRequires-Dist: gone\n")
        assert tracker.checked(discovered)[str(layer)] == []  # unchanged directories: not checked again
        moved = site_packages(layer).stat().st_mtime_ns + 1_000_000_000  # a change, whatever the clock's tick
        os.utime(site_packages(layer), ns=(moved, moved))
        assert [issue.kind for issue in tracker.checked(discovered)[str(layer)]] == ["unmet-requirement"]
        (site_packages(layer) / "solo-1.0.dist-info" / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: solo\nVersion: 1.0\n"
        )  # sound again; the copies planted next change the directory
        add_pure_python_package(site_packages(layer), "twice", "1.0")
        add_pure_python_package(site_packages(layer), "twice", "2.0")
        assert [issue.kind for issue in tracker.checked(discovered)[str(layer)]] == ["duplicate-distribution"]
        add_pure_python_package(site_packages(base), "lonely", "1.0")
        (site_packages(base) / "lonely-1.0.dist-info" / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: lonely\nVersion: 1.0\nRequires-Dist: notthere\n"
        )
        os.utime(site_packages(base))  # an in-place edit of METADATA: what pip never does, here made visible
        kinds = {issue.kind for issue in tracker.checked(discovered)[str(base)]}
        assert kinds == {"unmet-requirement"}
    finally:
        tracker.stop()


def test_health_reads_the_site_packages_of_the_envs_python(tmp_path: Path):
    """A ``lib/python3.99/site-packages`` another Python left in a layer (newer than its own) is not what the layer
    imports: two copies of a package there are no issue of the layer. Broken by: checking the newest site-packages
    in ``lib`` (the check's cache already stamped the one of the env's Python)."""
    base = make_conda_prefix(tmp_path / "miniconda3", conda_root=True)
    layer = make_layered_env(base, tmp_path / "venvs" / "lay", inherit=True, tool="uv")
    stray = layer / "lib" / "python3.99" / "site-packages"
    add_pure_python_package(stray, "twice", "1.0")
    add_pure_python_package(stray, "twice", "2.0")
    ksm = looking_only_at(conda_roots=[str(base)], venv_roots=[str(tmp_path / "venvs")], ensure_native_kernel=False)
    discovered = ksm.current()[0]
    version = next(env.python_version for env in discovered.environments if env.path == str(layer))
    assert version and not version.startswith("3.99")
    tracker = HealthTracker(refresh=0)
    try:
        assert tracker.checked(discovered)[str(layer)] == []
        add_pure_python_package(site_packages(layer), "twice", "1.0")  # its own site-packages: seen
        add_pure_python_package(site_packages(layer), "twice", "2.0")
        assert [issue.kind for issue in tracker.checked(discovered)[str(layer)]] == ["duplicate-distribution"]
    finally:
        tracker.stop()


def _cli_environ(home: Path, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: ``home`` as HOME, no test PYTHONPATH, nothing pointing at the machine's own envs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HOME=str(home), JUPYTER_DATA_DIR=str(tmp_path / "data"), JUPYTER_CONFIG_DIR=str(tmp_path))
    for var in ("CONDA_EXE", "CONDA_PREFIX", "MAMBA_ROOT_PREFIX", "WORKON_HOME", "CONDARC", "XDG_CONFIG_HOME"):
        env.pop(var, None)
    return env


def test_list_shows_health(health_home: Path, tmp_path: Path):
    env = _cli_environ(health_home, tmp_path)
    listing = json.loads(subprocess.run([JUPYTER, "layenv", "list", "--json"], capture_output=True, text=True,
                                        env=env, timeout=120, check=True).stdout)  # fmt: skip
    health = {e["path"]: e["health"] for e in listing["environments"]}
    assert by_kind(health[str(health_home / "miniconda3" / "envs" / "sci")])["pip-over-conda"] == {"six"}
    assert health[str(health_home / "miniconda3")] == []

    text = subprocess.run([JUPYTER, "layenv", "list"], capture_output=True, text=True, env=env, timeout=120).stdout
    assert "health: 2 issues (pip-over-conda six, unmet-requirement lonely); `jupyter layenv doctor` says" in text
    assert "was installed by uv over the conda package" not in text  # the short line; doctor has the whole story


def test_doctor_reports_health(health_home: Path, tmp_path: Path):
    env = _cli_environ(health_home, tmp_path)
    report = json.loads(subprocess.run([JUPYTER, "layenv", "doctor", "--json"], capture_output=True, text=True,
                                       env=env, timeout=120, check=True).stdout)  # fmt: skip
    health = {e["path"]: by_kind(e["health"]) for e in report["environments"]}
    assert health[str(health_home / "miniconda3" / "envs" / "sci")]["pip-over-conda"] == {"six"}
    assert health[str(health_home / ".virtualenvs" / "proj")]["unmet-requirement"] == {"needsnew", "sciutil"}

    text = subprocess.run([JUPYTER, "layenv", "doctor"], capture_output=True, text=True, env=env, timeout=120).stdout
    assert "pip-over-conda: six 99.0 was installed by uv over the conda package six" in text
    assert "(`jupyter layenv create NAME --base conda-sci --package six`)" in text  # in the terminal's words
