"""Guards of discovery and kernels that no other test broke: each test here failed on a planted regression.

- a layer's kernel gets its Conda base's ``conda env config vars`` (``conda-meta/state``), not only a Conda env's;
- the same-clock-tick guard: an env made in the mtime tick of the previous listing still shows on the next one
  (coarse NFS timestamps), made to collide with ``os.utime``;
- a Conda env whose interpreter is gone is skipped as a broken interpreter, with what to do.

No server and no root: real prefixes (tests/envtree.py), real discovery, real kernels.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from envtree import add_kernelspec, irkernel_spec, make_conda_prefix, make_layered_env, write_conda_state
from isolated_ksm import looking_only_at
from jupyter_process import run_in_kernel

from jupyter_layenv import LayenvKernelSpecManager
from jupyter_layenv.discovery import RACY_WINDOW_NS


def only(**roots: list[str]) -> LayenvKernelSpecManager:
    """A kernel spec manager that looks only where the test says (not at HOME, not at the server's prefix)."""
    return looking_only_at(**roots)


def listed(ksm: LayenvKernelSpecManager) -> dict[str, dict]:
    return {env["path"]: env for env in ksm.listing()["environments"]}


def in_root(ksm: LayenvKernelSpecManager, root: Path) -> set[str]:
    """The names of the listed envs directly in ``root`` (their bases are listed too)."""
    return {Path(path).name for path in listed(ksm) if Path(path).parent == root}


@pytest.fixture(scope="module")
def gpu_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Conda env with ipykernel whose ``conda env config vars`` set CUDA/OpenMP settings, and a uv layer on it."""
    base = make_conda_prefix(tmp_path_factory.mktemp("state") / "gpu", ipykernel=True)
    write_conda_state(base, {"CUDA_VISIBLE_DEVICES": "1", "OMP_NUM_THREADS": "3"})
    make_layered_env(base, base.parent / "gpu_layer", tool="uv")
    return base


STATE_PROBE = "import json, os, sys; print(json.dumps([sys.prefix, os.environ.get('CUDA_VISIBLE_DEVICES'), " \
    "os.environ.get('OMP_NUM_THREADS')]))"  # fmt: skip


def test_a_layers_kernel_gets_its_conda_bases_state_variables(gpu_base: Path):
    """Broken by: ``activation_for`` taking the state variables of the env itself instead of its Conda part."""
    layer = gpu_base.parent / "gpu_layer"
    ksm = only(env_paths=[str(gpu_base), str(layer)])
    envs = listed(ksm)
    assert envs[str(layer)]["kind"] == "layered" and envs[str(layer)]["base"] == str(gpu_base)
    for prefix in (layer, gpu_base):
        kernel = envs[str(prefix)]["kernels"][0]["name"]
        out = run_in_kernel(ksm, kernel, STATE_PROBE)
        assert json.loads(out.splitlines()[-1]) == [str(prefix), "1", "3"], (prefix, out)


def test_an_env_made_in_the_same_mtime_tick_as_the_last_listing_shows_on_the_next(gpu_base: Path, tmp_path: Path):
    """Broken by: storing a just-written mtime in the cache signature (no racy window), as if it could be trusted."""
    root = tmp_path / "venvs"
    make_layered_env(gpu_base, root / "first", tool="uv")
    ksm = only(venv_roots=[str(root)])
    tick = time.time_ns()
    os.utime(root, ns=(tick, tick))  # the root changed "now": within the racy window of the next scan
    assert in_root(ksm, root) == {"first"}
    # another env lands in the same clock tick: on a coarse-timestamp file system the root's mtime does not move
    make_layered_env(gpu_base, root / "second", tool="uv")
    os.utime(root, ns=(tick, tick))
    assert time.time_ns() - tick < RACY_WINDOW_NS, "too slow to test the window"
    assert in_root(ksm, root) == {"first", "second"}


def test_a_conda_env_whose_interpreter_is_gone_is_skipped_as_a_broken_interpreter(tmp_path: Path):
    """Broken by: dropping the broken-interpreter skip, so the env is listed as if usable ("no ipykernel...")."""
    envs = tmp_path / "envs"
    gone = make_conda_prefix(envs / "gone")
    with_r = make_conda_prefix(envs / "with_r")
    add_kernelspec(with_r, "ir", irkernel_spec())
    for prefix in (gone, with_r):  # the interpreter was removed by hand; bin/python now dangles
        binary = prefix / "bin" / os.readlink(prefix / "bin" / "python")
        binary.unlink()
    listing = only(envs_dirs=[str(envs)]).listing()
    skipped = {entry["path"]: entry["reason"] for entry in listing["skipped"]}
    assert skipped[str(gone)].startswith("broken interpreter: "), skipped
    assert "dangling" in skipped[str(gone)] and "recreate the environment or delete it" in skipped[str(gone)]
    assert str(gone) not in {env["path"] for env in listing["environments"]}
    # an env that still ships another kernel stays listed, with that kernel only
    env = next(env for env in listing["environments"] if env["path"] == str(with_r))
    assert [k["language"] for k in env["kernels"]] == ["R"] and str(with_r) not in skipped
    shutil.rmtree(envs)
