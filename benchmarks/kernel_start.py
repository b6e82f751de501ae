"""Kernel start time: from ``start_kernel()`` to the ``kernel_info`` reply, plain kernelspecs vs jupyter_layenv's.

Real environments (built with ``tests/envtree.py``: a copied, runnable CPython with ipykernel, laid out as
Conda lays out a prefix):

* ``B``  ``envs/base311``: a Conda-style env with ipykernel, no activate.d;
* ``L``  ``envs/base311/proj``: a real virtualenv made with B's python and ``--system-site-packages`` (the
  seed's layered env: ipykernel comes from B);
* ``C``  ``envs/actd``: a Conda-style env with ipykernel and ``etc/conda/activate.d/x.sh``, so jupyter_layenv
  starts it through its bash wrapper ``jupyter_layenv/resources/activate.sh``.

Variants, each started the same way (``KernelManager(kernel_spec_manager=…)``, blocking client, one
``kernel_info`` request, clock stopped at its reply, kernel killed), interleaved round-robin after one
discarded warm-up start each:

* (a)  plain spec ``[B/bin/python, -m, ipykernel_launcher, -f, {connection_file}]``
* (a') plain spec ``[L/bin/python, …]`` (what ``ipykernel install`` run inside the layer writes)
* (b)  jupyter_layenv's spec for L (started through its layenv-provisioner, which reads the env again)
* (c)  jupyter_layenv's spec for C (bash wrapper + activate.d)
* (d)  plain spec ``[C/bin/python, …]``

    python benchmarks/kernel_start.py            # 30 starts per variant (~2.5 min)
    python benchmarks/kernel_start.py --starts 5   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TESTS = HERE.parent / "tests"
TARGET_NO_WRAPPER_MS = 10.0
TARGET_WRAPPER_MS = 30.0
PROVISIONER_REPS = 300
ACTIVATE_BODY = "export LAYENV_BENCH_ACTIVATED=actd\n"

PROBE = """
import json, os, sys
import ipykernel
with open('/proc/self/cmdline', 'rb') as f:
    cmd = [part.decode() for part in f.read().split(b'\\0') if part]
print(json.dumps({
    'executable': sys.executable,
    'prefix': sys.prefix,
    'base_prefix': sys.base_prefix,
    'ipykernel_from': os.path.dirname(os.path.dirname(ipykernel.__file__)),
    'process_cmdline': cmd[:3],
    'PATH_head': os.environ.get('PATH', '').split(os.pathsep)[:3],
    'CONDA_PREFIX': os.environ.get('CONDA_PREFIX'),
    'VIRTUAL_ENV': os.environ.get('VIRTUAL_ENV'),
    'LAYENV_BENCH_ACTIVATED': os.environ.get('LAYENV_BENCH_ACTIVATED'),
}))
"""


def _envtree() -> Any:
    """The fixtures' builders of real Conda-style prefixes and layered envs (tests/envtree.py)."""
    sys.path.insert(0, str(TESTS))
    try:
        import envtree
    except ImportError as err:
        raise SystemExit(f"tests/envtree.py is needed to build real environments: {err}") from err
    for name in ("make_conda_prefix", "make_layered_env", "write_activate_script"):
        if not hasattr(envtree, name):
            raise SystemExit(f"tests/envtree.py has no {name}() (it changed?): update benchmarks/kernel_start.py")
    return envtree


def build_envs(root: Path) -> dict[str, Path]:
    envtree = _envtree()
    envs = root / "envs"
    base = envtree.make_conda_prefix(envs / "base311", ipykernel=True)
    layer = envtree.make_layered_env(base, base / "proj", inherit=True)
    actd = envtree.make_conda_prefix(envs / "actd", ipykernel=True)
    envtree.write_activate_script(actd, "x", ACTIVATE_BODY)
    return {"B": base, "L": layer, "C": actd, "envs": envs}


def plain_manager(root: Path, envs: dict[str, Path]) -> Any:
    from jupyter_client.kernelspec import KernelSpecManager

    kdir = root / "plain_kernels"
    for name, key in (("plain-b", "B"), ("plain-l", "L"), ("plain-c", "C")):
        (kdir / name).mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [str(envs[key] / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": name,
            "language": "python",
        }
        (kdir / name / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(kdir)], ensure_native_kernel=False)


def layenv_manager(root: Path, envs: dict[str, Path]) -> Any:
    from jupyter_layenv import LayenvKernelSpecManager

    empty = root / "no_kernels"
    empty.mkdir(exist_ok=True)
    return LayenvKernelSpecManager(
        conda_roots=[],
        envs_dirs=[str(envs["envs"])],
        environments_files=[],
        condarc_paths=[],
        venv_roots=[],
        env_paths=[],
        include_server_prefix=False,
        kernel_dirs=[str(empty)],
        ensure_native_kernel=False,
    )


def layenv_kernel_for(ksm: Any, prefix: Path) -> str:
    for name, item in ksm.get_all_specs().items():
        if (item["spec"].get("metadata") or {}).get("layenv", {}).get("path") == str(prefix):
            return name
    raise SystemExit(f"jupyter_layenv lists no kernel for {prefix}: {sorted(ksm.get_all_specs())}")


def start_to_kernel_info(ksm: Any, kernel_name: str, probe: bool = False) -> tuple[float, dict | None]:
    """Seconds from ``start_kernel()`` to the ``kernel_info`` reply; optionally what the kernel says about itself.

    The kernel's stderr (ipykernel's "running over TCP without encryption" warning) is discarded except when
    probing; a kernel that dies is reported anyway.
    """
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_spec_manager=ksm, kernel_name=kernel_name)
    start = time.perf_counter()
    km.start_kernel(**({} if probe else {"stderr": subprocess.DEVNULL}))
    kc = km.client()
    kc.start_channels()
    info: dict | None = None
    try:
        msg_id = kc.kernel_info()
        sent = time.perf_counter()
        while True:
            try:
                msg = kc.get_shell_msg(timeout=0.05)
            except queue.Empty:
                now = time.perf_counter()
                if not km.is_alive():
                    raise RuntimeError(f"kernel {kernel_name} died before replying to kernel_info") from None
                if now - start > 60:
                    raise TimeoutError(f"kernel {kernel_name}: no kernel_info reply in 60 s") from None
                if now - sent > 1.0:  # a request sent before the kernel listened is answered; resend anyway
                    msg_id, sent = kc.kernel_info(), now
                continue
            if msg["msg_type"] == "kernel_info_reply" and msg["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.perf_counter() - start
        if probe:
            lines: list[str] = []

            def hook(out: dict) -> None:
                if out["msg_type"] == "stream":
                    lines.append(out["content"]["text"])

            kc.wait_for_ready(timeout=60)  # also waits until IOPub is connected (else the output may be lost)
            kc.execute_interactive(PROBE, output_hook=hook, timeout=30)
            info = json.loads("".join(lines))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return elapsed, info


def wrapper_alone_ms(reps: int, envs: dict[str, Path]) -> float:
    """The bash wrapper by itself: ``bash activate.sh /bin/true`` with C's activate.d script, minus ``/bin/true``."""
    from jupyter_layenv.activation import SCRIPTS_VAR, WRAPPER, wrapper_shell

    script = envs["C"] / "etc" / "conda" / "activate.d" / "x.sh"
    env = {**os.environ, SCRIPTS_VAR: str(script)}

    def run(cmd: list[str]) -> float:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True)
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    return run([wrapper_shell(), WRAPPER, "/bin/true"]) - run(["/bin/true"])


def paired(values: list[float], reference: list[float], seed: int = 1) -> dict[str, float]:
    """Overhead of ``values`` over ``reference`` (same rounds): median of the per-round differences and a
    95 % bootstrap interval of that median, more robust to drift than a difference of medians."""
    diffs = [v - r for v, r in zip(values, reference, strict=True)]
    rng = random.Random(seed)
    boot = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(2000))
    return {
        "median_of_differences_ms": statistics.median(diffs),
        "ci95_low_ms": boot[int(0.025 * len(boot))],
        "ci95_high_ms": boot[int(0.975 * len(boot)) - 1],
        "difference_of_medians_ms": statistics.median(values) - statistics.median(reference),
    }


COMPARISONS = {  # overhead name -> (variant, plain reference, target ms)
    "b_vs_a_l": ("b", "a_l", TARGET_NO_WRAPPER_MS),
    "b_vs_a": ("b", "a", TARGET_NO_WRAPPER_MS),
    "c_vs_d": ("c", "d", TARGET_WRAPPER_MS),
}


def launch_chain_times(specs: dict[str, dict], rounds: int) -> dict[str, list[float]]:
    """Each spec's launch chain (wrapper, activate.d scripts, interpreter start with its site/venv setup) without
    ipykernel: the spec's argv with ``-m ipykernel_launcher -f {connection_file}`` replaced by ``-c pass``, its
    env applied as jupyter_client applies it. What follows (importing and starting ipykernel) is the same
    interpreter doing the same work in both cases; this part is what a spec can change, and at ~10-20 ms
    with little noise it resolves a millisecond, which a whole ~300 ms kernel start cannot here."""
    from string import Template

    commands = {}
    for key, spec in specs.items():
        argv = list(spec["argv"])
        cut = argv.index("-m")
        env = {**os.environ}
        env.update({k: Template(v).safe_substitute(os.environ) for k, v in (spec.get("env") or {}).items()})
        commands[key] = ([*argv[:cut], "-c", "pass"], env)
    times: dict[str, list[float]] = {key: [] for key in specs}
    order = list(specs)
    for round_ in range(rounds + 1):
        for key in order[round_ % len(order) :] + order[: round_ % len(order)]:
            argv, env = commands[key]
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True)
            if round_:  # round 0 is the warm-up
                times[key].append((time.perf_counter() - start) * 1e3)
    return times


def provisioner_reread_ms(specs: dict[str, dict], reps: int = 300) -> dict[str, dict[str, float]]:
    """What ``layenv-provisioner`` adds to a start over jupyter_client's LocalProvisioner: reading the env again
    and computing its launch (``relaunch.launch_now``), in a worker thread as ``pre_launch`` does it. Timed alone
    (median and 95th percentile of ``reps`` calls), since a whole ~300 ms kernel start cannot resolve a millisecond.
    """
    import asyncio

    from jupyter_layenv.relaunch import launch_now

    async def measure(spec: dict) -> list[float]:
        config = spec["metadata"]["kernel_provisioner"]["config"]
        times = []
        for _ in range(reps + 1):
            start = time.perf_counter()
            await asyncio.to_thread(launch_now, config["env"], list(spec["argv"]), dict(spec.get("env") or {}))
            times.append((time.perf_counter() - start) * 1e3)
        return sorted(times[1:])

    result = {}
    for key, spec in specs.items():
        if (spec.get("metadata") or {}).get("kernel_provisioner"):
            times = asyncio.run(measure(spec))
            result[key] = {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times)) - 1]}
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Kernel start: `start_kernel()` → `kernel_info` reply",
        "",
        f"{result['meta']['date']} · Python {result['meta']['python']} · {result['meta']['cpus']} CPUs · load average "
        f"{result['meta']['loadavg_before'][0]:.2f} before, {result['meta']['loadavg_after'][0]:.2f} after · "
        f"{result['meta']['starts']} starts per variant, interleaved round-robin (rotated order), after one warm-up "
        "start each",
        "",
        "| variant | kernelspec | median ms | min ms | max ms |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for var in result["variants"].values():
        times = var["ms"]
        lines.append(
            f"| {var['label']} | `{var['kernel']}` | {var['median_ms']:.1f} | {min(times):.1f} | {max(times):.1f} |"
        )
    lines += [
        "",
        "Overhead of jupyter_layenv's spec over the plain spec (per-round paired differences: their median and a 95 % "
        "bootstrap interval; and the plain difference of the medians):",
        "",
        "| comparison | median of paired differences ms | 95 % interval ms | difference of medians ms | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for key, (variant, reference, target) in COMPARISONS.items():
        cmp_ = result["overheads"][key]
        verdict = "met" if cmp_["median_of_differences_ms"] <= target else "MISSED"
        if cmp_["ci95_low_ms"] <= target < cmp_["ci95_high_ms"]:
            verdict += " (the interval straddles the target: noise)"
        name = f"{variant.replace('_l', chr(39))} − {reference.replace('_l', chr(39))}"
        lines.append(
            f"| ({name}) | {cmp_['median_of_differences_ms']:+.1f} | "
            f"[{cmp_['ci95_low_ms']:+.1f}, {cmp_['ci95_high_ms']:+.1f}] | {cmp_['difference_of_medians_ms']:+.1f} | "
            f"≤ {target:g} ms: {verdict} |"
        )
    chain = result["launch_chain"]
    lines += [
        "",
        "The launch chain alone (the spec's argv with `-m ipykernel_launcher -f …` replaced by `-c pass`, its env "
        f"applied; wrapper and activate.d included), {len(chain['ms']['a'])} interleaved rounds:",
        "",
        "| comparison | median of paired differences ms | 95 % interval ms | medians ms (variant / plain) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, (variant, reference, _target) in COMPARISONS.items():
        cmp_ = chain["overheads"][key]
        name = f"{variant.replace('_l', chr(39))} − {reference.replace('_l', chr(39))}"
        lines.append(
            f"| ({name}) | {cmp_['median_of_differences_ms']:+.1f} | "
            f"[{cmp_['ci95_low_ms']:+.1f}, {cmp_['ci95_high_ms']:+.1f}] | "
            f"{chain['median_ms'][variant]:.1f} / {chain['median_ms'][reference]:.1f} |"
        )
    lines += [
        "",
        "(b − a') isolates what jupyter_layenv changes (same venv python, only the spec's env differs); (b − a) also "
        "includes the venv's own start cost over its base interpreter. (c − d) is the bash wrapper with activate.d; "
        f"the wrapper alone (`bash activate.sh /bin/true` minus `/bin/true`, median of 30) costs "
        f"{result['wrapper_alone_ms']:.1f} ms.",
        "",
        "What `layenv-provisioner` adds at each start, before the process is launched: the env read again and its "
        "launch computed (`relaunch.launch_now` in a worker thread, as its `pre_launch` runs it; "
        f"{PROVISIONER_REPS} calls each, target ≤ {TARGET_NO_WRAPPER_MS:g} ms):",
        "",
        "| variant | median ms | 95th percentile ms |",
        "| --- | ---: | ---: |",
        *(
            f"| {result['variants'][key]['label']} | {cost['median_ms']:.2f} | {cost['p95_ms']:.2f} |"
            for key, cost in result["provisioner_reread_ms"].items()
        ),
        "",
        "* For comparison, nb_conda_kernels' runner (`python -m nb_conda_kernels.runner`, an extra Python start "
        "plus `conda activate` in a shell) adds 110–180 ms.",
        "",
        "What each kernel reported about itself (one extra, untimed start per variant):",
        "",
        "| variant | sys.prefix | ipykernel from | process | PATH head | CONDA_PREFIX | VIRTUAL_ENV | activate.d ran |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    root = result["meta"]["root"]

    def short(value: Any) -> str:
        text = json.dumps(value) if not isinstance(value, str) else value
        return text.replace(root, "…").replace("|", "\\|")

    for var in result["variants"].values():
        probe = var["probe"]
        lines.append(
            f"| {var['label']} | {short(probe['prefix'])} | {short(probe['ipykernel_from'])} | "
            f"{short(' '.join(probe['process_cmdline']))} | {short(probe['PATH_head'][:2])} | "
            f"{short(probe['CONDA_PREFIX'] or '–')} | {short(probe['VIRTUAL_ENV'] or '–')} | "
            f"{'yes' if probe['LAYENV_BENCH_ACTIVATED'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=30, help="timed starts per variant (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the built environments")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)

    # Kernels inherit our environment: let them cache their bytecode (as on a user's machine) so that every
    # start after the warm-up does not recompile ipykernel's modules. The envs are temporary copies.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    load_before = [round(x, 2) for x in os.getloadavg()]
    root = Path(tempfile.mkdtemp(prefix="layenv-kstart-"))
    try:
        started = time.perf_counter()
        envs = build_envs(root)
        build_s = time.perf_counter() - started
        plain = plain_manager(root, envs)
        layenv = layenv_manager(root, envs)
        variants = {
            "a": ("(a) plain spec, base interpreter B", plain, "plain-b"),
            "a_l": ("(a') plain spec, layer L's python", plain, "plain-l"),
            "b": ("(b) jupyter_layenv, layered env L", layenv, layenv_kernel_for(layenv, envs["L"])),
            "c": ("(c) jupyter_layenv, Conda env C + activate.d", layenv, layenv_kernel_for(layenv, envs["C"])),
            "d": ("(d) plain spec, Conda env C's interpreter", plain, "plain-c"),
        }
        specs = {key: ksm.get_kernel_spec(name).to_dict() for key, (_label, ksm, name) in variants.items()}
        times: dict[str, list[float]] = {key: [] for key in variants}
        for _label, ksm, name in variants.values():  # warm-up: pyc files, page cache
            start_to_kernel_info(ksm, name)
        order = list(variants)
        for round_ in range(args.starts):
            for key in order[round_ % len(order) :] + order[: round_ % len(order)]:  # rotate: no position bias
                _label, ksm, name = variants[key]
                elapsed, _info = start_to_kernel_info(ksm, name)
                times[key].append(elapsed * 1e3)
            print(".", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        chain = launch_chain_times(specs, max(60, 2 * args.starts))
        probes = {key: start_to_kernel_info(ksm, name, probe=True)[1] for key, (_l, ksm, name) in variants.items()}
        wrapper_ms = wrapper_alone_ms(30, envs)
        reread = provisioner_reread_ms(specs, PROVISIONER_REPS)
        result: dict[str, Any] = {
            "meta": {
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "starts": args.starts,
                "build_envs_s": round(build_s, 2),
                "root": str(root),
                "loadavg_before": load_before,
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            },
            "variants": {},
            "wrapper_alone_ms": wrapper_ms,
            "provisioner_reread_ms": reread,
            "overheads": {},
        }
        for key, (label, _ksm, name) in variants.items():
            result["variants"][key] = {
                "label": label,
                "kernel": name,
                "ms": [round(t, 2) for t in times[key]],
                "median_ms": statistics.median(times[key]),
                "argv": specs[key]["argv"],
                "env": specs[key].get("env", {}),
                "probe": probes[key],
            }
        result["overheads"] = {
            key: paired(times[variant], times[reference]) for key, (variant, reference, _t) in COMPARISONS.items()
        }
        result["launch_chain"] = {
            "ms": {key: [round(t, 2) for t in values] for key, values in chain.items()},
            "median_ms": {key: statistics.median(values) for key, values in chain.items()},
            "overheads": {
                key: paired(chain[variant], chain[reference]) for key, (variant, reference, _t) in COMPARISONS.items()
            },
        }
        text = markdown(result)
        print(text)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "kernel_start.md").write_text(text, encoding="utf-8")
        (args.out / "kernel_start.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(f"wrote {args.out}/kernel_start.md, .json", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
