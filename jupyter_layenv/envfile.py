"""A layer rebuilt from an ``environment.yml``: the Conda part picks the base, the ``pip:`` part is the layer.

The Conda match specs are checked against the package records every known Conda env keeps in ``conda-meta``
(py-rattler's MatchSpec gives conda's own version and build semantics); the closest base that satisfies them
all (fewest packages the file does not name) is chosen, and nothing is solved or downloaded: the file's channels
are recorded in the layer's provenance, never used to reach a network. Blocking file reads: run in a thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from rattler import BuildString, MatchSpec, PackageRecord

from . import inventory
from .export import channel_name
from .model import Discovered, Environment
from .policy import BASE_KINDS, CreateRequest, LayenvPolicy, PolicyError, bad_request, validate_name

FILE_FIELDS = {"name", "environment_yml", "display_name", "root", "inherit", "build_base"}
REPLACED_FIELDS = ("base", "packages", "requirements")
# ``prefix`` (conda env export writes it) is ignored; ``inherit: false`` (our export of a closed layer) is kept
KEYS = ("name", "channels", "dependencies", "prefix", "inherit")
MAX_CLOSEST = 3
MAX_UNMET_NAMED = 5  # per base, in the message; the 422's bases list them all
MAX_CHANNELS = 50
_CONDA_SPEC = re.compile(
    r"(?:(?P<channel>[A-Za-z0-9][A-Za-z0-9_.\-/]*)::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)(?P<rest>[\s=<>!~*,|.\w+]*)"
)


def _bad(message: str, reason: str = "bad environment.yml") -> PolicyError:
    return bad_request(f"environment.yml: {message}", reason)


@dataclass(frozen=True)
class CondaSpec:
    """One Conda dependency: the text as written, the package name and the ``channel::`` it names, if any."""

    text: str
    name: str
    channel: str | None
    match: MatchSpec

    @property
    def bare(self) -> bool:
        return self.text.strip() == self.name and self.channel is None


@dataclass(frozen=True)
class EnvironmentFile:
    name: str | None
    channels: tuple[str, ...]
    conda: tuple[CondaSpec, ...]
    pip: tuple[str, ...]  # pip specs and allowed options, each validated by the policy as a create's packages
    inherit: bool = True  # False: the layer does not see its base's packages (the pip section is all of it)


@dataclass(frozen=True)
class Unmet:
    spec: str
    found: str | None  # what the base has instead ("1.26.4=py311h_0 from conda-forge"), None: not there


@dataclass(frozen=True)
class BaseMatch:
    base: Environment
    unmet: tuple[Unmet, ...]
    extra: int  # the base's packages the file does not name: fewer is closer

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.base.id,
            "path": self.base.path,
            "extra_packages": self.extra,
            "unmet": [{"spec": u.spec, "found": u.found} for u in self.unmet],
        }


class NoMatchingBase(PolicyError):
    """422: no known Conda env satisfies the file; ``closest`` says what each of the nearest ones lacks."""

    def __init__(self, message: str, closest: list[BaseMatch]) -> None:
        super().__init__(422, message, "no matching base", details={"bases": [m.to_json() for m in closest]})


def parse(text: str, policy: LayenvPolicy) -> EnvironmentFile:
    """The file, every field checked: Conda match specs, and a ``pip:`` list under the create's package rules."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _bad(f"not valid YAML ({_one_line(err)})") from None
    if not isinstance(document, dict):
        raise _bad("expected a mapping with 'name', 'channels' and 'dependencies'")
    unknown = sorted(str(key) for key in document if key not in KEYS)
    if unknown:
        raise _bad(f"unsupported key(s) {', '.join(unknown)}: jupyter_layenv reads {', '.join(KEYS[:3])}")
    name = document.get("name")
    if name is not None and not isinstance(name, str):
        raise _bad("'name' must be a string")
    inherit = document.get("inherit", True)
    if not isinstance(inherit, bool):
        raise _bad("'inherit' must be true or false (false: the layer does not inherit its base's packages)")
    channels = document.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) and 0 < len(c) <= 500 for c in channels):
        raise _bad("'channels' must be a list of channel names or URLs")
    if len(channels) > MAX_CHANNELS:
        raise _bad(f"{len(channels)} channels: at most {MAX_CHANNELS}")
    dependencies = document.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise _bad("'dependencies' must be a list of Conda match specs, with an optional '- pip:' list")
    _check_count(len(dependencies), policy)  # before parsing: YAML aliases make long lists from a short text
    conda: list[CondaSpec] = []
    pip: list[str] = []
    for number, entry in enumerate(dependencies, start=1):
        if isinstance(entry, dict) and list(entry) == ["pip"]:
            pip.extend(_pip_entries(entry["pip"], policy, len(pip)))
        elif isinstance(entry, str):
            conda.append(parse_conda_spec(entry, f"dependency {number}"))
        else:
            raise _bad(f"dependency {number} must be a Conda match spec (a string) or a 'pip:' list")
    _check_count(len(conda) + len(pip), policy)
    return EnvironmentFile(name, tuple(dict.fromkeys(channels)), tuple(conda), tuple(dict.fromkeys(pip)), inherit)


def _pip_entries(entries: Any, policy: LayenvPolicy, before: int) -> list[str]:
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise _bad("'pip:' must be a list of package specs like 'flask==3.0.3'")
    _check_count(before + len(entries), policy)
    found = []
    for number, entry in enumerate(entries, start=before + 1):
        where = f"environment.yml pip entry {number}"
        found.append(
            policy.parse_option(entry, where) if entry.strip().startswith("-") else policy.parse_spec(entry, where)
        )
    policy.check_packages(spec for spec in found if not spec.startswith("-"))
    return found


def _check_count(count: int, policy: LayenvPolicy) -> None:
    if count > policy.max_packages:
        raise _bad(f"{count} packages: at most {policy.max_packages} per request")


def parse_conda_spec(text: str, where: str = "dependency") -> CondaSpec:
    """``name``, ``name=1.2``, ``name>=1.2,<2``, ``name=1.2=build``, ``channel::name…``; never a URL or a path."""
    match = _CONDA_SPEC.fullmatch(text.strip()) if len(text) <= 500 else None
    if match is None:
        raise _bad(
            f"{where} {text!r} is not a Conda match spec: write it like 'numpy', 'numpy=1.26', 'numpy>=1.26,<2', "
            "'numpy=1.26.4=py311h64a7726_0' or 'conda-forge::numpy' (no URLs, paths or [brackets])",
            "not a match spec",
        )
    try:
        spec = MatchSpec(text.strip())
        if spec.build is not None and "=" in str(spec.build):
            raise ValueError(f"a build string has no '=' ({spec.build})")
    except Exception as err:  # rattler's parse errors have no common public base class
        raise _bad(f"{where} {text!r} is not a Conda match spec ({_one_line(err)})", "not a match spec") from None
    return CondaSpec(text.strip(), match["name"].lower(), match["channel"], spec)


def unmet_specs(specs: tuple[CondaSpec, ...], records: list[dict[str, Any]]) -> list[Unmet]:
    """The specs a prefix's ``conda-meta`` records do not satisfy, each with what the prefix has instead.

    A bare ``pip`` is met by any base: it only says the file has a pip section, which the layer's own
    installer serves.
    """
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_name.setdefault(str(record["name"]).lower(), []).append(record)
    unmet = []
    for spec in specs:
        candidates = by_name.get(spec.name, [])
        if spec.name == "pip" and spec.bare:
            continue
        if any(_satisfies(spec, record) for record in candidates):
            continue
        found = "; ".join(_describe(record) for record in candidates) or None
        unmet.append(Unmet(spec.text, found))
    return unmet


def _satisfies(spec: CondaSpec, record: dict[str, Any]) -> bool:
    try:
        package = PackageRecord(
            name=str(record["name"]),
            version=str(record["version"]),
            build=BuildString(str(record.get("build") or "")),
            build_number=int(record.get("build_number") or 0),
            subdir=str(record.get("subdir") or "noarch"),
        )
    except Exception:  # a record rattler cannot read (a garbled version) satisfies nothing
        return False
    if not spec.match.matches(package):
        return False
    return spec.channel is None or _same_channel(spec.channel, str(record.get("channel") or ""))


def _same_channel(wanted: str, recorded: str) -> bool:
    """``conda-forge::`` against ``https://conda.anaconda.org/conda-forge/linux-64``; a record without one passes."""
    if not recorded:
        return True
    wanted = wanted.strip("/")
    url = recorded.rstrip("/")
    return wanted in (channel_name(recorded), url) or url.startswith(f"{wanted}/") or f"/{wanted}/" in f"{url}/"


def _describe(record: dict[str, Any]) -> str:
    build = f"={record['build']}" if record.get("build") else ""
    channel = f" from {channel_name(str(record['channel']))}" if record.get("channel") else ""
    return f"{record['version']}{build}{channel}"


def rank_bases(specs: tuple[CondaSpec, ...], bases: list[Environment]) -> list[BaseMatch]:
    """Every base with what it fails, closest first: fewest unmet specs, then fewest extra packages."""
    named = {spec.name for spec in specs}
    matches = []
    for base in bases:
        records = inventory.conda_records(base.path)
        extra = sum(1 for record in records if str(record["name"]).lower() not in named)
        matches.append(BaseMatch(base, tuple(unmet_specs(specs, records)), extra))
    return sorted(matches, key=lambda m: (len(m.unmet), m.extra, m.base.id))


def choose_base(file: EnvironmentFile, discovered: Discovered, policy: LayenvPolicy) -> BaseMatch:
    """The closest known Conda env satisfying every Conda spec, or :class:`NoMatchingBase` naming what fails."""
    bases = [env for env in discovered.environments if env.kind in BASE_KINDS and policy.layer_refusal(env) is None]
    if not bases:
        raise PolicyError(
            422,
            'environment.yml: no Conda environment here can carry a layer; "build_base": true builds one from the '
            "file's Conda dependencies first",
            "no base",
        )
    ranked = rank_bases(file.conda, bases)
    if not ranked[0].unmet:
        return ranked[0]
    closest = ranked[:MAX_CLOSEST]
    lines = [f"{m.base.id}: {_unmet_words(m.unmet)}" for m in closest]
    raise NoMatchingBase(
        "environment.yml: no known Conda environment satisfies its Conda dependencies. Closest: "
        + "; ".join(lines)
        + '. Create such a base ("build_base": true builds one from the file\'s Conda dependencies first), or loosen '
        "those specs in the file.",
        closest,
    )


def _unmet_words(unmet: tuple[Unmet, ...]) -> str:
    """The first few specs a base fails, and how many more (an exported file pins every package: dozens)."""
    words = [f"{u.spec} (has {u.found})" if u.found else f"{u.spec} (missing)" for u in unmet[:MAX_UNMET_NAMED]]
    more = len(unmet) - MAX_UNMET_NAMED
    return ", ".join(words) + (f" and {more} more" if more > 0 else "")


def kept_from_base(specs: tuple[str, ...], base: Environment) -> tuple[list[str], list[str]]:
    """``(install, kept)``: pip specs the base's own installed packages already satisfy stay the base's."""
    provided = {dist.key: dist.version for dist in inventory.distributions(base.path, base.python_version)}
    install: list[str] = []
    kept: list[str] = []
    for spec in specs:
        if spec.startswith("-"):
            install.append(spec)
            continue
        req = Requirement(spec)
        version = provided.get(canonicalize_name(req.name))
        satisfied = version is not None and not req.extras and req.specifier.contains(version, prereleases=True)
        (kept if satisfied else install).append(spec)
    return install, kept


def request_from_file(
    body: dict[str, Any], policy: LayenvPolicy, discovered: Discovered, on_base: str | None = None
) -> tuple[CreateRequest, dict[str, Any]]:
    """A POST body with ``environment_yml``: the create request it amounts to, and the provenance to record.

    ``on_base``: the path of the base built for this file (``build_base``), taken without choosing."""
    replaced = [field for field in REPLACED_FIELDS if field in body]
    if replaced:
        raise bad_request(
            f"{', '.join(replaced)} cannot be sent with environment_yml: the file's Conda dependencies choose the "
            "base and its pip section is the layer"
        )
    unknown = sorted(set(body) - FILE_FIELDS)
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(unknown)}: allowed are {', '.join(sorted(FILE_FIELDS))}")
    text = body["environment_yml"]
    if not isinstance(text, str) or not text.strip():
        raise bad_request("'environment_yml' must be the text of an environment.yml file (a non-empty string)")
    file = parse(text, policy)
    name = body.get("name") if body.get("name") is not None else file.name
    if name is None:
        raise bad_request("environment.yml has no 'name:': give the new environment a name")
    validate_name(name)
    built = discovered.by_path(on_base) if on_base else None
    if on_base and built is None:
        raise PolicyError(409, f"the base built for this file, {on_base}, is gone", "base gone")
    chosen = rank_bases(file.conda, [built])[0] if built else choose_base(file, discovered, policy)
    base = chosen.base
    # the layer inherits unless the file or the request says it does not (the CLI and the panel send true)
    inherit = body.get("inherit", True)
    if inherit is True and not file.inherit:
        inherit = False
    install, kept = kept_from_base(file.pip, base) if inherit is True else (list(file.pip), [])
    fields = {key: body[key] for key in ("display_name", "root") if key in body}
    request = policy.parse_create({**fields, "name": name, "base": base.id, "packages": install, "inherit": inherit})
    provenance = {
        "name": file.name,
        "channels": list(file.channels),
        "conda": [spec.text for spec in file.conda],
        "pip": list(file.pip),
        "kept_from_base": kept,
        "summary": (
            f"environment.yml: base {base.id} built first from its {len(file.conda)} Conda specs"
            if built
            else f"environment.yml: base {base.id} satisfies all {len(file.conda)} Conda specs and has the fewest "
            f"other packages ({chosen.extra})"
        )
        + (f"; kept from the base: {', '.join(kept)}" if kept else ""),
    }
    return request, provenance


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())
