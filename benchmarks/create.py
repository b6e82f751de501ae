"""Create-to-kernel-listed: jupyter_layenv against the seed's manual workflow, and the event loop under load.

One run, side by side, on a Conda-style base (a copied CPython with ipykernel and pip, ``tests/envtree.py``) and a
real ``jupyter server`` (HOME and Jupyter dirs isolated):

* (a) ``POST /layenv/environments`` with no package, (b) with one local wheel (offline wheelhouse): from the POST
  until ``GET /api/kernelspecs`` lists the new kernel (the client polls the job every 20 ms, as the panel does);
* baseline, the seed's manual steps: ``python -m venv --system-site-packages`` + ``pip install ipykernel`` (already
  satisfied through the base: the most favourable case for the baseline, no download) + ``python -m ipykernel
  install --user``, until the same server lists the kernel;
* ``virtualenv`` (pip seeded) + ``pip install`` of the same wheel + ``python -m ipykernel install --user``;
* disk: the bytes each env adds (symlinks counted as links);
* event loop: p50/p99/max latency of ``GET /api/status`` sampled every 10 ms while four jobs install packages
  (four wheels of 3000 modules each, ``job_concurrency = 4``).

Results go to stdout (Markdown) and ``benchmarks/results/create.{md,json}``.

    python benchmarks/create.py            # 7 repetitions
    python benchmarks/create.py --quick    # 2 repetitions (smoke run)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchserver import BASE_ID, make_home, run_checked, run_job, save, scratch, start_server
from envtree import add_pure_python_package, site_packages
from jupyter_process import JupyterProcess
from wheelhouse import write_wheel


def kernels(server: JupyterProcess) -> set[str]:
    return set(server.get("api/kernelspecs")["kernelspecs"])


def post(server: JupyterProcess, path: str, body: Any) -> Any:
    status, reply = server.request("POST", path, body)
    if status >= 400:
        raise RuntimeError(f"POST {path}: {status} {reply}")
    return reply


def wait_listed(server: JupyterProcess, kernel: str, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while kernel not in kernels(server):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kernel} never listed")
        time.sleep(0.02)


def layenv_create(server: JupyterProcess, name: str, packages: list[str]) -> float:
    start = time.perf_counter()
    run_job(server, "layenv/environments", {"name": name, "base": BASE_ID, "packages": packages})
    wait_listed(server, f"{BASE_ID}.{name}-py")
    return time.perf_counter() - start


def manual_create(server: JupyterProcess, base: Path, dest: Path, tool: str, wheelhouse: Path | None) -> float:
    """The seed's steps by hand, until the server lists the kernel they registered."""
    env, python = server.env, str(dest / "bin" / "python")
    start = time.perf_counter()
    if tool == "venv":
        run_checked([str(base / "bin" / "python"), "-m", "venv", "--system-site-packages", str(dest)], env)
        run_checked([python, "-m", "pip", "install", "--disable-pip-version-check", "ipykernel"], env)
    else:
        run_checked([sys.executable, "-m", "virtualenv", "--no-periodic-update", "-p", str(base / "bin" / "python"),
                     "--system-site-packages", str(dest)], env)  # fmt: skip
        run_checked([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-index",
                     "--find-links", str(wheelhouse), "iniconfig"], env)  # fmt: skip
    run_checked([python, "-m", "ipykernel", "install", "--user", "--name", dest.name], env)
    wait_listed(server, dest.name)
    return time.perf_counter() - start


def disk_bytes(path: Path) -> int:
    """Sizes of everything under ``path`` (symlinks as links: ``os.walk`` does not follow them)."""
    return sum(os.lstat(os.path.join(d, name)).st_size for d, dirs, files in os.walk(path) for name in (*dirs, *files))


def status_latency_under_load(work: Path, home: Path, wheelhouse: Path) -> dict[str, Any]:
    """p99 of GET /api/status sampled every 10 ms while four jobs create envs and install big wheels."""
    for i in range(4):
        files = {f"bulk{i}/m{j:04d}.py": f"VALUE = {j}\n" * 20 for j in range(3000)}
        write_wheel(wheelhouse, f"bulk{i}", "1.0", {f"bulk{i}/__init__.py": "", **files})
    server = start_server(work, home, {"find_links": [str(wheelhouse)], "offline": True, "job_concurrency": 4})
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            server.get("api/status")
            samples.append((time.perf_counter() - start) * 1000)
            time.sleep(0.01)

    try:
        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        bodies = [{"name": f"load{i}", "base": BASE_ID, "packages": [f"bulk{i}"]} for i in range(4)]
        jobs = [post(server, "layenv/environments", body) for body in bodies]
        while any(j["state"] in ("queued", "running") for j in jobs):
            time.sleep(0.05)
            jobs = [server.get(f"layenv/jobs/{j['id']}") for j in jobs]
        window = time.perf_counter() - start
        stop.set()
        sampler.join()
    finally:
        server.stop()
    if any(j["state"] != "succeeded" for j in jobs):
        raise RuntimeError(f"load jobs: {jobs}")
    ordered = sorted(samples)
    return {
        "window_s": round(window, 2),
        "samples": len(samples),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 7")
    args = parser.parse_args()
    reps = 2 if args.quick else 7
    with scratch("layenv-bench-create-") as work:
        results = run(work, reps)
    save("create", results, report(results))


def run(work: Path, reps: int) -> dict[str, Any]:
    home = work / "home"
    base = make_home(home)
    add_pure_python_package(site_packages(base), "layenv_base_marker", "1.0", 'WHERE = "py311_ai"\n')
    wheelhouse = work / "wheelhouse"
    write_wheel(wheelhouse, "iniconfig", "2.0.0", {"iniconfig/__init__.py": '__version__ = "2.0.0"\n'})
    manual_root = work / "manual"
    manual_root.mkdir()
    server = start_server(work, home, {"find_links": [str(wheelhouse)], "offline": True})
    times: dict[str, list[float]] = {"layenv_bare": [], "layenv_wheel": [], "manual_venv": [], "virtualenv_pip": []}
    try:
        layenv_create(server, "warmup", [])  # virtualenv's interpreter probe is cached after its first run
        for i in range(reps):
            times["layenv_bare"].append(layenv_create(server, f"bare{i}", []))
            times["layenv_wheel"].append(layenv_create(server, f"wheel{i}", ["iniconfig"]))
            times["manual_venv"].append(manual_create(server, base, manual_root / f"manual{i}", "venv", None))
            times["virtualenv_pip"].append(manual_create(server, base, manual_root / f"venvpip{i}", "virtualenv",
                                                         wheelhouse))  # fmt: skip
    finally:
        server.stop()
    sizes = {
        "layenv_bare": disk_bytes(home / ".virtualenvs" / "bare0"),
        "layenv_wheel": disk_bytes(home / ".virtualenvs" / "wheel0"),
        "manual_venv": disk_bytes(manual_root / "manual0"),
        "virtualenv_pip": disk_bytes(manual_root / "venvpip0"),
    }
    load = status_latency_under_load(work / "load", home, wheelhouse)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "repetitions": reps,
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "median_s": {k: round(v, 3) for k, v in medians.items()},
        "speedup_bare_vs_manual": round(medians["manual_venv"] / medians["layenv_bare"], 1),
        "speedup_wheel_vs_virtualenv_pip": round(medians["virtualenv_pip"] / medians["layenv_wheel"], 1),
        "disk_bytes": sizes,
        "status_under_load": load,
        "targets": {"bare_median_s": 1.0, "bare_speedup": 5.0, "bare_disk_bytes": 1024 * 1024, "status_p99_ms": 50},
    }


LABELS = {
    "layenv_bare": "(a) jupyter_layenv, no package",
    "layenv_wheel": "(b) jupyter_layenv, one local wheel",
    "manual_venv": "seed's manual steps: venv + pip install ipykernel + ipykernel install",
    "virtualenv_pip": "virtualenv + pip install (same wheel) + ipykernel install",
}


def report(results: dict[str, Any]) -> str:
    load = results["status_under_load"]
    lines = [
        "# Create-to-kernel-listed",
        "",
        f"{results['machine']['platform']}, Python {results['machine']['python']}, "
        f"{results['machine']['cpus']} CPUs; {results['repetitions']} repetitions; `python benchmarks/create.py`.",
        "",
        "| workflow | median (s) | min (s) | max (s) | disk of the env |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, label in LABELS.items():
        values = results["seconds"][key]
        size = results["disk_bytes"][key]
        lines.append(f"| {label} | {results['median_s'][key]:.3f} | {min(values):.3f} | {max(values):.3f} | "
                     f"{size / 1024:.0f} KiB |")  # fmt: skip
    lines += [
        "",
        f"(a) is {results['speedup_bare_vs_manual']}x faster than the seed's manual steps (target >= 5x, median "
        f"<= 1 s, <= 1 MiB on disk); (b) is {results['speedup_wheel_vs_virtualenv_pip']}x faster than virtualenv + "
        "pip.",
        "",
        f"`GET /api/status` while four jobs install 3000-module wheels ({load['window_s']} s, {load['samples']} "
        f"samples): p50 {load['p50_ms']} ms, **p99 {load['p99_ms']} ms** (target <= 50 ms), max {load['max_ms']} ms.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
