"""The listing's ``shadowed`` badge (a layer's copies of its base's packages) is cached by site-packages mtimes: a
warm listing lists no site-packages, and a real install into a layer or its base between two listings, settled or
inside the 2 s racy window, is seen by the next listing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from envtree import make_conda_prefix, make_layered_env, settle, site_packages, uv_install
from isolated_ksm import looking_only_at
from oscalls import LISTINGS, record_os_calls
from wheelhouse import write_wheel

from jupyter_layenv.service import LayenvService


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    for name in ("early", "late", "latest", "mine"):
        write_wheel(wheels, name, "1.0", {f"{name}.py": ""})
    root = make_conda_prefix(tmp_path / "miniconda3", conda_root=True)
    sci = make_conda_prefix(root / "envs" / "sci")
    uv_install(sci, wheels, "early==1.0")
    layer = make_layered_env(sci, tmp_path / "venvs" / "proj", inherit=True, tool="uv")
    uv_install(layer, wheels, "early==1.0", "mine==1.0")  # uv ignores the base's packages: a copy of early
    return tmp_path


@pytest.fixture
def service(tree: Path) -> Iterator[LayenvService]:
    ksm = looking_only_at(
        conda_roots=[str(tree / "miniconda3")],
        venv_roots=[str(tree / "venvs")],
        kernel_dirs=[str(tree / "kernels")],
        ensure_native_kernel=False,
    )
    service = LayenvService(ksm=ksm, user_root=str(tree / "user-root"), jobs_dir=str(tree / "jobs"))
    yield service
    service.usage.stop()


def shadowed(service: LayenvService, layer: Path) -> list[str]:
    return next(env["shadowed"] for env in service.listing_now()["environments"] if env["path"] == str(layer))


class Reads:
    """Every directory this thread lists (``os.listdir``, ``os.scandir``) while counting: the listing's own reads,
    not the size walks and health checks the first listing queued on the background threads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = record_os_calls(monkeypatch, LISTINGS)

    @property
    def paths(self) -> list[str]:
        return self.calls.paths()

    def site_packages(self) -> list[str]:
        return [path for path in self.paths if "site-packages" in path or path.endswith(os.sep + "lib")]


def test_a_warm_listing_lists_no_site_packages(tree: Path, service: LayenvService, monkeypatch: pytest.MonkeyPatch):
    layer = tree / "venvs" / "proj"
    settle(tree / "miniconda3", tree / "venvs")
    assert shadowed(service, layer) == ["early"]
    reads = Reads(monkeypatch)
    assert shadowed(service, layer) == ["early"]
    assert reads.site_packages() == [], reads.paths


def test_an_install_between_two_listings_is_seen(tree: Path, service: LayenvService, monkeypatch: pytest.MonkeyPatch):
    layer, sci, wheels = tree / "venvs" / "proj", tree / "miniconda3" / "envs" / "sci", tree / "wheels"
    assert shadowed(service, layer) == ["early"]
    # inside the racy window: the directories were just written, each install follows a listing at once
    uv_install(layer, wheels, "late==1.0")
    assert shadowed(service, layer) == ["early"]  # the base has no late
    uv_install(sci, wheels, "late==1.0")
    assert shadowed(service, layer) == ["early", "late"]
    uv_install(sci, wheels, "mine==1.0")
    assert shadowed(service, layer) == ["early", "late", "mine"]
    # settled: the cache trusts the mtimes, then a real install changes one
    settle(tree / "miniconda3", tree / "venvs")
    assert shadowed(service, layer) == ["early", "late", "mine"]
    reads = Reads(monkeypatch)
    assert shadowed(service, layer) == ["early", "late", "mine"]
    assert reads.site_packages() == [], reads.paths  # cached
    uv_install(sci, wheels, "latest==1.0")
    assert shadowed(service, layer) == ["early", "late", "mine"]
    uv_install(layer, wheels, "latest==1.0")
    assert shadowed(service, layer) == ["early", "late", "latest", "mine"]
    time.sleep(0.05)
    (site_packages(layer) / "latest-1.0.dist-info").rename(site_packages(layer) / "gone-1.0.dist-info")
    assert shadowed(service, layer) == ["early", "late", "mine"]  # a directory renamed within the same second


def test_the_site_packages_of_the_envs_python_is_read(tree: Path, service: LayenvService):
    """A layer keeps a ``lib/python3.99/site-packages`` left over (another Python's, newer): the names are read from
    the site-packages of the Python discovery gives the layer, not from the newest one in ``lib``. Broken by: no
    version given to ``site_packages_of``."""
    layer = tree / "venvs" / "proj"
    stray = layer / "lib" / "python3.99" / "site-packages"
    (stray / "stale-1.0.dist-info").mkdir(parents=True)
    version = next(env["python_version"] for env in service.listing_now()["environments"] if env["path"] == str(layer))
    assert version and not version.startswith("3.99")
    assert shadowed(service, layer) == ["early"]


def test_a_site_packages_linked_out_of_its_env_is_not_read(tree: Path, service: LayenvService):
    """A layer whose site-packages is a symlink to a directory outside it: its names are not read (nothing is followed
    out of an env), so it shadows nothing. Broken by: listing through the link."""
    layer = tree / "venvs" / "proj"
    site = site_packages(layer)
    outside = tree / "elsewhere" / "site-packages"
    outside.parent.mkdir()
    site.rename(outside)
    site.symlink_to(outside)
    assert (site / "early-1.0.dist-info").is_dir()  # the link works: only the rule keeps its names out
    assert shadowed(service, layer) == []
    inside = layer / "lib" / "site-packages-real"  # a link that stays inside the env is followed
    outside.rename(inside)
    site.unlink()
    site.symlink_to(inside)
    assert shadowed(service, layer) == ["early"]
