"""The layenv-provisioner (issue 11 §2): specs name it, it reads the env again at launch, and says what to do when
the env is gone. Real envs, a real nbconvert run of synced kernelspecs, a real server."""

from __future__ import annotations

import getpass
import grp
import json
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from envtree import Tree, make_conda_prefix, make_layered_env, write_activate_script, write_conda_state
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager
from jupyter_process import JUPYTER, JupyterProcess, run_code

from jupyter_layenv import LayenvKernelSpecManager
from jupyter_layenv.relaunch import EnvUnusable, launch_now

PROBE = "import os, sys; print(sys.prefix, os.environ.get('LAYENV_LATE'), os.environ.get('LAYENV_LATE_SCRIPT'))"


def test_every_spec_names_the_provisioner_and_a_launch_now_equals_the_listing(home: Tree):
    table = LayenvKernelSpecManager().kernel_table()
    assert table.entries
    for name, entry in table.entries.items():
        path = entry.spec["metadata"]["layenv"]["path"]
        provisioner = entry.spec["metadata"]["kernel_provisioner"]
        assert provisioner == {"provisioner_name": "layenv-provisioner", "config": {"env": path}}, name
        # unchanged env: the provisioner starts exactly what the spec says (layers, activate.d wrapper, state vars)
        assert launch_now(path, entry.spec["argv"], entry.spec["env"]) == (entry.spec["argv"], entry.spec["env"]), name


@pytest.fixture(scope="module")
def prov_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~/miniconda3 with envs/provenv (ipykernel) and two layers on it in ~/.virtualenvs (one to delete)."""
    home = tmp_path_factory.mktemp("prov-home")
    make_conda_prefix(home / "miniconda3", conda_root=True)
    env = make_conda_prefix(home / "miniconda3" / "envs" / "provenv", ipykernel=True)
    make_layered_env(env, home / ".virtualenvs" / "doomed", tool="uv")
    return home


def _env(home: Path, data: Path) -> dict[str, str]:
    drop = ("CONDA_", "MAMBA_", "WORKON_HOME", "JUPYTER_", "VIRTUAL_ENV", "PYTHONPATH")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**clean, "HOME": str(home), "JUPYTER_DATA_DIR": str(data)}


def _sync(env: dict[str, str]) -> list[str]:
    proc = subprocess.run([JUPYTER, "layenv", "sync", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["written"]


def _notebook(path: Path, kernel_name: str, code: str) -> Path:
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "probe", "metadata": {}, "outputs": [],
                   "source": code}],
        "metadata": {"kernelspec": {"name": kernel_name, "display_name": "Python [conda env:provenv]",
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(nb))
    return path


def _nbconvert(notebook: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = [JUPYTER, "nbconvert", "--to", "notebook", "--execute", "--output", "out.ipynb", str(notebook)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, cwd=notebook.parent)


def test_nbconvert_runs_a_nb_conda_kernels_name_through_synced_specs_with_the_env_as_it_is_now(
    prov_home: Path, tmp_path: Path
):
    env = _env(prov_home, tmp_path / "data")
    written = _sync(env)
    assert "conda-env-provenv-py" in written and "conda-provenv-py" in written
    synced = json.loads((tmp_path / "data" / "kernels" / "conda-env-provenv-py" / "kernel.json").read_text())
    assert synced["metadata"]["kernel_provisioner"]["provisioner_name"] == "layenv-provisioner"
    # the env changes after the sync: a `conda env config vars set` variable and an activate.d script
    provenv = prov_home / "miniconda3" / "envs" / "provenv"
    state = write_conda_state(provenv, {"LAYENV_LATE": "after-sync"})
    script = write_activate_script(provenv, "late", "export LAYENV_LATE_SCRIPT=sourced\n")
    try:
        assert "LAYENV_LATE" not in json.dumps(synced)
        proc = _nbconvert(_notebook(tmp_path / "saved.ipynb", "conda-env-provenv-py", PROBE), env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads((tmp_path / "out.ipynb").read_text())
        text = "".join("".join(o.get("text", "")) for o in out["cells"][0]["outputs"])
        assert text.split() == [str(provenv), "after-sync", "sourced"], text
    finally:
        state.unlink()
        shutil.rmtree(script.parent.parent)


def test_the_plain_argv_and_env_still_start_the_kernel(prov_home: Path, tmp_path: Path):
    """For clients that ignore provisioners: the synced spec without its provisioner stanza."""
    env = _env(prov_home, tmp_path / "data")
    _sync(env)
    spec = json.loads((tmp_path / "data" / "kernels" / "conda-provenv-py" / "kernel.json").read_text())
    del spec["metadata"]["kernel_provisioner"]
    km = KernelManager()
    km._kernel_spec = KernelSpec(resource_dir=str(tmp_path), **spec)
    _, out = run_code(km, PROBE)
    assert out.split()[0] == str(prov_home / "miniconda3" / "envs" / "provenv")


def test_a_deleted_env_is_named_not_a_dead_kernel(prov_home: Path, tmp_path: Path):
    layer = make_layered_env(prov_home / "miniconda3" / "envs" / "provenv", prov_home / ".virtualenvs" / "gone")
    table = LayenvKernelSpecManager(venv_roots=[str(prov_home / ".virtualenvs")]).kernel_table()
    entry = next(e for e in table.entries.values() if e.spec["metadata"]["layenv"]["path"] == str(layer))
    shutil.rmtree(layer)
    with pytest.raises(EnvUnusable, match=rf"environment {layer} was deleted; pick another kernel"):
        launch_now(str(layer), entry.spec["argv"], entry.spec["env"])


def test_a_start_that_waited_for_a_delete_says_the_env_was_deleted(prov_home: Path, tmp_path: Path):
    """A delete holds the env over its last look at the kernels and its rename: a start meanwhile waits, then finds
    the env gone and says so, with no kernel process started from the renamed files."""
    import threading

    from jupyter_layenv.kernelstart import block_starts
    from jupyter_layenv.provisioner import EnvironmentUnusable

    layer = make_layered_env(prov_home / "miniconda3" / "envs" / "provenv", prov_home / ".virtualenvs" / "raced")
    table = LayenvKernelSpecManager(venv_roots=[str(prov_home / ".virtualenvs")]).kernel_table()
    entry = next(e for e in table.entries.values() if e.spec["metadata"]["layenv"]["path"] == str(layer))
    km = KernelManager()
    km._kernel_spec = KernelSpec(resource_dir=str(tmp_path), **entry.spec)
    held = block_starts(str(layer))
    assert held is not None
    failed: list[BaseException] = []

    def start() -> None:
        try:
            km.start_kernel()
        except BaseException as err:  # the start's own error is the result
            failed.append(err)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        starter.join(1.0)
        assert starter.is_alive()  # waiting for the delete
        layer.rename(layer.with_name(".deleting-raced"))
    finally:
        held.release()
        starter.join(30)
        started = km.has_kernel
        if started:
            km.shutdown_kernel(now=True)
    assert not started
    assert len(failed) == 1 and isinstance(failed[0], EnvironmentUnusable), failed
    assert f"environment {layer} was deleted; pick another kernel" in str(failed[0])


def test_a_real_server_start_of_a_deleted_envs_kernel_says_so(prov_home: Path, tmp_path: Path):
    """A server that serves the synced kernelspecs (jupyter_client's own manager, as voila or a plain server do)."""
    env = _env(prov_home, tmp_path / "work" / "data")
    written = _sync(env)
    name = next(n for n in written if n.endswith(".doomed-py"))
    doomed = prov_home / ".virtualenvs" / "doomed"
    shutil.rmtree(doomed)
    config = {"ServerApp": {"kernel_spec_manager_class": "jupyter_client.kernelspec.KernelSpecManager"}}
    server = JupyterProcess(tmp_path / "work", prov_home, config_files={"jupyter_server_config.json": config})
    try:
        server.wait_ready()
        assert name in server.get("api/kernelspecs")["kernelspecs"]
        body = {"path": "nb.ipynb", "type": "notebook", "name": "nb.ipynb", "kernel": {"name": name}}
        status, reply = server.request("POST", "api/sessions", body)
        assert status in (410, 500), (status, reply, server.log_tail())  # the session manager re-raises as 500
        assert reply["message"] == f"environment {doomed} was deleted; pick another kernel"
        assert server.get("api/kernels") == []
    finally:
        server.stop()


def test_a_layer_whose_base_was_deleted_while_the_server_runs_says_so(prov_home: Path, tmp_path: Path):
    """A layer's kernel started after its Conda base was deleted failed with "environment … is broken: …/bin/python
    is a dangling link …; recreate it": the layer is intact, its base is what is gone, and the listing says so."""
    base = make_conda_prefix(prov_home / "miniconda3" / "envs" / "shortlived", ipykernel=True)
    layer = make_layered_env(base, prov_home / ".virtualenvs" / "stranded", tool="uv")
    server = JupyterProcess(tmp_path / "work", prov_home)
    try:
        server.wait_ready()
        name = "conda-shortlived.stranded-py"
        assert name in server.get("api/kernelspecs")["kernelspecs"]
        shutil.rmtree(base)
        body = {"path": "nb.ipynb", "type": "notebook", "name": "nb.ipynb", "kernel": {"name": name}}
        status, reply = server.request("POST", "api/sessions", body)
        assert status in (410, 500), (status, reply, server.log_tail())  # the session manager re-raises as 500
        assert reply["message"] == (
            f"the base of environment {layer} was deleted ({base / 'bin'} no longer exists); "
            "recreate the environment on an existing base or pick another kernel"
        )
        assert server.get("api/kernels") == []
    finally:
        server.stop()
        shutil.rmtree(layer)


def test_nbconvert_of_a_deleted_env_says_so(prov_home: Path, tmp_path: Path):
    layer = make_layered_env(prov_home / "miniconda3" / "envs" / "provenv", prov_home / ".virtualenvs" / "gone2")
    env = _env(prov_home, tmp_path / "data")
    name = next(n for n in _sync(env) if n.endswith(".gone2-py"))
    shutil.rmtree(layer)
    proc = _nbconvert(_notebook(tmp_path / "saved.ipynb", name, PROBE), env)
    assert proc.returncode != 0
    assert f"environment {layer} was deleted; pick another kernel" in proc.stderr
    assert "Kernel died" not in proc.stderr


def test_nbconvert_kernel_starts_set_last_used_like_the_servers(prov_home: Path, tmp_path: Path):
    """A kernel nbconvert starts through a synced spec (no server running) is a use of its env: in the user's
    data dir, and for a group env in the group root, where the server's listing reads it."""
    group_root = tmp_path / "srv" / "physics"
    group_root.mkdir(parents=True)
    os.chown(group_root, -1, grp.getgrnam("users").gr_gid)
    group_root.chmod(0o2775)
    provenv = prov_home / "miniconda3" / "envs" / "provenv"
    shared = make_layered_env(provenv, group_root / "shared", tool="uv")
    env = _env(prov_home, tmp_path / "data")
    groups = f"--LayenvKernelSpecManager.group_roots={json.dumps([str(tmp_path / 'srv' / '*')])}"
    proc = subprocess.run([JUPYTER, "layenv", "sync", "--json", groups], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    specs = {name: json.loads((tmp_path / "data" / "kernels" / name / "kernel.json").read_text())
             for name in json.loads(proc.stdout)["written"]}  # fmt: skip
    (shared_kernel,) = [n for n, s in specs.items() if s["metadata"]["layenv"]["path"] == str(shared)]
    record = tmp_path / "data" / "layenv" / "last_used.json"
    assert not record.exists()

    before = datetime.now(timezone.utc).replace(microsecond=0)
    for kernel in ("conda-env-provenv-py", shared_kernel):
        proc = _nbconvert(_notebook(tmp_path / f"{kernel}.ipynb", kernel, "print(6 * 7)"), env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    mine = json.loads(record.read_text())
    assert set(mine) == {str(provenv)} and mine[str(provenv)]["user"] == getpass.getuser()
    assert before <= datetime.fromisoformat(mine[str(provenv)]["time"]) <= datetime.now(timezone.utc)
    theirs = json.loads((group_root / ".layenv-usage" / f"{getpass.getuser()}.json").read_text())
    assert set(theirs) == {"shared"} and theirs["shared"]["time"] >= before.isoformat()

    listing = subprocess.run([JUPYTER, "layenv", "list", "--json", groups], env=env, capture_output=True,
                             text=True, timeout=120, check=True)  # fmt: skip
    last = {e["path"]: (e["last_used"], e["last_used_by"]) for e in json.loads(listing.stdout)["environments"]}
    assert last[str(provenv)] == (mine[str(provenv)]["time"], getpass.getuser())
    assert last[str(shared)] == (theirs["shared"]["time"], getpass.getuser())
