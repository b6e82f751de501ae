"""Creating a Conda base with py-rattler, through a real server: cold and warm package cache.

The channel is the tests' local ``file://`` channel (``tests/condachannel.py``): ``python`` (the test run's CPython,
~17 MB as .tar.bz2) and ipykernel's dependency closure, 31 packages, 28 MB. Each run is ``POST
/layenv/environments {"kind": "conda", "packages": ["python=3.11"]}`` (ipykernel added) until the job has
succeeded, which includes the kernel being listed; the client polls the job every 20 ms, as the panel does.

* cold: the package cache (``LayenvService.conda_pkgs_dir``) is emptied before each run: every package is read from
  the channel, checked and extracted, then linked;
* warm: the cache holds every package already (a first run fills it): only the solve and the linking remain.

A real channel adds the download time of those 28 MB (and a repodata fetch) to the cold figure only. The job's
``solve`` line in its log gives the solve time. Results go to stdout (Markdown) and
``benchmarks/results/conda_create.{md,json}``.

    python benchmarks/conda_create.py            # 5 runs each
    python benchmarks/conda_create.py --quick    # 2 runs each (smoke run)
    python benchmarks/conda_create.py --runs 1 --out /tmp/cc   # one run each, results elsewhere
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from benchserver import RESULTS, run_job, save, scratch, start_server
from condachannel import cached_channel, channel_url
from jupyter_process import JupyterProcess, http


def one_create(server: JupyterProcess, name: str) -> tuple[float, float, int]:
    """Seconds from POST to succeeded, the solve's seconds from the job log, and the package count."""
    started = time.perf_counter()
    job = run_job(server, "layenv/environments", {"kind": "conda", "name": name, "packages": ["python=3.11"]})
    elapsed = time.perf_counter() - started
    log = http("GET", f"{server.url}layenv/jobs/{job['id']}/log", server.token).body
    text = log if isinstance(log, str) else json.dumps(log)
    solved = re.search(r"solved in ([0-9.]+) s: (\d+) packages", text)
    return elapsed, float(solved.group(1)) if solved else float("nan"), int(solved.group(2)) if solved else 0


def measure(work: Path, runs: int) -> dict[str, Any]:
    channel = cached_channel()
    size = sum(p.stat().st_size for p in channel.rglob("*.tar.bz2"))
    home, pkgs = work / "home", work / "pkgs"
    home.mkdir()
    server = start_server(work, home, {"conda_channels": [channel_url(channel)], "conda_pkgs_dir": str(pkgs)})
    results: dict[str, list[tuple[float, float, int]]] = {"cold": [], "warm": []}
    try:
        for mode in ("cold", "warm"):
            if mode == "warm":
                one_create(server, "warmup")  # fills the cache
            for run in range(runs):
                if mode == "cold":
                    shutil.rmtree(pkgs, ignore_errors=True)
                name = f"{mode}{run}"
                results[mode].append(one_create(server, name))
                shutil.rmtree(home / ".conda" / "envs" / name)  # a fresh name, a fresh prefix each run
    finally:
        server.stop()
    return {
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "channel_bytes": size,
        "packages": results["cold"][0][2],
        "runs": runs,
        **{
            mode: {
                "median_s": statistics.median(r[0] for r in rows),
                "min_s": min(r[0] for r in rows),
                "max_s": max(r[0] for r in rows),
                "solve_median_s": statistics.median(r[1] for r in rows),
            }
            for mode, rows in results.items()
        },
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Creating a Conda base (`python=3.11` + ipykernel, {result['packages']} packages, "
        f"{result['channel_bytes'] / 2**20:.0f} MiB of .tar.bz2) from a local channel, POST to succeeded, "
        f"{result['runs']} runs each:",
        "",
        "| package cache | median (s) | min (s) | max (s) | solve, median (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for mode in ("cold", "warm"):
        row = result[mode]
        lines.append(f"| {mode} | {row['median_s']:.2f} | {row['min_s']:.2f} | {row['max_s']:.2f} | "
                     f"{row['solve_median_s']:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 runs each instead of 5")
    parser.add_argument("--runs", type=int, default=5, help="runs with a cold cache, and as many with a warm one")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with scratch("layenv-bench-conda-") as work:
        result = measure(work, 2 if args.quick else args.runs)
    save("conda_create", result, markdown(result), args.out)


if __name__ == "__main__":
    main()
