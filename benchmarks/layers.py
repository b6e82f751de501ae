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
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchserver import BASE_ID, RESULTS, make_home, run_checked, run_job, save, scratch, start_server
from envtree import layer_dists
from jupyter_process import JupyterProcess
from packaging.utils import canonicalize_name
from wheelhouse import wheels_from_installed, write_wheel

from jupyter_layenv.create.installers import InstallerSettings, find_uv, pip_command, uv_command

REQUIRES = ("ipykernel", "jupyter_client", "traitlets", "iniconfig")
BASE_PACKAGES = ("ipykernel", "pip")  # what make_home's base holds, with their dependencies


def base_names() -> set[str]:
    """The distributions make_home's base holds."""
    from envtree import _dependency_closure

    return {canonicalize_name(d.metadata["Name"]) for d in _dependency_closure(BASE_PACKAGES)}


def layer_facts(env: Path, base_names: set[str]) -> dict[str, Any]:
    seen: set[int] = set()
    size = 0
    for directory, _dirs, files in os.walk(env):
        for name in files:
            st = os.lstat(os.path.join(directory, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                size += st.st_size
    dists = layer_dists(env)
    return {"bytes": size, "dists": sorted(dists), "base_copied": sorted(dists & base_names)}


def manual(base: Path, dest: Path, tool: str, wheelhouse: Path) -> float:
    """virtualenv on the base + uv or pip install of ``layertool``, as a user would by hand (the command lines
    jupyter_layenv's own installers use, with the same offline wheelhouse, without its planning)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    python = str(dest / "bin/python")
    requirements = dest.with_name(f"{dest.name}-requirements.txt")
    requirements.parent.mkdir(parents=True, exist_ok=True)
    requirements.write_text("layertool\n", encoding="utf-8")
    settings = InstallerSettings(find_links=(str(wheelhouse),), offline=True)
    uv = find_uv()
    assert uv is not None, "uv is a dependency of jupyter_layenv"
    if tool == "uv":
        install = uv_command(uv, python, str(requirements), settings)
    else:
        install = pip_command(python, str(requirements), settings)
    start = time.perf_counter()
    run_checked([sys.executable, "-m", "virtualenv", "--no-periodic-update", "--no-download",
                 "-p", str(base / "bin/python"), "--system-site-packages", "--no-seed", str(dest)], env)  # fmt: skip
    run_checked(install, env)
    return time.perf_counter() - start


def timed_job(server: JupyterProcess, path: str, body: Any) -> float:
    start = time.perf_counter()
    run_job(server, path, body)
    return time.perf_counter() - start


def run(work: Path, reps: int) -> dict[str, Any]:
    home = work / "home"
    base = make_home(home)
    wheelhouse = work / "wheelhouse"
    wheels_from_installed(wheelhouse, BASE_PACKAGES)
    in_base = base_names()
    write_wheel(wheelhouse, "iniconfig", "2.0.0", {"iniconfig/__init__.py": '__version__ = "2.0.0"\n'})
    write_wheel(wheelhouse, "layertool", "1.0", {"layertool.py": "import ipykernel, iniconfig\n"}, REQUIRES)
    for i in range(reps + 1):
        write_wheel(wheelhouse, f"tiny{i}", "1.0", {f"tiny{i}.py": ""})

    server = start_server(work, home, {"find_links": [str(wheelhouse)], "offline": True})
    times: dict[str, list[float]] = {"layenv": [], "uv": [], "pip": [], "add_one": [], "restore": []}
    try:
        for i in range(reps):
            body = {"name": f"lay{i}", "base": BASE_ID, "packages": ["layertool"]}
            times["layenv"].append(timed_job(server, "layenv/environments", body))
            times["uv"].append(manual(base, home / "manual" / f"uv{i}", "uv", wheelhouse))
            times["pip"].append(manual(base, home / "manual" / f"pip{i}", "pip", wheelhouse))
        facts = {
            "layenv": layer_facts(home / ".virtualenvs" / "lay0", in_base),
            "uv": layer_facts(home / "manual" / "uv0", in_base),
            "pip": layer_facts(home / "manual" / "pip0", in_base),
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
        "base_distributions": len(in_base),
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
    with scratch("layenv-bench-layers-") as work:
        result = run(work, 2 if args.quick else args.reps)
    save("layers", result, report(result), args.out)


if __name__ == "__main__":
    main()
