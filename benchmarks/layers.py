"""Faithful layers: what a layer costs when its package's dependencies are mostly in the base, side by side.

One run, on a Conda-style base (a copied CPython with ipykernel and its ~30 dependencies, ``tests/envtree.py``):

* a wheelhouse holding real wheels of every distribution of the base, at the base's versions (rebuilt from the files
  each one installed), plus ``layertool`` (needs ``ipykernel``, ``jupyter_client``, ``traitlets``, ``iniconfig``)
  and ``iniconfig``: the base has everything but those two;
* jupyter_layenv: ``POST /layenv/environments`` with ``layertool`` on a real ``jupyter server`` until the job ends;
* plain uv: ``virtualenv --system-site-packages`` on the base + ``uv pip install layertool`` (offline, same
  wheelhouse): uv does not see the base, so it copies the dependencies into the layer;
* pip: the same virtualenv + ``pip install layertool`` (pip sees the base);
* for each: wall time, bytes of the layer (a hard-linked file counted once), base distributions copied into it;
* add one small package to an existing layer (``POST …/packages``) and restore a revision (``POST …/restore``):
  medians, until the job ends.

Results go to stdout (Markdown) and ``benchmarks/results/layers.{md,json}``.

    python benchmarks/layers.py            # 5 repetitions
    python benchmarks/layers.py --quick    # 2 repetitions (smoke run)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from envtree import make_conda_prefix, site_packages
from jupyter_process import JupyterProcess
from packaging.utils import canonicalize_name
from wheelhouse import write_wheel

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BASE_ID = "conda-py311_ai"
REQUIRES = ("ipykernel", "jupyter_client", "traitlets", "iniconfig")


def wheel_from_installed(dist: metadata.Distribution, directory: Path) -> Path:
    """A real wheel of an installed distribution: the site-packages files its RECORD lists, its own tag."""
    rows = [r for r in csv.reader(io.StringIO(dist.read_text("RECORD") or "")) if r]
    info = next(r[0].split("/", 1)[0] for r in rows if r[0].split("/", 1)[0].endswith(".dist-info"))
    wheel_text = dist.read_text("WHEEL") or "Tag: py3-none-any\n"
    tags = [line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:")]
    tag = next((t for t in tags if t.startswith(("py3", "cp3"))), tags[0] if tags else "")
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    path = directory / f"{name}-{dist.version}-{tag or 'py3-none-any'}.whl"
    site = Path(str(dist.locate_file("")))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for row in rows:
            if row[0].startswith("..") or row[0].endswith(("RECORD", ".pyc")) or not (site / row[0]).is_file():
                continue
            wheel.write(site / row[0], row[0])
        wheel.writestr(f"{info}/RECORD", "")
    return path


def base_closure() -> list[metadata.Distribution]:
    """The distributions make_conda_prefix(ipykernel=True, packages=['pip']) puts in the base."""
    from envtree import _dependency_closure

    return _dependency_closure(["ipykernel", "pip"])


def layer_facts(env: Path, base_names: set[str]) -> dict[str, Any]:
    seen: set[int] = set()
    size = 0
    for directory, _dirs, files in os.walk(env):
        for name in files:
            st = os.lstat(os.path.join(directory, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                size += st.st_size
    dists = {canonicalize_name(p.name.split("-")[0]) for p in site_packages(env).glob("*.dist-info")}
    return {"bytes": size, "dists": sorted(dists), "base_copied": sorted(dists & base_names)}


def _run(cmd: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd}: {proc.stdout}\n{proc.stderr}")


def manual(base: Path, dest: Path, tool: str, wheelhouse: Path) -> float:
    """virtualenv on the base + uv or pip install of ``layertool``, as a user would by hand."""
    from uv import find_uv_bin

    start = time.perf_counter()
    _run([sys.executable, "-m", "virtualenv", "--no-periodic-update", "--no-download", "-p", str(base / "bin/python"),
          "--system-site-packages", "--no-seed", str(dest)])  # fmt: skip
    if tool == "uv":
        _run([find_uv_bin(), "pip", "install", "--no-config", "--offline", "--no-index", "--find-links",
              str(wheelhouse), "--python", str(dest / "bin/python"), "layertool"])  # fmt: skip
    else:
        _run([str(dest / "bin/python"), "-m", "pip", "install", "--isolated", "--disable-pip-version-check",
              "--no-index", "--find-links", str(wheelhouse), "layertool"])  # fmt: skip
    return time.perf_counter() - start


def timed_job(server: JupyterProcess, path: str, body: Any) -> float:
    start = time.perf_counter()
    status, job = server.request("POST", path, body)
    if status != 202:
        raise RuntimeError(f"POST {path}: {status} {job}")
    job = server.follow(job["id"], interval=0.02)
    if job["state"] != "succeeded":
        raise RuntimeError(f"{path}: {job}")
    return time.perf_counter() - start


def run(work: Path, reps: int) -> dict[str, Any]:
    home = work / "home"
    root = make_conda_prefix(home / "miniconda3", conda_root=True)
    base = make_conda_prefix(root / "envs" / "py311_ai", ipykernel=True, packages=["pip"])
    (home / ".virtualenvs").mkdir()
    wheelhouse = work / "wheelhouse"
    wheelhouse.mkdir()
    closure = base_closure()
    for dist in closure:
        wheel_from_installed(dist, wheelhouse)
    base_names = {canonicalize_name(d.metadata["Name"]) for d in closure}
    write_wheel(wheelhouse, "iniconfig", "2.0.0", {"iniconfig/__init__.py": '__version__ = "2.0.0"\n'})
    write_wheel(wheelhouse, "layertool", "1.0", {"layertool.py": "import ipykernel, iniconfig\n"}, REQUIRES)
    for i in range(reps + 1):
        write_wheel(wheelhouse, f"tiny{i}", "1.0", {f"tiny{i}.py": ""})

    config = {"LayenvService": {"find_links": [str(wheelhouse)], "offline": True}}
    server = JupyterProcess(work, home, token="bench", config_files={"jupyter_server_config.json": config})
    server.wait_ready()
    times: dict[str, list[float]] = {"layenv": [], "uv": [], "pip": [], "add_one": [], "restore": []}
    try:
        for i in range(reps):
            body = {"name": f"lay{i}", "base": BASE_ID, "packages": ["layertool"]}
            times["layenv"].append(timed_job(server, "layenv/environments", body))
            times["uv"].append(manual(base, home / "manual" / f"uv{i}", "uv", wheelhouse))
            times["pip"].append(manual(base, home / "manual" / f"pip{i}", "pip", wheelhouse))
        facts = {
            "layenv": layer_facts(home / ".virtualenvs" / "lay0", base_names),
            "uv": layer_facts(home / "manual" / "uv0", base_names),
            "pip": layer_facts(home / "manual" / "pip0", base_names),
        }
        env = f"layenv/environments/{BASE_ID}.lay0"
        for i in range(reps):
            times["add_one"].append(timed_job(server, f"{env}/packages", {"add": [f"tiny{i}"]}))
        for i in range(reps):  # back and forth between the create (1) and the last change
            target = 1 if i % 2 == 0 else reps + 1
            times["restore"].append(timed_job(server, f"{env}/revisions/{target}/restore", None))
    finally:
        server.stop()
    return {
        "reps": reps,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "base_distributions": len(base_names),
        "medians_s": {k: statistics.median(v) for k, v in times.items()},
        "times_s": times,
        "layers": facts,
    }


def report(result: dict[str, Any]) -> str:
    med, facts = result["medians_s"], result["layers"]
    rows = [
        ("**jupyter_layenv** (`POST environments`)", "layenv"),
        ("virtualenv + plain `uv pip install`", "uv"),
        ("virtualenv + `pip install`", "pip"),
    ]
    lines = [
        f"A layer with `layertool` (needs ipykernel, jupyter_client, traitlets, iniconfig) on a base holding "
        f"{result['base_distributions']} distributions (all but iniconfig), offline wheelhouse, medians of "
        f"{result['reps']} ({result['machine']}):",
        "",
        "| workflow | create (s) | layer size | distributions in the layer | base distributions copied |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, key in rows:
        fact = facts[key]
        lines.append(f"| {label} | {med[key]:.3f} | {fact['bytes'] / 1024:.0f} KiB | {len(fact['dists'])} | "
                     f"{len(fact['base_copied'])} |")  # fmt: skip
    lines += [
        "",
        f"jupyter_layenv's create takes {med['layenv'] / med['uv']:.2f}x plain uv's (target <= 1.5x) and copies "
        f"{len(facts['layenv']['base_copied'])} base distributions (target 0; plain uv copies "
        f"{len(facts['uv']['base_copied'])}). Add one small package to the layer: median **{med['add_one']:.3f} s** "
        f"(target <= 1 s); restore a revision: median **{med['restore']:.3f} s** (target <= 1 s).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions (smoke run)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="layenv-bench-layers-"))
    try:
        result = run(work, 2 if args.quick else args.reps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(result)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "layers.md").write_text(text, encoding="utf-8")
    (args.out / "layers.json").write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
