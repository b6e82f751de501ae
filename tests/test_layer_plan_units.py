"""The pure parts of faithful planning: the resolvers' outputs read back, overrides, removal checks, a plan's
classification, with a resolver that answers from a table (the real uv and pip are in test_layer_faithful.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from envtree import add_pure_python_package

from jupyter_layenv.inventory import Dist
from jupyter_layenv.layers.installed import Installed
from jupyter_layenv.layers.plan import (
    LayerState,
    Pin,
    PlanError,
    ResolveFailed,
    Resolver,
    check_removal,
    overrides,
    plan_change,
)
from jupyter_layenv.layers.resolve import parse_compiled, parse_report
from jupyter_layenv.policy import LayenvPolicy, PolicyError


def test_uv_compile_output_with_hashes_and_one_line_notes():
    text = (
        "attrs==26.1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via jsonschema, referencing\n"
        "iniconfig==2.0.0          # via -r request.in\n"
    )
    assert parse_compiled(text) == [
        Pin("attrs", "26.1.0", ("sha256:aa", "sha256:bb"), None, ("jsonschema", "referencing")),
        Pin("iniconfig", "2.0.0", (), None, ("-r request.in",)),
    ]


def test_pip_report_items():
    report = {"install": [{
        "metadata": {"name": "nbthing", "version": "1.0", "requires_dist": ["iniconfig", "docs-tool; extra == 'docs'"]},
        "download_info": {"url": "file:///w/nbthing-1.0.whl", "archive_info": {"hashes": {"sha256": "cc"}}},
        "requested": True,
    }]}  # fmt: skip
    assert parse_report(report) == [Pin("nbthing", "1.0", ("sha256:cc",), None, ("-r request",), ("iniconfig",))]


def _installed(name: str, version: str, metadata: Path | None = None) -> Installed:
    return Installed(Dist(name, version), str(metadata) if metadata else None)


def test_overrides_are_explicit_other_versions_only():
    base = {"numpy": Dist("numpy", "1.26.4"), "traitlets": Dist("traitlets", "5.14.3")}
    found = overrides(["numpy>=2", "traitlets", "flask"], base)
    assert [(str(req), dist.version) for req, dist in found] == [("numpy>=2", "1.26.4")]
    policy = LayenvPolicy(protected_packages=["num*"])
    with pytest.raises(PolicyError) as err:
        policy.check_overrides(["numpy>=2"], base)
    assert err.value.status == 403 and "LayenvPolicy.protected_packages" in err.value.message
    policy.check_overrides(["numpy>=1", "traitlets==5.0"], base)  # the base's version, or not protected: fine


def test_removal_refusals(tmp_path: Path):
    add_pure_python_package(tmp_path, "needed", "1.0")
    needs = tmp_path / "user-1.0.dist-info" / "METADATA"
    needs.parent.mkdir()
    needs.write_text("Metadata-Version: 2.1\nName: user\nVersion: 1.0\nRequires-Dist: needed>=1\n")
    state = LayerState("python", {"numpy": _installed("numpy", "1.26")},
                       {"needed": _installed("needed", "1.0"), "user": _installed("user", "1.0", needs)})  # fmt: skip
    with pytest.raises(PlanError, match="needed is needed by user"):
        check_removal(state, ["needed"], force=False)
    assert [d.name for d in check_removal(state, ["needed"], force=True)] == ["needed"]
    with pytest.raises(PlanError, match="the base's"):
        check_removal(state, ["numpy"], force=False)
    with pytest.raises(PlanError) as err:
        check_removal(state, ["absent"], force=False)
    assert err.value.status == 404


class TableResolver(Resolver):
    """Answers like uv compile from a table: the closure of a request, failing when a pin is violated."""

    def __init__(self, closure: list[Pin]) -> None:
        self.closure = closure
        self.calls: list[list[str]] = []

    async def resolve(self, python, requirements, constraints, installed):
        self.calls.append(constraints)
        pinned = dict(c.split("==") for c in constraints)
        for pin in self.closure:
            if pin.name in pinned and pinned[pin.name] != pin.version:
                raise ResolveFailed(f"{pin.name}=={pin.version} conflicts with the constraint")
        return self.closure


def test_a_plan_keeps_what_the_base_has_and_names_a_conflict():
    state = LayerState("python", {"traitlets": _installed("traitlets", "5.14.3"), "numpy": _installed("numpy", "1.26")},
                       {})  # fmt: skip
    ok = TableResolver([Pin("nbthing", "1.0"), Pin("traitlets", "5.14.3", via=("nbthing",))])
    plan = asyncio.run(plan_change(state, ok, ["nbthing"]))
    assert [p.name for p in plan.install] == ["nbthing"] and [d.name for d in plan.kept_from_base] == ["traitlets"]
    assert ok.calls == [["traitlets==5.14.3", "numpy==1.26"]]  # the base, pinned

    conflict = TableResolver([Pin("torchish", "1.0"), Pin("numpy", "2.1", via=("torchish",))])
    with pytest.raises(PlanError) as err:
        asyncio.run(plan_change(state, conflict, ["torchish"]))
    message = err.value.message
    assert "torchish needs numpy 2.1, but the base has numpy 1.26" in message and "'numpy==2.1'" in message

    override = TableResolver([Pin("numpy", "2.1")])
    plan = asyncio.run(plan_change(state, override, ["numpy==2.1"]))
    assert [s.json() for s in plan.shadow] == [
        {"name": "numpy", "version": "2.1", "base_version": "1.26", "reason": "requested"}
    ]
    assert override.calls == [["traitlets==5.14.3"]]  # the named package released, the rest still pinned
