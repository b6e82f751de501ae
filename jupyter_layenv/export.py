"""An environment as ``environment.yml`` (base's Conda packages + a ``pip:`` section) or ``requirements.txt``.

The ``requirements.txt`` of a layer lists the layer only, exact versions: created again on the same base, it
gives the same layer. Blocking file reads: run in a thread from the event loop.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import yaml
from packaging.utils import canonicalize_name

from .inventory import TOOLING, Dist, conda_records, distributions
from .layers import revisions
from .model import CONDA_BASE, CONDA_ENV, LAYERED, Environment, kind_noun

FORMATS = ("environment.yml", "requirements.txt", "explicit", "lock")
_SUBDIR = re.compile(r"^(noarch|linux|osx|win|emscripten|wasi|zos|freebsd)(-[a-z0-9_]+)?$")


def export(env: Environment, base: Environment | None, fmt: str) -> str:
    if fmt == "requirements.txt":
        return requirements_txt(env)
    if fmt == "environment.yml":
        return environment_yml(env, base)
    if fmt == "lock":
        return lock_txt(env)
    if fmt == "explicit":
        return explicit(env)
    raise ValueError(fmt)


def lock_txt(env: Environment) -> str:
    """The exact layer, pinned, with the artifact hashes its revisions recorded where known (pip's one-line
    ``--hash`` form): ``jupyter layenv create NAME --base BASE -r`` or ``pip install --no-deps -r`` rebuild it."""
    latest = revisions.latest(env.path)
    known: dict[str, dict[str, Any]] = {canonicalize_name(str(e["name"])): e for e in latest.lock} if latest else {}
    lines = [f"# {env.name}: the exact layer, pinned (jupyter_layenv lock)"]
    if env.base:
        lines.append(f"# base: {env.base}")
    for entry in revisions.current_lock(env.path, env.python_version, known):
        hashes = entry.get("hashes") or []
        spec = f"{entry['name']} @ {entry['url']}" if entry.get("url") else f"{entry['name']}=={entry['version']}"
        lines.append(" ".join([spec, *(f"--hash={h}" for h in hashes)]))
    return "\n".join(lines) + "\n"


def explicit(env: Environment) -> str:
    """``@EXPLICIT`` (``conda list --explicit --md5``): one package URL with its md5 per line, from the
    ``conda-meta`` records, so ``conda create --file`` or ``micromamba create -f`` rebuild the env exactly."""
    if env.kind not in (CONDA_BASE, CONDA_ENV):
        raise ExportError(
            f"{env.name} is {kind_noun(env.kind)}: an explicit spec lists Conda packages, so export a Conda env; "
            "for a layer use environment.yml or requirements.txt"
        )
    records = [record for record in conda_records(env.path) if record.get("url")]
    if not records:
        raise ExportError(f"{env.name} has no Conda package records with URLs in conda-meta/: nothing to list")
    subdirs = sorted({str(r.get("subdir")) for r in records if r.get("subdir") and r.get("subdir") != "noarch"})
    lines = [
        f"# {env.name}: explicit Conda spec, exported by jupyter_layenv",
        "# $ conda create --name <env> --file <this file>   (or: micromamba create -n <env> -f <this file>)",
        f"# platform: {subdirs[0] if subdirs else 'noarch'}",
        "@EXPLICIT",
    ]
    lines += [f"{r['url']}#{r['md5']}" if r.get("md5") else str(r["url"]) for r in records]
    return "\n".join(lines) + "\n"


class ExportError(ValueError):
    """The env cannot be exported in the asked format (the message says which formats it can)."""


def requirements_txt(env: Environment) -> str:
    lines = [f"# {env.name}: {'the layer' if env.kind == LAYERED else 'the environment'}'s own packages"]
    lines += [f"{dist.name}=={dist.version}" for dist in _own(env)]
    return "\n".join(lines) + "\n"


def environment_yml(env: Environment, base: Environment | None) -> str:
    if env.kind == LAYERED and base is not None:
        records = conda_records(base.path)
        pip = _pip_installed(base, records) if env.inherits_base and records else {}
        pip.update({dist.key: dist for dist in _own(env)})  # the layer's version is the one imported
    else:
        records = conda_records(env.path)
        pip = _pip_installed(env, records) if records else {dist.key: dist for dist in _own(env)}
    channels = list(dict.fromkeys(channel_name(str(r.get("channel") or "")) for r in records)) or ["conda-forge"]
    deps: list[str | dict[str, list[str]]] = [
        f"{r['name']}={r['version']}={r['build']}" if r.get("build") else f"{r['name']}={r['version']}" for r in records
    ]
    if not records:
        deps = [f"python={env.python_version}"] if env.python_version else ["python"]
    if pip and not any(r["name"] == "pip" for r in records):
        deps.append("pip")
    if pip:
        deps.append({"pip": [f"{d.name}=={d.version}" for d in sorted(pip.values(), key=lambda d: d.key)]})
    document: dict[str, object] = {"name": env.name, "channels": channels, "dependencies": deps}
    if env.kind == LAYERED and not env.inherits_base:
        document["inherit"] = False  # the pip section is the whole layer; create --file makes it closed again
    return yaml.dump(document, Dumper=_CondaStyleDumper, sort_keys=False, default_flow_style=False, indent=2)


def _own(env: Environment) -> list[Dist]:
    return [dist for dist in distributions(env.path, env.python_version) if dist.key not in TOOLING]


def _pip_installed(env: Environment, records: list[dict]) -> dict[str, Dist]:
    """The packages of a Conda env that conda did not install (``pip install`` into the env), of its Python."""
    conda_names = {canonicalize_name(str(r["name"])) for r in records}
    return {
        dist.key: dist
        for dist in distributions(env.path, env.python_version)
        if dist.installer != "conda" and dist.key not in conda_names and dist.key not in TOOLING
    }


def channel_name(url: str) -> str:
    """``https://conda.anaconda.org/conda-forge/linux-64`` -> ``conda-forge``, as ``conda env export`` names it; a
    local channel (``file:///srv/channel``) keeps its URL, since a bare ``srv/channel`` means an anaconda.org one."""
    if not url:
        return "conda-forge"
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if parts and _SUBDIR.match(parts[-1]):
        parts = parts[:-1]
    if parsed.scheme == "file":
        return "file:///" + "/".join(parts)
    if parsed.netloc in ("conda.anaconda.org", "") and parts:
        return "/".join(parts)
    if parsed.netloc == "repo.anaconda.com":
        return "defaults"
    return f"{parsed.scheme}://{parsed.netloc}/{'/'.join(parts)}"


class _CondaStyleDumper(yaml.SafeDumper):
    """A safe dumper that indents lists under their key, as ``conda env export`` writes them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)
