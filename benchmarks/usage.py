"""Sizing N envs (``size_bytes``) cold and warm, and what it costs a listing (``GET environments``).

Over a synthetic tree (``envtree_synth``, N envs) whose every env also holds a package of ``--files`` files in
``--dirs`` directories, hard-linked from one shared "package cache" for every other env (as uv and conda link):

* cold: a fresh ``SizeTracker`` measures every env (the walk a server does once after it starts);
* warm: the same tracker validates every measure by its directories' mtimes (what a refresh costs; no file stat);
* ``sizes()``: what one listing pays to read the known sizes (it never waits for a walk);
* listing: ``LayenvService.listing_now()`` with sizing and health off (replaced by nothing), on while the cold walk
  and the health checks run in the background, and on once everything is measured and checked;
* shadowed: the listing (sizing and health off) with the ``shadowed`` badge's cache dropped before each one (every
  layer's and base's site-packages listed, as every listing did before the cache) and kept, alternated, and the
  directories each lists (``os.listdir``/``os.scandir`` calls).

    python benchmarks/usage.py                # N = 500, 200 files per env (~1 min to build)
    python benchmarks/usage.py --n 50         # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from envtree_synth import SITE, SynthTree, backdate, build_tree, counting_fs_calls

RESULTS = Path(__file__).resolve().parent / "results"


def add_payload(tree: SynthTree, files: int, dirs: int) -> Path:
    """A package of ``files`` files in every env: linked from one cache for every other env, own in the rest."""
    cache = tree.root / "pkg-cache"
    for d in range(dirs):
        os.makedirs(cache / f"mod{d:03d}", exist_ok=True)
        for f in range(files // dirs):
            (cache / f"mod{d:03d}" / f"f{f:03d}.py").write_text(f"# {d} {f}\n" + "x = 1\n" * 200)
    for i, env in enumerate(tree.envs):
        target = env / SITE / "payload"
        if i % 2 == 0:
            shutil.copytree(cache, target, copy_function=os.link)
        else:
            shutil.copytree(cache, target)
    return cache


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def run(n: int, files: int, dirs: int, keep: bool) -> dict[str, Any]:
    from jupyter_layenv import LayenvKernelSpecManager
    from jupyter_layenv.service import LayenvService
    from jupyter_layenv.usage.shadows import Shadows
    from jupyter_layenv.usage.sizing import SizeTracker

    work = Path(tempfile.mkdtemp(prefix="layenv-usage-bench-"))
    os.environ["JUPYTER_DATA_DIR"] = str(work / "data")  # last-use records: none, and never the user's
    try:
        started = time.perf_counter()
        tree = build_tree(work / "tree", n)
        add_payload(tree, files, dirs)
        backdate(tree.root)
        build_s = time.perf_counter() - started
        paths = [str(env) for env in tree.envs]

        tracker = SizeTracker(refresh=0)
        started = time.perf_counter()
        cold = tracker.measured(paths)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        tracker.measured(paths)  # every measure revalidated by its directories' mtimes
        warm_s = time.perf_counter() - started
        tracker.refresh = 3600
        reads = []
        for _ in range(50):
            started = time.perf_counter()
            tracker.sizes(paths)
            reads.append(time.perf_counter() - started)
        tracker.stop()

        ksm = LayenvKernelSpecManager(conda_roots=[str(tree.conda_root)], envs_dirs=[], environments_files=[],
                                      condarc_paths=[], venv_roots=[str(tree.venv_root)], env_paths=[],
                                      include_server_prefix=False, kernel_dirs=[str(tree.empty_kernels)],
                                      ensure_native_kernel=False)  # fmt: skip
        service = LayenvService(ksm=ksm, user_root=str(work / "user-root"), jobs_dir=str(work / "jobs"))
        real_facts, real_health = service.usage.facts, service.usage.health

        def no_facts(discovered: Any, envs: Any = None, wait: bool = False) -> dict[str, dict]:
            return {env.path: {} for env in discovered.environments}

        def no_health(discovered: Any, wait: bool = False) -> dict[str, None]:
            return {env.path: None for env in discovered.environments}

        def usage_on(on: bool) -> None:
            """Size, last use and health (each env's, checked in the background) on or off for a listing."""
            service.usage.facts = real_facts if on else no_facts  # type: ignore[method-assign]
            service.usage.health = real_health if on else no_health  # type: ignore[method-assign]

        usage_on(False)
        service.listing_now()  # discovery warm: only the usage facts differ between the runs below
        time.sleep(2.5)  # past discovery's 2 s racy window (directories just made are re-checked until then)
        service.listing_now()
        off_before = timed(service.listing_now, 20)
        shadows_dropped, shadows_kept = [], []
        for _ in range(40):  # alternated, as below
            service.usage.shadows = Shadows()  # forgets every site-packages: each is listed again
            shadows_dropped += timed(service.listing_now, 1)
            shadows_kept += timed(service.listing_now, 1)
        service.usage.shadows = Shadows()
        reads_dropped = counted_reads(service.listing_now)
        reads_kept = counted_reads(service.listing_now)
        usage_on(True)
        during, listed = [], 0
        while True:  # the first listing queues every walk; these run while the walker thread works
            started = time.perf_counter()
            listing = service.listing_now()
            during.append(time.perf_counter() - started)
            listed = sum(env["size_bytes"] is not None for env in listing["environments"])
            if listed == len(listing["environments"]) or len(during) > 10_000:
                break
            time.sleep(0.01)
        off, on = [], []
        for _ in range(40):  # alternated, so the machine's other load weighs on both alike
            usage_on(False)
            off += timed(service.listing_now, 1)
            usage_on(True)
            on += timed(service.listing_now, 1)
        service.usage.stop()
        own = sum(m.size_bytes for m in cold.values())
        shared = sum(m.shared_bytes for m in cold.values())
        return {
            "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
            "n": len(paths),
            "files_per_env": files,
            "build_s": round(build_s, 1),
            "files_walked": sum(m.files for m in cold.values()),
            "own_bytes": own,
            "shared_bytes": shared,
            "cold_s": round(cold_s, 3),
            "cold_ms_per_env": round(cold_s * 1000 / len(paths), 3),
            "warm_s": round(warm_s, 3),
            "sizes_read_ms": median_ms(reads),
            "listing_ms": {
                "sizing_off_before_walk": median_ms(off_before),
                "sizing_off": median_ms(off),
                "sizing_on_while_measuring": median_ms(during),
                "sizing_on_measured": median_ms(on),
            },
            "listings_while_measuring": len(during),
            "layers": sum(env.kind == "layered" for env in service.ksm.current()[0].environments),
            "shadowed_listing_ms": {"cache_dropped": median_ms(shadows_dropped), "cache_kept": median_ms(shadows_kept)},
            "shadowed_listing_dir_reads": {"cache_dropped": reads_dropped, "cache_kept": reads_kept},
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
    finally:
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def timed(call: Any, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def counted_reads(call: Any) -> int:
    """The directories ``call`` lists (``os.listdir`` and ``os.scandir`` calls)."""
    with counting_fs_calls() as counts:
        call()
    return counts["listdir"] + counts["scandir"]


def write(results: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "usage.json").write_text(json.dumps(results, indent=1) + "\n")
    listing = results["listing_ms"]
    text = "\n".join(
        [
            "# Sizing environments (size_bytes)",
            "",
            f"{results['machine']['platform']}, Python {results['machine']['python']}, {results['machine']['cpus']} "
            f"CPUs; {results['n']} envs, {results['files_per_env']} package files each (half hard-linked from one "
            f"cache), {results['files_walked']} files walked; `python benchmarks/usage.py`.",
            "",
            "| what | time |",
            "| --- | --- |",
            f"| cold: measure every env (background thread) | {results['cold_s']} s "
            f"({results['cold_ms_per_env']} ms per env) |",
            f"| warm: revalidate every measure by directory mtimes | {results['warm_s']} s |",
            f"| read the known sizes of all envs (what a listing pays) | {results['sizes_read_ms']} ms |",
            f"| listing (`listing_now`), sizing and health off, just before the walk | "
            f"{listing['sizing_off_before_walk']} ms |",
            f"| listing, sizing and health on, while the cold walk and checks run | "
            f"{listing['sizing_on_while_measuring']} ms (median of {results['listings_while_measuring']}) |",
            f"| listing, sizing and health off / on (all measured and checked), alternated | "
            f"{listing['sizing_off']} ms / {listing['sizing_on_measured']} ms |",
            f"| listing, sizing and health off, `shadowed` cache dropped / kept ({results['layers']} layers), "
            f"alternated | {results['shadowed_listing_ms']['cache_dropped']} ms / "
            f"{results['shadowed_listing_ms']['cache_kept']} ms |",
            f"| directories listed by one listing, `shadowed` cache dropped / kept | "
            f"{results['shadowed_listing_dir_reads']['cache_dropped']} / "
            f"{results['shadowed_listing_dir_reads']['cache_kept']} |",
            "",
            f"Load average during the run: {results['load_average']} (other work on the machine).",
            "",
        ]
    )
    (out / "usage.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="envs in the tree (default 500)")
    parser.add_argument("--files", type=int, default=200, help="package files per env (default 200)")
    parser.add_argument("--dirs", type=int, default=20, help="directories they are in (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the tree (printed to stderr)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    print(write(run(args.n, args.files, args.dirs, args.keep), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
