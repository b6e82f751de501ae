"""Where a create puts an env, discovery looks: the check that makes it so for Conda envs, and the guarantee for a
layer's user root. In-process: a real kernel spec manager and service on a temporary home, no server, no build."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from isolated_ksm import looking_only_at
from oscalls import record_os_calls

from jupyter_layenv.policy import PolicyError
from jupyter_layenv.service import LayenvService

BODY = {"kind": "conda", "name": "proj", "packages": ["python=3.11"]}


@contextmanager
def _service(tmp_path: Path, **ksm: object) -> Iterator[LayenvService]:
    """A service whose manager looks only where ``ksm`` says; its background trackers stopped afterwards."""
    settings = dict(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    service = LayenvService(
        ksm=looking_only_at(**{**settings, **ksm}),
        user_root=str(tmp_path / "user-root"),
        jobs_dir=str(tmp_path / "jobs"),
        conda_envs_dir=str(tmp_path / "scratch" / "envs"),
        conda_channels=["file:///nowhere"],
    )
    try:
        yield service
    finally:
        service.usage.stop()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))  # where a Conda env's build records it: ~/.conda/environments.txt
    return tmp_path


@pytest.mark.parametrize(
    "ksm",
    [
        {"envs_dirs": ["{tmp}/scratch/envs"]},  # scanned as an envs dir
        {"environments_files": ["~/.conda/environments.txt"]},  # recorded where discovery reads (the default)
        {"venv_roots": ["{tmp}/scratch/envs"]},  # any directory discovery lists the children of
    ],
)
def test_a_conda_env_discovery_will_list_is_planned(tmp_path: Path, ksm: dict) -> None:
    settings = {key: [value.format(tmp=tmp_path) for value in values] for key, values in ksm.items()}
    with _service(tmp_path, **settings) as service:
        plan = service.plan_conda(BODY, "me")
    assert plan.path == str(tmp_path / "scratch" / "envs" / "proj")


def test_a_conda_env_discovery_would_not_list_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    with _service(tmp_path) as service:
        with pytest.raises(PolicyError) as refused:
            service.plan_conda(BODY, "me")
        conda = service.conda_policy(None, [])
    envs = tmp_path / "scratch" / "envs"
    assert refused.value.status == 500 and refused.value.reason == "not listed"
    assert refused.value.message.startswith(
        f"{envs / 'proj'} would not be listed, so it is not built: discovery "
        f"does not look in {envs} (LayenvService.conda_envs_dir)"
    )
    assert conda["can_create"] is False and f"a new Conda env in {envs} would not be listed" in conda["refused"]
    assert not (tmp_path / "scratch").exists() and not (tmp_path / ".conda").exists()


def test_the_user_root_is_scanned_even_when_no_venv_root_names_it(tmp_path: Path) -> None:
    """Why a layer's create needs no such check: its user root is made one of discovery's roots."""
    with _service(tmp_path) as service:
        service.ksm.current()
        scanned = service.ksm.discovery.scanned()
    assert scanned is not None and str(tmp_path / "user-root") in scanned


def test_a_conda_envs_dir_discovery_scans_under_another_name_is_planned(tmp_path: Path) -> None:
    """envs_dirs names a symlink to conda_envs_dir: discovery lists the env under the symlink's name, and the last
    step finds it there (the same directory), so the create is not refused."""
    (tmp_path / "scratch" / "envs").mkdir(parents=True)
    (tmp_path / "conda-envs").symlink_to(tmp_path / "scratch" / "envs")
    with _service(tmp_path, envs_dirs=[str(tmp_path / "conda-envs")]) as service:
        plan = service.plan_conda(BODY, "me")
    assert plan.path == str(tmp_path / "scratch" / "envs" / "proj")


def test_a_conda_envs_dir_not_scanned_by_name_costs_one_stat_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Broken by: ``samefile`` with every scanned directory (two ``stat`` calls each, on GET policy and each Conda
    create). Its directory id is read once; the roots' ids are the root probe's answers of the listing just made,
    so of the scanned directories only one that is no root (a Conda root's ``envs/``) is asked, once."""
    envs = tmp_path / "scratch" / "envs"
    envs.mkdir(parents=True)
    conda_root = tmp_path / "conda"
    (conda_root / "conda-meta").mkdir(parents=True)
    (conda_root / "conda-meta" / "history").write_text("")
    (conda_root / "envs").mkdir()
    venv_roots = [tmp_path / "venvs-a", tmp_path / "venvs-b"]
    for root in venv_roots:
        root.mkdir()
    with _service(tmp_path, conda_roots=[str(conda_root)], venv_roots=[str(root) for root in venv_roots]) as service:
        service.ksm.current()
        scanned = service.ksm.discovery.scanned()
        assert scanned is not None and {str(conda_root / "envs"), *map(str, venv_roots)} <= scanned
        with monkeypatch.context() as patch:
            calls = record_os_calls(patch)
            unseen = service.unseen(str(envs))
    assert unseen is not None and f"does not look in {envs}" in unseen
    assert sorted(calls.calls) == [("stat", str(conda_root / "envs")), ("stat", str(envs))]
