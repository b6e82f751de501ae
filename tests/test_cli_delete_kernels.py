"""``jupyter layenv delete`` runs outside any server, yet refuses to delete an env a kernel runs from: it finds the
kernel processes (whoever started them: a Jupyter server, nbconvert, papermill) in ``/proc``, names them, and
``--force`` deletes anyway. Only kernels count, not any process. A kernel started while the delete runs (between its
first check and the removal) is caught by the check made again under the env's lock.

Real layers (virtualenv on a Conda-style base with ipykernel), real kernels that answer, the real CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cli_api import layenv
from envtree import make_layered_env
from jupyter_client import BlockingKernelClient

HOOK = Path(__file__).parent / "kernel_at_lock"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel processes are found in /proc")


def kernel_argv(env: Path, runtime: Path) -> list[str]:
    """A kernel of ``env`` as a Jupyter server starts one: its Python, ipykernel, a connection file."""
    return [str(env / "bin" / "python"), "-m", "ipykernel_launcher", "-f", str(runtime / f"kernel-{uuid.uuid4()}.json")]


def wait_ready(connection_file: str) -> None:
    """The kernel answers: it is a real, running kernel."""
    deadline = time.monotonic() + 60
    while not os.path.isfile(connection_file) or not os.path.getsize(connection_file):
        assert time.monotonic() < deadline, "the kernel wrote no connection file"
        time.sleep(0.05)
    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
    finally:
        client.stop_channels()


def stop(proc: subprocess.Popen | int) -> None:
    pid = proc if isinstance(proc, int) else proc.pid
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if isinstance(proc, subprocess.Popen):
        proc.wait(10)
    else:
        with contextlib.suppress(ChildProcessError):  # not our child (the CLI started it): init reaps it
            os.waitpid(pid, 0)


@pytest.fixture
def base(clean_create_home: Path) -> Path:
    return clean_create_home / "miniconda3" / "envs" / "py311_ai"


def test_delete_refuses_while_a_kernel_runs_from_the_env_and_force_deletes(
    cli_env: dict[str, str], clean_create_home: Path, base: Path, tmp_path: Path
):
    layer = make_layered_env(base, clean_create_home / ".virtualenvs" / "running")
    argv = kernel_argv(layer, tmp_path)
    kernel = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(argv[-1])
        kernel_id = Path(argv[-1]).stem.removeprefix("kernel-")
        proc = layenv("delete", "running", env=cli_env)
        assert proc.returncode == 5, proc.stderr
        assert proc.stderr.startswith("error: 1 kernel is running from running ("), proc.stderr
        assert f"kernel {kernel_id[:8]} (pid {kernel.pid}" in proc.stderr, proc.stderr
        assert "delete anyway with --force" in proc.stderr and "GET " not in proc.stderr, proc.stderr
        assert (layer / "pyvenv.cfg").is_file() and kernel.poll() is None

        listed = json.loads(layenv("list", "--json", env=cli_env).stdout)["environments"]
        reason = next(env["delete_blocked_reason"] for env in listed if env["path"] == str(layer))
        assert (
            reason is not None
            and reason.startswith("1 kernel is running from running (")
            and f"pid {kernel.pid}" in reason
        )

        proc = layenv("delete", "running", "--force", env=cli_env)
        assert proc.returncode == 0, proc.stderr
        assert not layer.exists()
    finally:
        stop(kernel)


def test_only_kernels_block_a_delete_not_any_process(cli_env: dict[str, str], clean_create_home: Path, base: Path):
    layer = make_layered_env(base, clean_create_home / ".virtualenvs" / "scripted")
    script = subprocess.Popen([str(layer / "bin" / "python"), "-c", "import time; time.sleep(120)"])
    try:
        proc = layenv("delete", "scripted", env=cli_env)
        assert proc.returncode == 0, proc.stderr
        assert not layer.exists()
    finally:
        stop(script)


def test_a_kernel_started_while_the_delete_runs_is_caught_before_the_removal(
    cli_env: dict[str, str], clean_create_home: Path, base: Path, tmp_path: Path
):
    layer = make_layered_env(base, clean_create_home / ".virtualenvs" / "latecomer")
    pid_file = tmp_path / "kernel.pid"
    env = {**cli_env, "PYTHONPATH": str(HOOK), "LAYENV_TEST_KERNEL_PID": str(pid_file),
           "LAYENV_TEST_KERNEL_AT_LOCK": json.dumps(kernel_argv(layer, tmp_path))}  # fmt: skip
    proc = layenv("delete", "latecomer", env=env)
    pid = int(pid_file.read_text())  # the hook started the kernel when the delete took the env's lock
    try:
        assert proc.returncode == 5, proc.stderr
        assert proc.stderr.startswith("error: 1 kernel is running from latecomer ("), proc.stderr
        assert f"pid {pid}" in proc.stderr, proc.stderr
        assert (layer / "pyvenv.cfg").is_file() and (layer / "bin" / "python").exists()
        os.kill(pid, 0)  # still running, from its env's files
    finally:
        stop(pid)


def test_a_kernel_started_by_a_bare_python_on_path_is_found_by_its_executable(
    cli_env: dict[str, str], base: Path, tmp_path: Path
):
    """A kernel run from an activated shell (`python -m ipykernel_launcher -f …`, the env's bin first on PATH) names
    no file of its env on its command line: its executable is the env's. The listing's reason says so (a delete
    would be refused with it; the shared base is not deleted here)."""
    connection = str(tmp_path / f"kernel-{uuid.uuid4()}.json")
    env = {**cli_env, "PATH": f"{base / 'bin'}{os.pathsep}{cli_env['PATH']}"}
    kernel = subprocess.Popen(["python", "-m", "ipykernel_launcher", "-f", connection], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_ready(connection)
        assert Path(f"/proc/{kernel.pid}/cmdline").read_bytes().split(b"\0")[0] == b"python"
        listed = json.loads(layenv("list", "--json", env=cli_env).stdout)["environments"]
        reason = next(env["delete_blocked_reason"] for env in listed if env["path"] == str(base))
        assert reason is not None and f"(pid {kernel.pid}, user " in reason, reason
    finally:
        stop(kernel)
