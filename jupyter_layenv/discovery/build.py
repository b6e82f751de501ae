"""Candidates -> protos: kinds, bases, names and kernel eligibility, rebuilt only for what changed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import activation
from ..locators import (
    SOURCE_CONDA_ENVS,
    SOURCE_CONDA_ROOT,
    SOURCE_VENV_ROOT,
    Candidate,
)
from ..locators.prefix import PrefixFacts, ipykernel_distribution
from ..model import (
    CONDA_BASE,
    CONDA_ENV,
    LAYERED,
    SCOPE_SYSTEM,
    SCOPE_USER,
    VENV,
    Discovered,
    ScopedRoot,
    SkippedEnv,
    fast_init,
    require_field_order,
)
from ..probe import base_not_responding_reason, root_of
from .cache import UNREAD, ScanStats
from .config import DiscoveryConfig
from .naming import Naming, venv_name, venv_prompt
from .proto import Proto
from .scan import prefix_of_home


@fast_init
@dataclass(frozen=True, slots=True)
class _BuildRecord:
    """What one candidate became, and everything outside its own facts that the answer depended on."""

    cand: Candidate
    facts: PrefixFacts
    proto: Proto | SkippedEnv | None
    extra_base: tuple[str, Candidate] | None
    # what it depends on, each key as it comes (no tuple made per key): a path, whether it is a candidate; a
    # (st_dev, st_ino), which candidate has it; a (read kind, path), a read. Shared by the records of one build
    # with the same dependencies (see ``Builder._record``).
    deps: frozenset[object]


@dataclass
class BuildMemo:
    """What the last build made of each candidate, and what it read: the next build or update starts from it."""

    context: tuple  # anything every env depends on: a change rebuilds them all
    records: dict[str, _BuildRecord]
    reads: dict[tuple[str, str], object]
    protos: dict[str, Proto] = field(default_factory=dict)  # what the records made: listed envs,
    skips: dict[str, SkippedEnv] = field(default_factory=dict)  # skipped ones,
    extras: dict[str, tuple[str, Candidate]] = field(default_factory=dict)  # the bases they added,
    extra_protos: dict[str, Proto] = field(default_factory=dict)  # and what those bases became
    # a dependency -> the records that have it: made at its first use (``dependents``), then kept up to date
    _dependents: dict[object, set[str]] | None = None

    @property
    def dependents(self) -> dict[object, set[str]]:
        """The index of the records by dependency, for updates and the next build. Made from the records when first
        asked for, not record by record as a cold listing builds them (0.4 ms of one at 500 envs)."""
        dependents = self._dependents
        if dependents is None:
            dependents = self._dependents = {}
            for path, record in self.records.items():
                _index(dependents, path, record)
        return dependents

    def keep(self, path: str, record: _BuildRecord) -> None:
        self.records[path] = record
        if self._dependents is not None:
            _index(self._dependents, path, record)
        proto = record.proto
        if proto is not None:
            if isinstance(proto, Proto):
                self.protos[path] = proto
            else:
                self.skips[path] = proto
        if record.extra_base is not None:
            self.extras[path] = record.extra_base

    def drop(self, path: str) -> None:
        dependents = self.dependents  # (made before the record goes)
        record = self.records.pop(path)
        for dep in record.deps:
            found = dependents[dep]
            found.discard(path)
            if not found:
                del dependents[dep]
        self.protos.pop(path, None)
        self.skips.pop(path, None)
        self.extras.pop(path, None)


def _index(dependents: dict[object, set[str]], path: str, record: _BuildRecord) -> None:
    for dep in record.deps:
        found = dependents.get(dep)
        if found is None:
            dependents[dep] = {path}
        else:
            found.add(path)


class Builder:
    """Turns candidates into Environments: kinds, bases, names, ids, kernel eligibility.

    Incremental: an env whose candidate and facts are the same objects as last time, and whose recorded
    dependencies (other candidates it looked up, device/inode owners, reads outside the candidates) are all
    unchanged, keeps its last answer; a new or deleted env costs its own inspection, not a pass over the tree
    (``update``: the records that depend on what changed are found through an index, not by a pass either).
    """

    def __init__(
        self,
        facts: Callable[[str], PrefixFacts],
        stats: ScanStats,
        naming: Naming,
        previous: BuildMemo | None,
        candidates: dict[str, Candidate],
        cfg: DiscoveryConfig,
        roots: list[ScopedRoot],
        id_to_path: dict[tuple[int, int], str],
    ) -> None:
        """``facts``: a prefix's facts in this scan; ``naming``: the ids and Environments of the last build, updated
        in place; ``previous``: the last build's memo. After ``build`` or ``update``, ``memo`` is this one's."""
        self.facts = facts
        self.naming = naming
        self.memo = previous
        self.candidates = candidates
        self.cfg = cfg
        self.roots = roots
        self.scoped_dirs = [(root.path, root.scope) for root in roots]
        self.scoped_dirs += [(path, SCOPE_USER) for path in cfg.user_roots]
        self.stats = stats
        self.id_to_path = id_to_path
        self.server_id = self.stats.dir_id(cfg.server_prefix) if cfg.server_prefix else None
        self.uid = os.getuid() if hasattr(os, "getuid") else -1
        self.context = (self.stats.hung, self.server_id, tuple(self.scoped_dirs), self.cfg, self.uid)
        self.reads: dict[tuple[str, str], object] = {}
        self._deps: set[object] = set()
        self._dep_sets: dict[frozenset[object], frozenset[object]] = {}  # each record's deps, one object per content
        self._last: BuildMemo | None = None  # whose protos are kept where their inputs are the same
        # (home, base-prefix, base-executable, parent dir) -> a venv's base answer, the envs it names, its deps
        self._bases: dict[
            tuple[str, str | None, str | None, str], tuple[_BaseAnswer, tuple[str, ...], set[object]]
        ] = {}

    def build(self, skipped: list[SkippedEnv]) -> Discovered:
        previous = self.memo if self.can_update() else None
        old_records: dict[str, _BuildRecord] = {}
        dirty: frozenset[object] = frozenset()
        if previous is not None:
            old_records, dirty = previous.records, self._dirty(previous)
            self._last = previous
        memo = BuildMemo(self.context, {}, {})
        facts = self.facts
        for path, cand in self.candidates.items():
            path_facts = facts(path)
            record = old_records.get(path)
            if (
                record is None
                or record.cand != cand
                or record.facts is not path_facts
                or not record.deps.isdisjoint(dirty)
            ):
                record = self._record(path, cand, path_facts)
            memo.keep(path, record)
        if previous is None:  # a first build read only for the records it made: each read is a dependency
            memo.reads = self.reads
        else:
            dependents = memo.dependents
            memo.reads = {key: value for key, value in self.reads.items() if key in dependents}
        return self._finish(memo, skipped)

    def can_update(self) -> bool:
        previous = self.memo
        return previous is not None and previous.context == self.context

    def update(
        self,
        added: Iterable[str],
        removed: Iterable[str],
        changed: Iterable[str],
        skipped: list[SkippedEnv],
        moved_facts: set[str],
    ) -> Discovered:
        """The last build, with candidates added and removed and the facts of others changed (``can_update``).

        ``moved_facts``: the prefixes whose facts are new objects in this call; a "facts" read of any other
        answers as before (the memo hands out the same object), so only the other kinds of reads are made again.
        """
        memo = self.memo
        assert memo is not None
        records = memo.records
        self._last = memo
        dirty: set[object] = set()
        rebuild: set[str] = set()
        for path in removed:
            dirty.update((path, records[path].facts.dir_id))
        for path in added:
            dirty.update((path, self.facts(path).dir_id))
            rebuild.add(path)
        for path in changed:
            record = records.get(path)
            facts = self.facts(path)
            if record is not None and record.facts is not facts:
                dirty.update((path, record.facts.dir_id, facts.dir_id))
                rebuild.add(path)
        dirty.update(self._moved_reads(memo, moved_facts))
        dependents = memo.dependents
        for dep in dirty:
            rebuild.update(dependents.get(dep, ()))
        for path in removed:
            memo.drop(path)
            rebuild.discard(path)
        for path in rebuild:
            record = self._record(path, self.candidates[path], self.facts(path))  # before its last proto goes
            if path in records:
                memo.drop(path)
            memo.keep(path, record)
        memo.reads.update(self.reads)
        for key in [key for key in memo.reads if key not in dependents]:
            del memo.reads[key]
        return self._finish(memo, skipped, touched=[*removed, *rebuild])

    def _finish(self, memo: BuildMemo, skipped: list[SkippedEnv], touched: list[str] | None = None) -> Discovered:
        """The Discovered of a build; ``touched``: after an update, the candidates removed or built again (the
        naming then looks at them, and at the bases records add, not at every proto)."""
        extra_bases: dict[str, Candidate] = {}
        for base, cand in memo.extras.values():
            extra_bases.setdefault(base, cand)
        extra = [self._conda_proto(path, self.facts(path), cand) for path, cand in extra_bases.items()]
        memo.extra_protos = {proto.path: proto for proto in extra}
        self.memo = memo
        naming = self.naming
        if touched is None:
            environments = naming.assign([*memo.protos.values(), *extra], (proto.path for proto in extra))
        else:
            environments = naming.update(memo.protos, extra, touched)
        return Discovered(
            environments=environments,
            skipped=tuple(sorted([*skipped, *memo.skips.values()], key=lambda s: s.path)),
            roots=tuple(self.roots),
        )

    def _moved_reads(self, previous: BuildMemo, moved_facts: set[str] | None = None) -> set[object]:
        """The reads outside the candidates that now answer otherwise (each read again, once per build)."""
        moved: set[object] = set()
        for key, value in previous.reads.items():
            if moved_facts is not None and key[0] == "facts" and key[1] not in moved_facts:
                continue
            now = self._read(*key)
            if now is not value and (key[0] == "facts" or now != value):
                moved.add(key)
        return moved

    def _dirty(self, previous: BuildMemo) -> frozenset[object]:
        """The dependencies that moved since the last build: candidates added, removed or changed (and the
        device/inode they had or have), and reads outside the candidates that now answer otherwise."""
        dirty: set[object] = set()
        old, new = previous.records, self.candidates
        facts = self.facts
        for path in old.keys() ^ new.keys():
            dirty.add(path)
            dirty.add(old[path].facts.dir_id if path in old else facts(path).dir_id)
        for path, cand in new.items():
            record = old.get(path)
            if record is not None and (record.facts is not facts(path) or record.cand != cand):
                dirty.update((path, record.facts.dir_id, facts(path).dir_id))
        dirty.update(self._moved_reads(previous))
        return frozenset(dirty)

    def _record(self, path: str, cand: Candidate, facts: PrefixFacts) -> _BuildRecord:
        self._deps = set()
        extra: dict[str, Candidate] = {}
        proto: Proto | SkippedEnv | None = None
        if facts.problem:
            proto = SkippedEnv(path, facts.problem)
        elif facts.is_venv:
            proto = self._venv_proto(path, facts, cand, extra)  # a deleted base explains a dangling python
        elif facts.is_conda:
            proto = self._conda_proto(path, facts, cand)
        if isinstance(proto, Proto) and facts.python_problem and not facts.kernels:
            reason = f"broken interpreter: {facts.python_problem}; recreate the environment or delete it"
            proto = SkippedEnv(path, reason)
        # the venvs of one base mostly depend on the same reads, and Conda envs on none: one frozenset each (fewer
        # objects for the garbage collector than a set per record)
        deps = frozenset(self._deps)
        deps = self._dep_sets.setdefault(deps, deps)
        return _BuildRecord(cand, facts, proto, next(iter(extra.items()), None), deps)

    def _read(self, kind: str, path: str) -> Any:
        """A read outside the candidates' facts, once per build, recorded as a dependency of the env at hand."""
        key = (kind, path)
        self._deps.add(key)
        value = self.reads.get(key, UNREAD)  # mostly a miss: a sentinel, not a KeyError caught
        if value is UNREAD:
            value = self.reads[key] = _READS[kind](self, path)
        return value

    def _is_candidate(self, path: str) -> bool:
        self._deps.add(path)
        return path in self.candidates

    def _known(self, prefix: str) -> str | None:
        """The listed env that directory is; a listed env's own path answers without a ``stat`` (its inspection
        read the device and inode that dedupe kept it by)."""
        if self._is_candidate(prefix) and self.facts(prefix).dir_id != (0, 0):
            return prefix
        dir_id = self._read("dir_id", prefix)
        self._deps.add(dir_id)
        return self.id_to_path.get(dir_id)

    def _home_is_dir(self, home: str) -> bool:
        """Whether a venv's ``home`` is a directory; the directory of a listed env's python is one."""
        prefix = os.path.dirname(home)
        if self._is_candidate(prefix):
            python = self.facts(prefix).python
            if python and os.path.dirname(python) == home:
                return True
        return self._read("is_dir", home)

    def _shared_base(self, path: str, pyvenv: dict[str, str], home: str) -> _BaseAnswer:
        """``_base_answer``, worked out once per build for the venvs that share what it reads (the layers of one
        base, the venvs of one interpreter), its dependencies recorded for each. The answer of a venv that names
        itself as its base is its own (``known != path`` in ``_venv_base``)."""
        key = (home, pyvenv.get("base-prefix"), pyvenv.get("base-executable"), os.path.dirname(path))
        shared = self._bases.get(key)
        if shared is None or path in shared[1]:
            outer, self._deps = self._deps, set()
            try:
                answer, seen = self._base_answer(path, pyvenv, home)
            finally:
                deps, self._deps = self._deps, outer
            shared = (answer, seen, deps)
            if path not in seen:
                self._bases[key] = shared
        self._deps |= shared[2]
        return shared[0]

    def _base_answer(self, path: str, pyvenv: dict[str, str], home: str) -> tuple[_BaseAnswer, tuple[str, ...]]:
        """Whether ``home`` is there, then the venv's base (see ``_venv_base``), and the listed envs it named."""
        if not self._home_is_dir(home):
            return (False, None, "", None, False), ()
        base_path, base_prefix, seen = self._venv_base(path, pyvenv)
        added = False
        if base_path is None and self._read("exists", os.path.join(base_prefix, "conda-meta")):
            base_path, added = base_prefix, True
        return (True, base_path, base_prefix, self._read("facts", base_path or base_prefix), added), seen

    def _venv_base(self, path: str, pyvenv: dict[str, str]) -> tuple[str | None, str, tuple[str, ...]]:
        """The known env a venv was made from, the prefix of its base interpreter, and the listed envs asked for.

        ``home`` names the base's bin directory, unless the base's python was a symlink (virtualenv and
        uv resolve it): then the interpreter itself, and the seed's nesting, tell which Conda env it was.
        """
        home = pyvenv["home"]
        home_prefix = prefix_of_home(home)
        seen: tuple[str, ...] = ()
        for prefix in (home_prefix, pyvenv.get("base-prefix")):
            known = self._known(prefix) if prefix else None
            if known is not None:
                seen += (known,)
                if known != path:
                    return known, known, seen
        parent = os.path.dirname(path)
        if self._is_candidate(parent) and (parent_facts := self.facts(parent)).is_conda:
            interpreter = pyvenv.get("base-executable") or os.path.join(home, "python")
            if parent_facts.python and self._read("realpath", parent_facts.python) == self._read(
                "realpath", interpreter
            ):
                return parent, parent, seen
        return None, pyvenv.get("base-prefix") or home_prefix, seen

    def _conda_proto(self, path: str, facts: PrefixFacts, cand: Candidate) -> Proto:
        is_root = (facts.is_conda_root and cand.source == SOURCE_CONDA_ROOT) or cand.conda_root == path
        in_root = cand.conda_root if cand.source == SOURCE_CONDA_ENVS and cand.conda_root != path else None
        name = "base" if is_root else os.path.basename(path)
        return self._proto(
            path,
            facts,
            kind=CONDA_BASE if is_root else CONDA_ENV,
            name=name,
            base=in_root,
            base_facts=None,
            chain=(name,),
            conda_env_name=name if is_root or in_root else None,
            conda_root=path if is_root else in_root,
        )

    def _venv_proto(
        self, path: str, facts: PrefixFacts, cand: Candidate, extra_bases: dict[str, Candidate]
    ) -> Proto | SkippedEnv:
        pyvenv = facts.pyvenv or {}
        home = pyvenv.get("home", "")
        # right inside a venv root, ``venv`` is its own name: the root's name says nothing about it
        name = os.path.basename(path) if cand.source == SOURCE_VENV_ROOT else venv_name(path)
        label = venv_prompt(pyvenv) or name
        hung_root = root_of(home, self.stats.hung) if self.stats.hung and home else None
        if hung_root is not None:  # reading anything of the base would hang
            return SkippedEnv(path, base_not_responding_reason(prefix_of_home(home), hung_root, self.cfg.root_timeout))
        home_is_dir, base_path, base_prefix, base_facts, added_base = self._shared_base(path, pyvenv, home)
        if not home_is_dir:
            dangling = f" (so {facts.python_problem})" if facts.python_problem else ""
            return SkippedEnv(
                path,
                f"base deleted: {home} no longer exists{dangling}; "
                "delete this environment or recreate it on an existing base",
            )
        assert base_facts is not None  # read whenever home is a directory
        if added_base:
            extra_bases.setdefault(base_prefix, Candidate(base_prefix, "layer-base"))
        inherits = pyvenv.get("include-system-site-packages", "false").lower() == "true"
        if base_path is not None:
            base_name = "base" if base_facts.is_conda_root else venv_name(base_path)
            return self._proto(
                path,
                facts,
                kind=LAYERED,
                name=name,
                base=base_path,
                base_facts=base_facts,
                chain=(base_name, label),
                inherits=inherits,
                conda_env_name=base_name if base_facts.is_conda else None,
                conda_root=None,
            )
        return self._proto(
            path,
            facts,
            kind=VENV,
            name=name,
            base=None,
            base_facts=base_facts if inherits else None,
            chain=(label,),
            inherits=inherits,
            conda_env_name=None,
            conda_root=None,
        )

    def _proto(
        self,
        path: str,
        facts: PrefixFacts,
        *,
        kind: str,
        name: str,
        base: str | None,
        base_facts: PrefixFacts | None,
        chain: tuple[str, ...],
        conda_env_name: str | None,
        conda_root: str | None,
        inherits: bool = False,
    ) -> Proto:
        """A new proto only when its inputs changed: unchanged envs cost nothing on an incremental rescan."""
        has_ipykernel, resources = self._ipykernel(facts, base_facts, inherits)
        last = self._last
        old = (last.protos.get(path) or last.extra_protos.get(path)) if last is not None else None
        if (
            old is not None
            and old.facts is facts
            and old.base_facts is base_facts
            and old.has_ipykernel == has_ipykernel
            and old.ipykernel_resources == resources
            and old.kind == kind
            and old.name == name
            and old.base == base
            and old.chain == chain
            and old.conda_env_name == conda_env_name
            and old.conda_root == conda_root
            and old.inherits == inherits
        ):
            return old
        return self._new_proto(
            path, facts, base_facts, kind, name, base, chain, conda_env_name, conda_root, inherits, has_ipykernel,
            resources,
        )  # fmt: skip

    def _ipykernel(self, facts: PrefixFacts, base_facts: PrefixFacts | None, inherits: bool) -> tuple[bool, str | None]:
        """Whether the env's Python imports ipykernel (its own, or its base's where it inherits the base's packages),
        and the folder of its logos. A distribution a layer's inspection did not look for (``has_ipykernel=None``)
        is looked for here, where it matters: for a layer whose base has no ipykernel (a recorded read)."""
        inherited = None
        if inherits and base_facts is not None:
            base_has = base_facts.has_ipykernel
            if base_has is None:
                base_has = self._read("ipykernel", base_facts.site_packages or "")
            if base_has:
                inherited = base_facts
        own = facts.has_ipykernel
        if own is None and inherited is None:
            own = self._read("ipykernel", facts.site_packages or "")
        resources = facts.ipykernel_resources or (inherited.ipykernel_resources if inherited is not None else None)
        return bool(own) or inherited is not None, resources

    def _new_proto(
        self,
        path: str,
        facts: PrefixFacts,
        base_facts: PrefixFacts | None,
        kind: str,
        name: str,
        base: str | None,
        chain: tuple[str, ...],
        conda_env_name: str | None,
        conda_root: str | None,
        inherits: bool,
        has_ipykernel: bool,
        resources: str | None,
    ) -> Proto:
        return Proto(  # by position (see _PROTO_FIELDS)
            path,
            name,
            kind,
            base,
            chain,
            facts,
            base_facts,
            facts.python_version or (base_facts.python_version if base_facts else None),
            inherits,
            has_ipykernel,
            resources,
            conda_env_name,
            conda_root,
            self._scope(path, facts.owner_uid),
            facts.dir_id == self.server_id,
            activation.activation_for(
                facts, base=base_facts if kind == LAYERED else None, conda_env_name=conda_env_name
            ),
        )

    def _scope(self, path: str, owner_uid: int) -> str:
        """The configured root the env lies in decides; elsewhere, whether the server's user owns it."""
        for root, scope in self.scoped_dirs:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return scope
        return SCOPE_USER if owner_uid == self.uid else SCOPE_SYSTEM


# ``_new_proto`` passes Proto's fields by position (a keyword call costs a third more, per listed env)
_PROTO_FIELDS = (
    "path",
    "name",
    "kind",
    "base",
    "chain",
    "facts",
    "base_facts",
    "version",
    "inherits",
    "has_ipykernel",
    "ipykernel_resources",
    "conda_env_name",
    "conda_root",
    "scope",
    "is_server_prefix",
    "activation",
)
require_field_order(Proto, _PROTO_FIELDS, "build._new_proto")

# home is a directory, base path, base prefix, base facts, base added by this venv (see Builder._base_answer)
_BaseAnswer = tuple[bool, str | None, str, PrefixFacts | None, bool]

_READS: dict[str, Callable[[Builder, str], object]] = {
    "dir_id": lambda builder, path: builder.stats.dir_id(path),
    "is_dir": lambda builder, path: builder.stats.is_dir(path),
    "exists": lambda builder, path: builder.stats.stat(path) is not None,
    "realpath": lambda _builder, path: os.path.realpath(path),
    "facts": lambda builder, path: builder.facts(path),
    "ipykernel": lambda _builder, path: ipykernel_distribution(path),
}
