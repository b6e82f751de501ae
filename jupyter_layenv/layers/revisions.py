"""Every create and change of a layer is a revision: who, when, the request, the exact lock, the base's state.

Revisions live inside the env (``.layenv-revisions/<n>.json``, one file each, written by rename), so they
travel with it and vanish with it. The base fingerprint (its path, its ``conda-meta`` records, its installed
distributions) tells a revision made on another state of the base. Blocking file work: call from a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .. import fsread
from ..inventory import TOOLING, distributions
from ..locators.prefix import site_packages_of
from ..model import PROVENANCE
from ..safewrite import replace_file

REVISIONS_DIR = ".layenv-revisions"


@dataclass(frozen=True)
class Revision:
    revision: int
    created: str
    user: str
    request: dict[str, Any]  # {"action": "create"|"change"|"restore", "add": [...], "remove": [...], ...}
    lock: list[dict[str, Any]]  # [{name, version, hashes?}]
    base_fingerprint: str | None

    def json(self, current_fingerprint: str | None) -> dict[str, Any]:
        return {**asdict(self), "base_changed": self.base_fingerprint != current_fingerprint}


def base_fingerprint(base_path: str | None, python_version: str | None) -> str | None:
    """A digest of what a base is now: its path, its Conda package records and the distributions its Python
    (``python_version``, see ``inventory``) imports."""
    if not base_path:
        return None
    digest = hashlib.sha256(base_path.encode())
    for entry in sorted(fsread.listdir(os.path.join(base_path, "conda-meta"))):
        if entry.endswith(".json") or entry == "history":
            digest.update(b"\0" + entry.encode())
    history = os.path.join(base_path, "conda-meta", "history")
    if os.path.isfile(history):
        digest.update(str(os.path.getsize(history)).encode())
    _site, _version, entries = site_packages_of(base_path, python_version)
    for entry in sorted(entries):
        if entry.endswith((".dist-info", ".egg-info")):
            digest.update(b"\0" + entry.encode())
    return digest.hexdigest()[:16]


def current_lock(env_path: str, python_version: str | None, known: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The layer's own distributions (not pip's tooling; its Python's, see ``inventory``) as a lock; hashes from
    ``known`` (key -> lock entry) where the version matches (the resolver's or an earlier revision's)."""
    lock = []
    for dist in distributions(env_path, python_version):
        if dist.key in TOOLING:
            continue
        entry: dict[str, Any] = {"name": dist.name, "version": dist.version}
        previous = known.get(dist.key)
        if previous and previous.get("version") == dist.version:
            entry.update({k: previous[k] for k in ("hashes", "url") if previous.get(k)})
        lock.append(entry)
    return lock


def read_all(env_path: str) -> list[Revision]:
    """The env's revisions, newest first (unreadable files skipped)."""
    directory = os.path.join(env_path, REVISIONS_DIR)
    found = []
    for entry in fsread.listdir(directory):
        if not entry.endswith(".json") or not entry[:-5].isdigit():
            continue
        try:
            with fsread.open_regular(os.path.join(directory, entry), encoding="utf-8") as handle:
                found.append(Revision(**json.load(handle)))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(found, key=lambda r: r.revision, reverse=True)


def latest(env_path: str) -> Revision | None:
    revisions = read_all(env_path)
    return revisions[0] if revisions else None


def record(
    env_path: str, *, user: str, request: dict[str, Any], lock: list[dict[str, Any]], base_path: str | None,
    python_version: str | None,
) -> Revision:  # fmt: skip
    """Write the next revision (numbers start at 1, the create); ``python_version``: the base's Python's."""
    previous = latest(env_path)
    revision = Revision(
        revision=(previous.revision if previous else 0) + 1,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        user=user,
        request=request,
        lock=lock,
        base_fingerprint=base_fingerprint(base_path, python_version),
    )
    directory = os.path.join(env_path, REVISIONS_DIR)
    os.makedirs(directory, exist_ok=True)
    # a group layer's: any member may plant a link there (see safewrite)
    replace_file(directory, f"{revision.revision:06d}.json", json.dumps(asdict(revision), indent=1))
    return revision


def requested_names(env_path: str) -> set[str]:
    """The packages someone named explicitly for this layer (create and changes): its intended overrides."""
    specs: list[str] = []
    for revision in read_all(env_path):
        specs += [str(spec) for spec in revision.request.get("add") or []]
    text = fsread.read_small_text(os.path.join(env_path, PROVENANCE))
    try:
        provenance = json.loads(text) if text else {}
    except ValueError:
        provenance = {}
    if isinstance(provenance, dict):
        specs += [str(spec) for spec in provenance.get("packages") or []]
    names: set[str] = set()
    for spec in specs:
        try:
            names.add(canonicalize_name(Requirement(spec).name))
        except InvalidRequirement:
            continue
    return names
