"""A real Jupyter server lists the env kernels: through pytest-jupyter, and started as a user starts it."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from envtree import Tree, make_layered_env
from jupyter_process import JupyterProcess

from jupyter_layenv import LayenvKernelSpecManager


@pytest.fixture
def jp_home_dir(home_tree: Tree) -> Path:
    """pytest-jupyter points HOME here: the real tree, found through the default locations."""
    return home_tree.home


@pytest.fixture
def jp_server_config():
    # Only enabling the extension, as `pip install` does; the extension itself must take over the kernel specs.
    return {"ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}}}


async def test_kernelspecs_api_lists_env_kernels_and_new_ones_at_once(jp_fetch, jp_serverapp, home_tree: Tree):
    assert isinstance(jp_serverapp.kernel_spec_manager, LayenvKernelSpecManager)
    first = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert {"conda-py311_ai.myexp_env-py", "conda-base-py", "venv-plain-py", "conda-rstats-ir"} <= set(first)
    assert first["conda-py311_ai.myexp_env-py"]["spec"]["display_name"].endswith("(py311_ai ▸ myexp_env)")
    assert first["conda-py311_ai.myexp_env-py"]["resources"]["logo-64x64"]  # logos served from the env's ipykernel
    layer = make_layered_env(home_tree.py311_ai, home_tree.home / ".virtualenvs" / "server_new", tool="uv")
    try:
        second = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
        assert set(second) - set(first) == {"conda-py311_ai.server_new-py"}
    finally:
        shutil.rmtree(layer)
    spec = json.loads((await jp_fetch("api", "kernelspecs", "conda-env-py311_ai-py")).body)
    assert spec["spec"]["metadata"]["conda_env_path"] == str(home_tree.py311_ai)


def _lab_kernelspecs(tmp_path: Path, home: Path, config: dict | None = None) -> tuple[dict, str]:
    """`jupyter lab` exactly as a user types it: its kernelspecs and its log."""
    lab = JupyterProcess(tmp_path, home, app="lab", config_files={"jupyter_config.json": config} if config else {})
    try:
        lab.wait_ready("api/kernelspecs")
        return lab.get("api/kernelspecs")["kernelspecs"], lab.log.read_text()
    finally:
        lab.stop()


def test_pip_install_alone_makes_jupyter_lab_list_env_kernels(home_tree: Tree, tmp_path: Path):
    """No manual step: the server config comes from the installed package's jupyter_server_config.d only."""
    specs, log = _lab_kernelspecs(tmp_path, home_tree.home)
    assert {"conda-py311_ai.myexp_env-py", "conda-py311_ai.proj_uv-py", "conda-base-py"} <= set(specs)
    assert "python3" in specs
    assert "NOT listed as kernels" not in log


def test_a_kernel_spec_manager_set_elsewhere_wins_with_one_clear_warning(home_tree: Tree, tmp_path: Path):
    """nb_conda_kernels writes JupyterApp.kernel_spec_manager_class into jupyter_config.json."""
    other = "jupyter_client.kernelspec.KernelSpecManager"
    specs, text = _lab_kernelspecs(tmp_path, home_tree.home, {"JupyterApp": {"kernel_spec_manager_class": other}})
    assert "conda-py311_ai-py" not in specs
    assert text.count("NOT listed as kernels") == 1
    assert f"JupyterApp.kernel_spec_manager_class = {other}" in text
    assert "jupyter_layenv.LayenvKernelSpecManager" in text


async def test_rescans_run_off_the_event_loop(jp_fetch, jp_serverapp, monkeypatch: pytest.MonkeyPatch):
    ksm = jp_serverapp.kernel_spec_manager
    scanned_on: list[threading.Thread] = []
    discovery_class = type(ksm.discovery)
    scan = discovery_class._scan

    def recording_scan(self):
        scanned_on.append(threading.current_thread())
        return scan(self)

    # on the class: the extension may replace ksm.discovery (its roots are traits) while the server warms up
    monkeypatch.setattr(discovery_class, "_scan", recording_scan)
    ksm.invalidate()
    specs = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert "conda-py311_ai-py" in specs
    assert scanned_on and threading.main_thread() not in scanned_on
