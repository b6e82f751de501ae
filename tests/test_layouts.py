"""Discovery on the layouts other locators meet on real machines (issue 11 §1), all found through default places."""

from __future__ import annotations

import os
import sys
import time

import pytest
from envtree import PY_XY, isolate_home
from layouts import Layouts, build_layouts_home
from oscalls import LISTINGS, record_os_calls

from jupyter_layenv import LayenvKernelSpecManager
from jupyter_layenv.discovery import RACY_WINDOW_NS


@pytest.fixture(scope="module")
def layouts_tree(tmp_path_factory: pytest.TempPathFactory) -> Layouts:
    return build_layouts_home(tmp_path_factory.mktemp("layouts-home"))


@pytest.fixture
def layouts(layouts_tree: Layouts, monkeypatch: pytest.MonkeyPatch) -> Layouts:
    """HOME at the tree, no activated shell; a Conda on PATH (its condabin) and XDG_DATA_HOME set."""
    isolate_home(monkeypatch, layouts_tree.home)
    monkeypatch.setenv("XDG_DATA_HOME", str(layouts_tree.xdg_data))
    monkeypatch.setenv("PATH", os.pathsep.join([str(layouts_tree.path_root / "condabin"), os.environ["PATH"]]))
    return layouts_tree


def _manager(layouts: Layouts) -> LayenvKernelSpecManager:
    return LayenvKernelSpecManager(env_paths=[str(layouts.configured_root), str(layouts.project_venv)])


def _envs(ksm: LayenvKernelSpecManager) -> dict[str, dict]:
    return {env["path"]: env for env in ksm.listing()["environments"]}


def _summary(env: dict) -> tuple:
    return env["kind"], env["base"], env["name"]


def test_install_known_only_through_environments_txt_is_a_root(layouts: Layouts):
    ksm = _manager(layouts)
    envs = _envs(ksm)
    forge, ana = str(layouts.miniforge), str(layouts.anaconda)
    assert _summary(envs[forge]) == ("conda-base", None, "base")
    assert _summary(envs[str(layouts.listed_env)]) == ("conda-env", forge, "listed")
    assert _summary(envs[str(layouts.unlisted_env)]) == ("conda-env", forge, "unlisted")
    assert _summary(envs[ana]) == ("conda-base", None, "base")
    assert _summary(envs[str(layouts.anaconda_env)]) == ("conda-env", ana, "other_env")
    spec = ksm.get_kernel_spec(next(k["name"] for k in envs[str(layouts.shared_a)]["kernels"]))
    assert spec.metadata["conda_env_name"] == "shared"
    assert spec.env["CONDA_DEFAULT_ENV"] == "shared"


def test_a_conda_env_with_the_conda_package_stays_an_env(layouts: Layouts):
    envs = _envs(_manager(layouts))
    root = str(layouts.miniconda3)
    assert _summary(envs[str(layouts.build_env)]) == ("conda-env", root, "build")
    assert _summary(envs[str(layouts.loose_build_env)]) == ("conda-env", None, "cb_env")
    assert [path for path, env in envs.items() if env["base"] is None and env["kind"] == "conda-base"].count(root) == 1


def test_install_roots_in_env_paths_and_in_a_venv_root_keep_their_envs(layouts: Layouts):
    envs = _envs(_manager(layouts))
    configured, pyenv = str(layouts.configured_root), str(layouts.pyenv_conda)
    assert _summary(envs[configured]) == ("conda-base", None, "base")
    assert _summary(envs[str(layouts.configured_env)]) == ("conda-env", configured, "cfg_env")
    assert _summary(envs[pyenv]) == ("conda-base", None, "base")
    assert _summary(envs[str(layouts.pyenv_conda_env)]) == ("conda-env", pyenv, "pyenv_env")
    assert _summary(envs[str(layouts.pyenv_venv)]) == ("venv", None, "proj-venv")


def test_conda_meta_without_history_is_listed_or_skipped_with_a_reason(layouts: Layouts):
    listing = _manager(layouts).listing()
    envs = {env["path"]: env for env in listing["environments"]}
    records_only = envs[str(layouts.records_only)]
    assert _summary(records_only) == ("conda-env", str(layouts.miniconda3), "records_only")
    assert records_only["python_version"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}")
    skipped = {entry["path"]: entry["reason"] for entry in listing["skipped"]}
    assert "conda-meta" in skipped[str(layouts.empty_meta)] and "no package records" in skipped[str(layouts.empty_meta)]


def test_a_micromamba_root_without_envs_is_a_root(layouts: Layouts):
    env = _envs(_manager(layouts))[str(layouts.micromamba)]
    assert _summary(env) == ("conda-base", None, "base")


def test_default_places_of_other_tools(layouts: Layouts):
    ksm = _manager(layouts)
    for place in ("~/.cache/pypoetry/virtualenvs", "~/.local/share/virtualenvs", "~/Envs", "~/envs"):
        assert place in ksm.venv_roots
    assert "~/.pyenv/versions" in ksm.venv_roots
    assert f"{layouts.xdg_data}/virtualenvs" in ksm.venv_roots
    for place in (
        *("~/opt/anaconda3", "~/miniconda", "~/anaconda", "~/.local/miniconda3", "/opt/anaconda3"),
        *("/opt/miniforge3", "/usr/share/miniconda", "/usr/local/anaconda3"),
    ):
        assert place in ksm.conda_roots
    assert str(layouts.path_root) in ksm.conda_roots  # conda on PATH
    envs = _envs(ksm)
    for venv in (layouts.poetry, layouts.pipenv, layouts.xdg_pipenv, layouts.envs_upper, layouts.envs_lower):
        assert envs[str(venv)]["kind"] == "venv", venv
    assert _summary(envs[str(layouts.opt_anaconda)]) == ("conda-base", None, "base")
    assert _summary(envs[str(layouts.path_env)]) == ("conda-env", str(layouts.path_root), "path_env")


def test_warm_listing_stays_a_handful_of_stats_per_place(layouts: Layouts, monkeypatch: pytest.MonkeyPatch):
    ksm = _manager(layouts)
    ksm.listing()
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)
    envs = len(ksm.listing()["environments"])
    calls = record_os_calls(monkeypatch, ["stat", *LISTINGS])
    ksm.listing()
    assert calls.paths(*LISTINGS) == [], "a warm listing listed directories"
    places = len(ksm.conda_roots) + len(ksm.venv_roots) + len(ksm.envs_dirs) + len(ksm.env_paths)
    assert len(calls.paths("stat")) <= places + 4 * envs + 20, len(calls.paths("stat"))


def test_names(layouts: Layouts):
    ksm = _manager(layouts)
    envs = _envs(ksm)
    assert envs[str(layouts.project_venv)]["name"] == "webapp"
    assert envs[str(layouts.envs_lower)]["name"] == "venv"  # ~/envs is a root, not a project folder
    prompted = envs[str(layouts.prompted)]
    assert prompted["name"] == "prompted"
    assert [k["display_name"] for k in prompted["kernels"]] == [f"Python {PY_XY} (My Project)"]
    specs = ksm.get_all_specs()
    shared = [envs[str(path)] for path in (layouts.shared_a, layouts.shared_b)]
    names = [env["kernels"][0]["display_name"] for env in shared]
    assert names[0] != names[1]
    assert "miniforge3" in names[0] and "anaconda3" in names[1], names
    assert all(specs[env["kernels"][0]["name"]]["spec"]["display_name"] in names for env in shared)
