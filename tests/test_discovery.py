"""Discovery on a real tree: every env found from files, right kind/base/name, broken ones skipped with a reason."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from envtree import Tree, install_distributions, make_layered_env, site_packages
from oscalls import record_os_calls

from jupyter_layenv import LayenvKernelSpecManager
from jupyter_layenv.discovery import RACY_WINDOW_NS
from jupyter_layenv.locators import prefix as prefix_module


def _by_path(listing: dict) -> dict[str, dict]:
    return {env["path"]: env for env in listing["environments"]}


def test_every_env_is_found_with_its_kind_and_base(home: Tree):
    envs = _by_path(LayenvKernelSpecManager().listing())
    expected = {
        home.conda_root: ("conda-base", None, "base"),
        home.py311_ai: ("conda-env", home.conda_root, "py311_ai"),
        home.noipk: ("conda-env", home.conda_root, "noipk"),
        home.rstats: ("conda-env", home.conda_root, "rstats"),
        home.myexp_env: ("layered", home.py311_ai, "myexp_env"),
        home.proj_uv: ("layered", home.py311_ai, "proj_uv"),
        home.noinherit: ("layered", home.py311_ai, "noinherit"),
        home.plain: ("venv", None, "plain"),
        home.listed_env: ("conda-env", None, "listed_env"),
        home.rc_env: ("conda-env", None, "rc_env"),
    }
    for path, (kind, base, name) in expected.items():
        env = envs[str(path)]
        assert (env["kind"], env["base"], env["name"]) == (kind, str(base) if base else None, name), path
        assert env["python_version"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}")
        assert env["scope"] == "user" and env["writable"] is True
    assert str(home.stale_listed) not in envs


def test_kernels_and_reasons(home: Tree):
    envs = _by_path(LayenvKernelSpecManager().listing())
    for path in home.python_kernel_envs:
        kernels = envs[str(path)]["kernels"]
        assert [k["language"] for k in kernels if k["language"] == "python"] == ["python"], path
        assert envs[str(path)]["skipped_reason"] is None
    for path in (home.noipk, home.noinherit, home.loop.venv):
        env = envs[str(path)]
        assert env["kernels"] == []
        assert env["skipped_reason"].startswith("no ipykernel: run `"), env
        assert "-m pip install ipykernel" in env["skipped_reason"]
    assert "does not inherit" in envs[str(home.noinherit)]["skipped_reason"]
    assert "create a layer on it with inherit" in envs[str(home.noipk)]["skipped_reason"]
    rstats = envs[str(home.rstats)]
    assert [(k["name"], k["language"]) for k in rstats["kernels"]] == [("conda-rstats-ir", "R")]


def test_broken_envs_are_skipped_with_actionable_reasons(home: Tree):
    skipped = {Path(s["path"]): s["reason"] for s in LayenvKernelSpecManager().listing()["skipped"]}
    assert "dangling link" in skipped[home.dangling]
    assert "garbled pyvenv.cfg" in skipped[home.garbled] and "recreate" in skipped[home.garbled]
    assert "base deleted" in skipped[home.orphan] and str(home.orphan_deleted_base) in skipped[home.orphan]
    assert "symlink loop" in skipped[home.loop.a] and "symlink loop" in skipped[home.loop.b]
    envs = _by_path(LayenvKernelSpecManager().listing())
    assert not {str(p) for p in home.broken} & set(envs)


def test_server_prefix_is_listed_once_through_its_native_kernel(home: Tree):
    ksm = LayenvKernelSpecManager()
    specs = ksm.get_all_specs()
    server_env = next(
        e for e in ksm.listing()["environments"] if os.path.realpath(e["path"]) == os.path.realpath(sys.prefix)
    )
    assert [k["name"] for k in server_env["kernels"]] == ["python3"]
    interpreters = [spec["spec"]["argv"][0] for spec in specs.values()]
    assert sum(1 for exe in interpreters if exe in ("python", sys.executable)) == 1


def test_no_process_is_spawned(home: Tree):
    spawned: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event in ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.system", "os.exec"):
            spawned.append(event)

    sys.addaudithook(audit)
    ksm = LayenvKernelSpecManager()
    ksm.get_all_specs()
    ksm.listing()
    assert spawned == []


def test_new_and_deleted_envs_show_on_the_very_next_listing(home: Tree, tmp_path: Path):
    ksm = LayenvKernelSpecManager()
    before = ksm.get_all_specs()
    layer = make_layered_env(home.py311_ai, home.home / ".virtualenvs" / "fresh_layer", tool="uv")
    try:
        after = ksm.get_all_specs()
        assert set(after) - set(before) == {"conda-py311_ai.fresh_layer-py"}
    finally:
        shutil.rmtree(layer)
    assert set(ksm.get_all_specs()) == set(before)


def test_installing_ipykernel_makes_an_env_a_kernel(home: Tree):
    ksm = LayenvKernelSpecManager()
    assert "conda-noipk-py" not in ksm.get_all_specs()
    target = site_packages(home.noipk)
    install_distributions(target, ["ipykernel"])
    try:
        assert "conda-noipk-py" in ksm.get_all_specs()
    finally:
        for entry in os.listdir(target):
            shutil.rmtree(target / entry) if (target / entry).is_dir() else os.unlink(target / entry)
    assert "conda-noipk-py" not in ksm.get_all_specs()


def test_unchanged_tree_is_answered_from_cache(home: Tree, monkeypatch: pytest.MonkeyPatch):
    ksm = LayenvKernelSpecManager()
    ksm.get_all_specs()
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)  # let every just-modified directory leave the racy window
    ksm.get_all_specs()
    inspected: list[str] = []
    real_inspect = prefix_module.inspect_prefix
    monkeypatch.setattr(
        "jupyter_layenv.discovery.scan.inspect_prefix",
        lambda path, **kw: inspected.append(path) or real_inspect(path, **kw),
    )
    listdirs = record_os_calls(monkeypatch, ["listdir"])
    first = ksm.get_all_specs()
    assert ksm.get_all_specs() == first
    assert inspected == [] and listdirs.paths() == []


def test_an_env_reached_through_a_symlink_is_listed_once(home: Tree):
    alias = home.home / ".venvs" / "plain_alias"
    os.symlink(home.plain, alias)
    try:
        paths = [e["path"] for e in LayenvKernelSpecManager().listing()["environments"]]
        assert (str(home.plain) in paths) != (str(alias) in paths)
        assert sum(os.path.realpath(p) == os.path.realpath(home.plain) for p in paths) == 1
    finally:
        alias.unlink()


def test_each_skip_is_logged_once_not_at_every_poll(home: Tree, caplog: pytest.LogCaptureFixture):
    ksm = LayenvKernelSpecManager()
    with caplog.at_level("INFO"):
        ksm.get_all_specs()
        ksm.invalidate()  # a full rescan finds the same broken envs again
        ksm.get_all_specs()
    garbled = [r for r in caplog.records if str(home.garbled) in r.getMessage()]
    assert len(garbled) == 1


def test_an_env_finished_inside_an_existing_directory_is_found(home: Tree):
    """Tools make the directory first and write pyvenv.cfg (or conda-meta/history) into it later."""
    target = home.home / ".virtualenvs" / "in_progress"
    target.mkdir()
    try:
        ksm = LayenvKernelSpecManager()
        ksm.get_all_specs()
        time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)  # the root's mtime is now trusted and will not change again
        ksm.get_all_specs()
        make_layered_env(home.py311_ai, target, tool="uv")
        assert "conda-py311_ai.in_progress-py" in ksm.get_all_specs()
    finally:
        shutil.rmtree(target)


def test_an_env_a_job_is_still_building_is_not_a_kernel_yet(home: Tree):
    target = make_layered_env(home.py311_ai, home.home / ".virtualenvs" / "building", tool="uv")
    (target / ".layenv-building").write_text("job 1\n")
    try:
        ksm = LayenvKernelSpecManager()
        assert "conda-py311_ai.building-py" not in ksm.get_all_specs()
        skipped = {s["path"]: s["reason"] for s in ksm.listing()["skipped"]}
        assert skipped[str(target)].startswith("being created")
        (target / ".layenv-building").unlink()
        assert "conda-py311_ai.building-py" in ksm.get_all_specs()
    finally:
        shutil.rmtree(target)


def test_a_conda_root_is_listed_once_by_a_cold_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Broken by: the Conda locator listing a root to tell it is one, and the root's inspection listing it again."""
    from jupyter_layenv.discovery import Discovery, DiscoveryConfig

    root = tmp_path / "miniconda3"
    for marker in ("conda-meta", "envs", "condabin"):
        (root / marker).mkdir(parents=True)
    (root / "conda-meta" / "history").write_text("")
    env = root / "envs" / "e1"
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta" / "history").write_text("")
    looked = record_os_calls(monkeypatch, ("listdir", "scandir"))  # not the root probe's
    listed = {found.path for found in Discovery(DiscoveryConfig(conda_roots=[str(root)])).discover().environments}
    monkeypatch.undo()
    assert listed == {str(root), str(env)}
    assert looked.paths().count(str(root)) == 1, looked.calls
