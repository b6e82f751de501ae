"""The first listing of a discovery leaves a layer's site-packages unlisted when it has no ipykernel package (its
dist-info is looked for by the build, where the layer's base has no ipykernel): the facts it finds must be what the
full inspection (``inspect_prefix`` with no help) gives once that dist-info is looked for, and the listing must say
which envs are kernels as the full inspection does.

Real uv venvs and layers, and a real Conda-style prefix, each venv with one oddity a listing would show.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from envtree import (
    add_ipykernel_spec,
    add_kernelspec,
    irkernel_spec,
    make_conda_prefix,
    make_garbled_pyvenv,
    make_layered_env,
    make_venv,
    site_packages,
)

from jupyter_layenv.discovery.cache import ScanStats
from jupyter_layenv.discovery.scan import inspect_candidate
from jupyter_layenv.locators.prefix import inspect_prefix, ipykernel_distribution
from jupyter_layenv.model import BUILDING_MARKER, PROVENANCE


def _building(venv: Path) -> None:
    (venv / BUILDING_MARKER).write_text("")


def _provenance(venv: Path) -> None:
    (venv / PROVENANCE).write_text('{"display_name": "Named by layenv", "creator": "alice"}')


def _empty_conda_meta(venv: Path) -> None:
    (venv / "conda-meta").mkdir()


def _conda_meta_history(venv: Path) -> None:
    (venv / "conda-meta").mkdir()
    (venv / "conda-meta" / "history").write_text("==> 2025-01-01 00:00:00 <==\n")


def _dangling_conda_meta(venv: Path) -> None:
    (venv / "conda-meta").symlink_to(venv / "nowhere")


def _no_lib(venv: Path) -> None:
    shutil.rmtree(venv / "lib")


def _r_kernel(venv: Path) -> None:
    add_kernelspec(venv, "ir", irkernel_spec())


def _python_kernel(venv: Path) -> None:
    add_ipykernel_spec(venv)


def _ipykernel_dist_info_only(venv: Path) -> None:
    (site_packages(venv) / "ipykernel-6.29.5.dist-info").mkdir()


def _share_is_a_file(venv: Path) -> None:
    (venv / "share").write_text("")


def _cfg_dangling_link(venv: Path) -> None:
    os.remove(venv / "pyvenv.cfg")
    (venv / "pyvenv.cfg").symlink_to(venv / "gone.cfg")


def _cfg_is_a_directory(venv: Path) -> None:
    os.remove(venv / "pyvenv.cfg")
    (venv / "pyvenv.cfg").mkdir()


def _cfg_link_to_a_file(venv: Path) -> None:
    real = venv / "real.cfg"
    os.rename(venv / "pyvenv.cfg", real)
    (venv / "pyvenv.cfg").symlink_to(real)


def _others_may_not_read(venv: Path) -> None:
    venv.chmod(0o711)  # root reads it anyway; the scan must then ask a listing, not assume it may


LAYERS = ("layer", "layer, ipykernel dist-info only")
ODDITIES: dict[str, Callable[[Path], None]] = {
    "building": _building,
    "provenance": _provenance,
    "empty conda-meta": _empty_conda_meta,
    "conda-meta with history": _conda_meta_history,
    "dangling conda-meta": _dangling_conda_meta,
    "no lib": _no_lib,
    "an R kernel": _r_kernel,
    "ipykernel's python3 spec": _python_kernel,
    "ipykernel dist-info only": _ipykernel_dist_info_only,
    "share is a file": _share_is_a_file,
    "pyvenv.cfg a dangling link": _cfg_dangling_link,
    "pyvenv.cfg a directory": _cfg_is_a_directory,
    "pyvenv.cfg a link to a file": _cfg_link_to_a_file,
    "mode 711": _others_may_not_read,
}


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One venv per oddity, a garbled one, a layer on a Conda env, the Conda env, and a directory that is no env."""
    root = tmp_path_factory.mktemp("unlisted") / "envs"
    made = {}
    for name, oddity in ODDITIES.items():
        venv = make_venv(root / name.replace(" ", "_").replace("'", ""), tool="uv")
        oddity(venv)
        made[name] = venv
    made["garbled"] = make_garbled_pyvenv(root / "garbled", variant="no-home")
    conda_env = make_conda_prefix(root / "conda_env")
    made["conda env"] = conda_env
    made["layer"] = make_layered_env(conda_env, root / "layer", tool="uv")
    made["layer, ipykernel dist-info only"] = make_layered_env(conda_env, root / "layer_dist", tool="uv")
    _ipykernel_dist_info_only(made["layer, ipykernel dist-info only"])
    (root / "not_an_env" / "bin").mkdir(parents=True)
    made["not an env"] = root / "not_an_env"
    yield made
    made["mode 711"].chmod(0o755)


@pytest.mark.parametrize("name", [*ODDITIES, *LAYERS, "garbled", "conda env", "not an env"])
def test_a_first_listings_facts_are_the_full_inspections(envs: dict[str, Path], name: str):
    """Broken by: a layer's distribution left unlooked for where it is not a layer (a plain venv's, a Conda env's),
    or facts that differ otherwise from what the full inspection finds."""
    path = str(envs[name])
    stats = ScanStats()
    stats.defer_distributions = True  # as on a discovery's first listing
    facts, _deps = inspect_candidate(path, stats)
    if facts.has_ipykernel is None:  # a layer without the package: its dist-info is looked for when it matters
        assert facts.site_packages is not None and (facts.pyvenv or {})["include-system-site-packages"] == "true"
        facts = dataclasses.replace(facts, has_ipykernel=ipykernel_distribution(facts.site_packages))
    assert facts == inspect_prefix(path)


def test_a_layer_with_ipykernel_s_dist_info_alone_is_a_kernel_where_its_base_has_none(envs: dict[str, Path]):
    """Broken by: a layer's dist-info not looked for (its inspection left it) when its base has no ipykernel."""
    from jupyter_layenv.discovery import Discovery, DiscoveryConfig

    root = envs["layer"].parent
    listing = Discovery(DiscoveryConfig(envs_dirs=[str(root)], notifications=False)).discover()
    kernels = {env.path: env.has_ipykernel for env in listing.environments}
    assert kernels[str(envs["conda env"])] is False and kernels[str(envs["layer"])] is False
    assert kernels[str(envs["layer, ipykernel dist-info only"])] is True
