"""What the create, layer and Conda-create benchmarks share: a HOME with a Conda-style base, a real server, timed jobs.

Importing it puts ``tests/`` on ``sys.path``: the benchmarks build their envs with the tests' builders.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from envtree import make_conda_prefix  # noqa: E402  (tests/ is on sys.path from here on)
from jupyter_process import JupyterProcess  # noqa: E402

BASE_ID = "conda-py311_ai"
TOKEN = "bench"


def make_home(home: Path) -> Path:
    """``home/miniconda3`` with ``envs/py311_ai`` (ipykernel and pip: the base ``BASE_ID``) and an empty
    ``~/.virtualenvs``; returns the base."""
    root = make_conda_prefix(home / "miniconda3", conda_root=True)
    base = make_conda_prefix(root / "envs" / "py311_ai", ipykernel=True, packages=["pip"])
    (home / ".virtualenvs").mkdir()
    return base


def start_server(work: Path, home: Path, layenv_config: dict[str, Any]) -> JupyterProcess:
    """A real ``jupyter server`` as a user starts it, with ``LayenvService`` config in a config file."""
    config = {"jupyter_server_config.json": {"LayenvService": layenv_config}}
    server = JupyterProcess(work, home, token=TOKEN, config_files=config)
    server.wait_ready()
    return server


def run_job(server: JupyterProcess, path: str, body: Any) -> dict:
    """POST a job and follow it as the panel does (every 20 ms) until it succeeds; anything else raises."""
    status, job = server.request("POST", path, body)
    if status != 202:
        raise RuntimeError(f"POST {path}: {status} {job}")
    job = server.follow(job["id"], interval=0.02)
    if job["state"] != "succeeded":
        raise RuntimeError(f"{path}: {job}\n{server.log_tail()}")
    return job


def run_checked(cmd: list[str], env: Mapping[str, str]) -> None:
    """A step of a by-hand workflow; its output only if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise RuntimeError(f"{cmd}: {proc.stdout}\n{proc.stderr}")


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory for one run, removed after it whatever happened."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def save(name: str, result: dict[str, Any], text: str, out: Path = RESULTS) -> None:
    """``out/<name>.json`` and ``out/<name>.md``, and the Markdown on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(text, encoding="utf-8")
    print(text)
