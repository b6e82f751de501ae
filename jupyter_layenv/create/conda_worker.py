"""The worker process that solves and installs one Conda env with py-rattler (see :mod:`.conda`).

``python -m jupyter_layenv.create.conda_worker PLAN_FILE PREFIX``: the plan file was written by the server; its
prefix must be PREFIX. Human lines and progress lines (``@layenv-progress {json}``) go to stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

from rattler import InstallerReporter

from .conda import PROGRESS, CondaPlan, read_plan
from .needed import conda_needed


class Reporter(InstallerReporter):
    """rattler's installer callbacks, turned into progress lines (called from rattler's threads); the protocol's
    other callbacks keep its no-op defaults."""

    def __init__(self, packages: int) -> None:
        self.packages = packages
        self.cached = 0
        self.linked = 0
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    def on_transaction_start(self, total_operations: int) -> None:
        self.packages = total_operations or self.packages
        say("download", 0, self.packages)

    def on_populate_cache_start(self, operation: int, package_name: str) -> int:
        with self._lock:
            self._names[operation] = package_name
        return operation

    def on_populate_cache_complete(self, cache_entry: int) -> None:
        with self._lock:
            self.cached += 1
            done = self.cached
        say("download", done, self.packages, self._names.get(cache_entry, ""), self._fraction())

    def on_link_start(self, operation: int, package_name: str) -> int:
        with self._lock:
            self._names[operation] = package_name
        return operation

    def on_link_complete(self, index: int) -> None:
        with self._lock:
            self.linked += 1
            done = self.linked
        say("link", done, self.packages, self._names.get(index, ""), self._fraction())

    def _fraction(self) -> float:
        """Of the install (both halves: rattler links a package as soon as it is in the cache, while others load)."""
        return (self.cached + self.linked) / (2 * self.packages) if self.packages else 0.0


def say(
    step: str, done: int, total: int, package: str = "", fraction: float | None = None, needed: str | None = None
) -> None:
    event = {"step": step, "done": done, "total": total, "package": package, "fraction": fraction}
    if needed:  # what the install will need, for a full disk's message
        event["needed"] = needed
    sys.stdout.write(PROGRESS + json.dumps(event) + "\n")
    sys.stdout.flush()


async def build(plan: CondaPlan) -> None:
    import rattler

    print(f"channels: {', '.join(plan.channels)}; platform {plan.platform}", flush=True)
    print(f"specs: {' '.join(plan.specs)}", flush=True)
    say("solve", 0, 1)
    started = time.monotonic()
    sources = [rattler.Channel(channel) for channel in plan.channels]
    records = await rattler.solve(
        sources=sources,
        specs=list(plan.specs),
        platforms=[rattler.Subdir(plan.platform), rattler.Subdir("noarch")],
        virtual_packages=rattler.VirtualPackage.detect(),
    )
    print(f"solved in {time.monotonic() - started:.2f} s: {len(records)} packages", flush=True)
    for record in sorted(records, key=lambda r: r.name.normalized):
        print(f"  {record.name.normalized} {record.version} {record.build}  {record.channel}", flush=True)
    say("solve", 1, 1, needed=conda_needed(len(records), sum(record.size or 0 for record in records)))
    await rattler.install(
        records,
        target_prefix=plan.path,
        cache_dir=Path(plan.pkgs_dir) if plan.pkgs_dir else None,
        execute_link_scripts=False,
        show_progress=False,
        requested_specs=[rattler.MatchSpec(spec)._match_spec for spec in plan.specs],
        # the protocol's callbacks we leave alone have docstring-only no-op bodies, which mypy takes for abstract
        reporter=Reporter(len(records)),  # type: ignore[abstract]
    )
    write_history(plan, records)
    print(f"installed {len(records)} packages into {plan.path}", flush=True)


def write_history(plan: CondaPlan, records: list) -> None:
    """``conda-meta/history`` as conda writes it, so ``conda list --revisions`` and other tools read it."""
    from rattler import __version__ as rattler_version

    when = time.strftime("%Y-%m-%d %H:%M:%S")
    links = "".join(
        f"+{str(r.channel).rstrip('/')}/{r.subdir}::{r.name.normalized}-{r.version}-{r.build}\n"
        for r in sorted(records, key=lambda r: r.name.normalized)
    )
    text = (
        f"==> {when} <==\n"
        f"# cmd: jupyter layenv create {plan.name} --conda {' '.join(plan.requested)}\n"
        f"# conda version: none (py-rattler {rattler_version})\n"
        f"{links}"
        f"# update specs: {list(plan.specs)!r}\n"
    )
    path = os.path.join(plan.path, "conda-meta", "history")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m jupyter_layenv.create.conda_worker PLAN_FILE PREFIX", file=sys.stderr)
        return 2
    plan = read_plan(argv[0])
    if os.path.realpath(plan.path) != os.path.realpath(argv[1]):
        print(f"the plan builds {plan.path}, not {argv[1]}", file=sys.stderr)
        return 2
    try:
        asyncio.run(build(plan))
    except Exception as err:  # rattler's errors: solve conflicts, unreachable channels, bad packages
        print(f"error: {type(err).__name__}: {err}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # py-rattler's native worker threads can still be alive when the interpreter finalizes, and tearing them down
    # then crashed the worker (SIGSEGV after "installed N packages"): everything is written, so leave at once
    os._exit(status)
