"""clean on Conda envs py-rattler made: never a base with a layer on it; an old base alone is removed and
rattler's package cache pruned of the packages no env links, after which rattler installs them again."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from condachannel import cached_channel, channel_url
from layenv_api import create, fetch_json, follow

LONG_AGO = time.time() - 100 * 86400


@pytest.fixture
def jp_home_dir(empty_home: Path) -> Path:
    return empty_home


@pytest.fixture
def jp_server_config(wheelhouse: Path, tmp_path: Path) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {
            "conda_channels": [channel_url(cached_channel())],
            "conda_pkgs_dir": str(tmp_path / "pkgs"),
            "find_links": [str(wheelhouse)],
            "offline": True,
        },
    }


async def made(jp_fetch, body: dict) -> dict:
    code, job = await create(jp_fetch, body)
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", job
    return job["environment"]


def age(env: dict) -> None:
    """Made 100 days ago and never used since."""
    os.utime(Path(env["path"]) / "layenv.json", (LONG_AGO, LONG_AGO))


async def clean(jp_fetch, dry_run: bool) -> dict:
    code, report = await fetch_json(jp_fetch, "clean", method="POST",
                                    body=json.dumps({"unused_days": 30, "dry_run": dry_run}))  # fmt: skip
    assert code == 200, report
    return report


async def test_clean_keeps_a_base_with_layers_removes_an_old_one_and_prunes_rattlers_cache(
    jp_fetch, jp_home_dir: Path, tmp_path: Path
):
    pkgs = tmp_path / "pkgs"
    base = await made(jp_fetch, {"kind": "conda", "name": "based", "packages": ["python=3.11"]})
    layer = await made(jp_fetch, {"name": "proj", "base": base["id"]})
    lone = await made(jp_fetch, {"kind": "conda", "name": "lone", "packages": ["python=3.11",
                                                                             "layenv-conda-marker=1.0"]})  # fmt: skip
    for env in (base, lone):
        age(env)
    os.utime(Path(layer["path"]) / "layenv.json")  # the layer is new

    dry = await clean(jp_fetch, dry_run=True)
    assert [env["path"] for env in dry["removed"]] == [lone["path"]]
    kept = {env["path"]: env["reason"] for env in dry["kept"]}
    assert "based is the base of proj" in kept[base["path"]]
    [conda_cache] = [cache for cache in dry["caches"] if cache["cache"] == str(pkgs)]
    # only the marker package is linked by lone alone: python (and ipykernel's closure) stay linked by the base
    assert conda_cache["entries"] == 1 and conda_cache["bytes"] > 0
    marker = [p for p in pkgs.iterdir() if p.name.startswith("layenv-conda-marker-1.0-") and p.is_dir()]
    assert len(marker) == 1 and Path(lone["path"]).exists()

    done = await clean(jp_fetch, dry_run=False)
    assert done["removed"] == dry["removed"] and done["bytes_freed"] == dry["bytes_freed"]
    assert not Path(lone["path"]).exists() and Path(base["path"]).exists() and Path(layer["path"]).exists()
    assert not marker[0].exists() and not Path(f"{marker[0]}.lock").exists()
    assert any(p.name.startswith("python-3.11") for p in pkgs.iterdir())  # still linked by the base

    again = await made(jp_fetch, {"kind": "conda", "name": "again", "packages": ["layenv-conda-marker=1.0",
                                                                               "python=3.11"]})  # fmt: skip
    assert (Path(again["path"]) / "conda-meta").is_dir()  # rattler extracted the pruned package again
