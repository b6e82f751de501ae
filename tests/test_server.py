"""A real Jupyter server lists the env kernels: through pytest-jupyter, and started as a user starts it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from envtree import Tree, make_layered_env

from jupyter_layenv import LayenvKernelSpecManager

JUPYTER = str(Path(sys.executable).with_name("jupyter"))


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_lab(tmp_path: Path, home: Path, config: dict | None = None) -> tuple[subprocess.Popen, int, Path]:
    """`jupyter lab` exactly as a user types it: only HOME and Jupyter's own dirs are isolated."""
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    if config:
        (config_dir / "jupyter_config.json").write_text(json.dumps(config))
    port = _free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    args = [JUPYTER, "lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=secret"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, port, log


def _get(port: int, path: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{path}", headers={"Authorization": "token secret"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_for_kernelspecs(proc: subprocess.Popen, port: int, log: Path) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited: {log.read_text()[-3000:]}")
        try:
            return _get(port, "api/kernelspecs")["kernelspecs"]
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"jupyter lab did not answer: {log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_pip_install_alone_makes_jupyter_lab_list_env_kernels(home_tree: Tree, tmp_path: Path):
    """No manual step: the server config comes from the installed package's jupyter_server_config.d only."""
    proc, port, log = _start_lab(tmp_path, home_tree.home)
    try:
        specs = _wait_for_kernelspecs(proc, port, log)
    finally:
        _stop(proc)
    assert {"conda-py311_ai.myexp_env-py", "conda-py311_ai.proj_uv-py", "conda-base-py"} <= set(specs)
    assert "python3" in specs
    assert "NOT listed as kernels" not in log.read_text()


def test_a_kernel_spec_manager_set_elsewhere_wins_with_one_clear_warning(home_tree: Tree, tmp_path: Path):
    """nb_conda_kernels writes JupyterApp.kernel_spec_manager_class into jupyter_config.json."""
    other = "jupyter_client.kernelspec.KernelSpecManager"
    proc, port, log = _start_lab(tmp_path, home_tree.home, {"JupyterApp": {"kernel_spec_manager_class": other}})
    try:
        specs = _wait_for_kernelspecs(proc, port, log)
    finally:
        _stop(proc)
    text = log.read_text()
    assert "conda-py311_ai-py" not in specs
    assert text.count("NOT listed as kernels") == 1
    assert f"JupyterApp.kernel_spec_manager_class = {other}" in text
    assert "jupyter_layenv.LayenvKernelSpecManager" in text


async def test_rescans_run_off_the_event_loop(jp_fetch, jp_serverapp, monkeypatch: pytest.MonkeyPatch):
    ksm = jp_serverapp.kernel_spec_manager
    scanned_on: list[threading.Thread] = []
    scan = ksm.discovery._scan
    monkeypatch.setattr(ksm.discovery, "_scan", lambda: scanned_on.append(threading.current_thread()) or scan())
    ksm.invalidate()
    specs = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert "conda-py311_ai-py" in specs
    assert scanned_on and threading.main_thread() not in scanned_on
