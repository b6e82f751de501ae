"""What the files of one prefix say about it: interpreter, version, ipykernel, kernelspecs, activation.

Shared by every locator; reads directories and small files only, never runs the interpreter.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from stat import S_ISREG, S_IWUSR
from typing import TypeVar

from .. import fsread
from ..model import BEING_CREATED, BUILDING_MARKER, PROVENANCE, ShippedKernel, fast_init, require_field_order
from ..probe import read_write_local_devices

T = TypeVar("T")  # what a small file read once per scan is parsed into

IS_WINDOWS = sys.platform == "win32"
_CONDA_PYTHON_RECORD = re.compile(r"^python-(\d+\.\d+(?:\.\d+)?)[-_].*\.json$")
_LIB_PYTHON = re.compile(r"^python(\d+\.\d+)t?$")
_VERSION = re.compile(r"^(\d+\.\d+(?:\.\d+)?)")
SEP = os.sep
_SEPS = (os.sep, os.altsep) if os.altsep else (os.sep,)
_KERNELS = os.path.join("share", "jupyter", "kernels")
_PYTHON_NAMES = ("python.exe",) if IS_WINDOWS else ("python", "python3")
_BIN = "bin" + SEP
_NO_PROVENANCE: tuple[None, None] = (None, None)
_NONE: list[str] = []  # an absent directory's entries (never modified)
_NO_SITE: tuple[None, None, bool, bool] = (None, None, False, False)
_IPYKERNEL = SEP + "ipykernel"
# The server's user (no such thing on Windows), asked once: a cold listing asked it for each env, a system call each
_UID = os.getuid() if hasattr(os, "getuid") else -1


@fast_init
@dataclass(frozen=True, slots=True)
class PrefixFacts:
    path: str
    dir_id: tuple[int, int]  # (st_dev, st_ino): the same directory however it was reached
    is_conda: bool
    is_conda_root: bool
    pyvenv: dict[str, str] | None
    python: str | None
    python_problem: str | None
    python_version: str | None
    site_packages: str | None
    # ``None``: no ipykernel package in site-packages, and a distribution of it alone (a dist-info) not looked for:
    # a layer's own matters only when its base has none (``ipykernel_distribution``, asked by the build then)
    has_ipykernel: bool | None
    ipykernel_resources: str | None
    kernels: tuple[ShippedKernel, ...]
    activate_scripts: tuple[str, ...]
    state_env_vars: tuple[tuple[str, str], ...]
    owner_uid: int
    writable: bool
    problem: str | None
    deps: tuple[str, ...]
    display_name: str | None = None
    owner_gid: int = -1
    creator: str | None = None
    _bin_dir: str | None = field(default=None, init=False, repr=False, compare=False)  # see ``bin_dir``

    @property
    def is_venv(self) -> bool:
        return self.pyvenv is not None

    @property
    def bin_dir(self) -> str:
        """Asked per env and per layer on it (PATH): kept on the instance (a field equality ignores). Not a
        ``functools.cached_property``: before Python 3.12 its first read takes a lock, 3x the cost of the work."""
        found = self._bin_dir
        if found is None:
            found = bin_dir(self.path, venv=self.pyvenv is not None)
            _SET_BIN_DIR(self, found)
        return found


_SET_BIN_DIR = PrefixFacts.__dict__["_bin_dir"].__set__  # the instance is frozen: its slot's own setter


def bin_dir(prefix: str, *, venv: bool) -> str:
    if IS_WINDOWS:
        return os.path.join(prefix, "Scripts") if venv else prefix
    return _base(prefix) + "bin"


def looks_like_env(path: str) -> bool:
    """Cheap test used while scanning a root: is this directory a venv or a Conda prefix?

    Any ``conda-meta/`` counts, with or without ``history``: inspecting it then lists it, or says why not.
    """
    return fsread.exists(os.path.join(path, "pyvenv.cfg")) or fsread.is_dir(os.path.join(path, "conda-meta"))


def looks_like_conda_root(path: str, *, named_root: bool = False, names: Collection[str] | None = None) -> bool:
    """A Conda install: ``conda-meta/`` plus ``envs/`` or ``condabin/`` (``bin/conda`` alone is an env with conda).

    ``named_root``: a place configured as a root also counts with ``bin/micromamba`` (a micromamba root
    before its first env has no ``envs/``). ``names``: the entries of ``path``, when the caller has listed it.
    """
    top = names if names is not None else set(fsread.listdir(path))
    if "conda-meta" not in top:
        return False
    return _has_root_marker(top) or (named_root and _has_micromamba(path))


def _has_root_marker(top: Collection[str]) -> bool:
    return "envs" in top or "condabin" in top


def _has_micromamba(path: str) -> bool:
    return fsread.exists(os.path.join(path, "bin", "micromamba")) or fsread.exists(
        os.path.join(path, "Library", "bin", "micromamba.exe")
    )


def parse_pyvenv_cfg(text: str) -> dict[str, str] | None:
    """``key = value`` lines; ``None`` when the file is not a pyvenv.cfg at all (no ``home``)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values if values.get("home") else None


def inspect_prefix(
    path: str,
    names: Collection[str] | None = None,
    st: os.stat_result | None = None,
    parsed: dict[bytes, dict[str, str] | None] | None = None,
    parsed_specs: dict[bytes, dict | None] | None = None,
    *,
    defer_distribution: bool = False,
) -> PrefixFacts:
    """One listing of the prefix tells which of the other reads are needed at all (about 6 calls for a venv).

    ``names`` and ``st``: the prefix's entry names (a set or a dict keyed by name) and ``stat`` when the caller has
    them already. ``parsed`` and ``parsed_specs``: the pyvenv.cfg and kernel.json files a scan has parsed, by content
    (see ``_read_parsed``); ``defer_distribution``: see ``_site_and_ipykernel`` (a scan's first listing). Paths are
    built by concatenation (``os.path.join`` was a tenth of a cold listing's CPU time).
    """
    try:
        stat = st if st is not None else os.stat(path)
        top = names if names is not None else set(os.listdir(path))
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            return unusable_facts(path, None)  # deleted (or renamed away) since its root was listed: not an env now
        return unusable_facts(path, f"cannot read {path}: {err.strerror or err}; check its permissions")
    base = path if path.endswith(_SEPS) else path + SEP
    has_meta = "conda-meta" in top
    meta_entries = fsread.listdir(base + "conda-meta") if has_meta else _NONE
    # some installers leave only the package records (no history): still a Conda prefix
    is_conda = bool(meta_entries) and ("history" in meta_entries or _any_ends_with(meta_entries, ".json"))
    problem: str | None = None
    pyvenv: dict[str, str] | None = None
    deps = [path]
    if not is_conda and "pyvenv.cfg" in top:
        cfg_path = base + "pyvenv.cfg"
        deps.append(cfg_path)
        pyvenv = _read_parsed(cfg_path, parsed, _pyvenv_values)
        if pyvenv is None:
            reason = _unreadable_cfg(cfg_path) or "garbled pyvenv.cfg (no 'home = …' line)"
            problem = f"{reason} in {path}: recreate the environment, e.g. `python -m venv --clear` with its "
            problem += "interpreter"
    if is_conda:
        deps.append(base + "conda-meta")
    elif has_meta and pyvenv is None and problem is None:
        conda_meta = base + "conda-meta"
        deps.append(conda_meta)
        problem = (
            f"{conda_meta} has no history and no package records: not a Conda environment (yet); "
            "if an install was interrupted, recreate the environment or delete it"
        )
    if BUILDING_MARKER in top:
        problem = f"{BEING_CREATED}: a jupyter_layenv job is building {path}; it is listed once the job has succeeded"

    python, python_problem = _find_python(path, venv=pyvenv is not None, base=base)
    version = _python_version(pyvenv, meta_entries)
    # a venv that sees its base's packages (a layer) mostly takes ipykernel from there: its site-packages is listed
    inherits = pyvenv is not None and pyvenv.get("include-system-site-packages", "").lower() == "true"
    site_packages, lib_version, has_module, has_ipykernel = (
        _site_and_ipykernel(path, base, version, look_first=not inherits, defer=inherits and defer_distribution)
        if ("lib" in top or "Lib" in top)
        else _NO_SITE
    )
    if site_packages:
        # A healthy venv changes where it matters in site-packages; a Conda prefix also in its root
        # (nested venvs) and conda-meta (conda transactions). One stat less per venv keeps warm listings cheap.
        deps = [site_packages] if pyvenv is not None and problem is None else [*deps, site_packages]
    kernels: tuple[ShippedKernel, ...] = ()
    if "share" in top:
        kernels_dir = base + _KERNELS
        kernels = _read_kernelspecs(kernels_dir, parsed_specs)
        if any(kernel.language.lower() != "python" for kernel in kernels):
            deps.append(kernels_dir)  # ipykernel's own python3 spec needs no watching: site-packages covers it
    display_name, creator = _provenance(path) if PROVENANCE in top else _NO_PROVENANCE
    return PrefixFacts(  # by position (see _FACTS_FIELDS)
        path,
        (stat.st_dev, stat.st_ino),
        is_conda,
        is_conda and _has_root_marker(top),
        pyvenv,
        python,
        python_problem,
        version or lib_version,
        site_packages,
        has_ipykernel,
        f"{site_packages}{SEP}ipykernel{SEP}resources" if has_module else None,
        kernels,
        _activate_scripts(path) if is_conda and "etc" in top else (),
        _state_env_vars(base + "conda-meta") if "state" in meta_entries else (),
        stat.st_uid,
        _writable(path, stat),
        problem,
        tuple(deps),
        display_name,
        stat.st_gid,
        creator,
    )


# ``inspect_prefix`` passes PrefixFacts' fields by position (a keyword call costs 0.7 µs more, per inspected prefix)
_FACTS_FIELDS = (
    "path",
    "dir_id",
    "is_conda",
    "is_conda_root",
    "pyvenv",
    "python",
    "python_problem",
    "python_version",
    "site_packages",
    "has_ipykernel",
    "ipykernel_resources",
    "kernels",
    "activate_scripts",
    "state_env_vars",
    "owner_uid",
    "writable",
    "problem",
    "deps",
    "display_name",
    "owner_gid",
    "creator",
    "_bin_dir",
)
require_field_order(PrefixFacts, _FACTS_FIELDS, "prefix.inspect_prefix")


def _pyvenv_values(data: bytes) -> dict[str, str] | None:
    """A pyvenv.cfg's values (``None``: not UTF-8, or no ``home``); the venvs one tool made on one Python share the
    file byte for byte, so it is read with :func:`_read_parsed`."""
    try:
        return parse_pyvenv_cfg(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _read_parsed(path: str, parsed: dict[bytes, T | None] | None, parse: Callable[[bytes], T | None]) -> T | None:
    """A small file's ``parse``d content (``None``: unreadable, or ``parse`` refused it). Files many envs hold byte for
    byte are parsed once per scan: ``parsed`` answers for a content seen already, the answer then shared by their
    facts (read-only, as facts are)."""
    data = fsread.read_small_bytes(path)
    if data is None:
        return None
    if parsed is not None and data in parsed:
        return parsed[data]
    value = parse(data)
    if parsed is not None:
        parsed[data] = value
    return value


def _unreadable_cfg(cfg_path: str) -> str | None:
    """Why a pyvenv.cfg that gave no values could not be read at all (``None``: it was read, and has no ``home``);
    asked only then, so a listing pays nothing for it."""
    try:
        st = os.stat(cfg_path)
    except OSError as err:
        return f"unreadable pyvenv.cfg ({err.strerror})"
    if not S_ISREG(st.st_mode):
        return "pyvenv.cfg is not a regular file (a FIFO, a device or a directory)"
    if st.st_size > fsread.MAX_SMALL_FILE:
        return f"pyvenv.cfg is too large ({st.st_size} bytes; a real one holds a few lines)"
    if not os.access(cfg_path, os.R_OK):
        return "unreadable pyvenv.cfg (permission denied)"
    return None


def _base(path: str) -> str:
    """``path`` ready for a relative name to be appended: what ``os.path.join(path, name)`` gives, without its cost."""
    return path if path.endswith(_SEPS) else path + SEP


def _writable(path: str, st: os.stat_result) -> bool:
    """``os.access(path, W_OK)``, answered from the ``stat`` where it cannot differ: the caller owns the directory,
    its owner may write, and it lies on a local file system mounted read-write. Elsewhere (another owner: groups
    and ACLs; a network mount: the server decides) access(2) is asked. Only an immutable (``chattr +i``)
    directory would be answered otherwise.
    """
    if st.st_uid == _UID and st.st_mode & S_IWUSR and st.st_dev in read_write_local_devices():
        return True
    return os.access(path, os.W_OK)


def _provenance(prefix: str) -> tuple[str | None, str | None]:
    """The display name and creator recorded when jupyter_layenv created the env."""
    text = fsread.read_small_text(os.path.join(prefix, PROVENANCE))
    try:
        recorded = json.loads(text or "")
    except ValueError:
        return _NO_PROVENANCE
    if not isinstance(recorded, dict):
        return _NO_PROVENANCE
    return _text(recorded.get("display_name")), _text(recorded.get("creator"))


def _text(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def unusable_facts(path: str, problem: str | None) -> PrefixFacts:
    """Facts of a prefix that cannot be read: ``problem`` says why (``None``: it is gone, not an env at all)."""
    return PrefixFacts(
        path=path,
        dir_id=(0, 0),
        is_conda=False,
        is_conda_root=False,
        pyvenv=None,
        python=None,
        python_problem=None,
        python_version=None,
        site_packages=None,
        has_ipykernel=False,
        ipykernel_resources=None,
        kernels=(),
        activate_scripts=(),
        state_env_vars=(),
        owner_uid=-1,
        writable=False,
        problem=problem,
        deps=(path, os.path.dirname(path)),
    )


def _find_python(prefix: str, *, venv: bool, base: str) -> tuple[str | None, str | None]:
    """The env's interpreter, or why it has none usable (dangling link, symlink loop, absent); ``base``: the
    prefix ready for a name to be appended (``_base``)."""
    directory = _base(bin_dir(prefix, venv=venv)) if IS_WINDOWS else base + _BIN
    for name in _PYTHON_NAMES:
        candidate = directory + name
        try:
            os.stat(candidate)
        except (OSError, ValueError):
            why = fsread.link_problem(candidate)
            if why:
                target = _readlink(candidate)
                return None, f"{candidate} is a {why}" + (f" (→ {target})" if target else "")
            continue
        return candidate, None
    return None, None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _site_and_ipykernel(
    prefix: str, base: str, version: str | None, *, look_first: bool, defer: bool = False
) -> tuple[str | None, str | None, bool, bool | None]:
    """The env's site-packages (see ``site_packages_of``), its X.Y, whether ipykernel's package is there, and whether
    any ipykernel distribution is (a dist-info alone: an editable install, or the module as ``ipykernel.py``).

    ``look_first``: where the env's Python version is known, a ``stat`` of ``site-packages/ipykernel`` answers first:
    one system call where a listing of site-packages makes five (open, fstat, two getdents, close), for the envs a
    kernel list is made of; only an env without that package is listed then. Like a listing, the ``stat`` sees
    site-packages as it is after the scan started: an install or removal later moves its mtime (``Listed``).
    ``defer`` (a layer, which mostly has ipykernel from its base): without the package, site-packages is not listed;
    whether a distribution is there is ``None`` (not looked for) and site-packages is taken to be there (the build's
    listing of it, where it matters, and the next inspection, which lists it, say otherwise).
    """
    if defer and version and not IS_WINDOWS:
        x_y, site = _site_of_version(version)
        candidate = base + site
        if fsread.exists(candidate + _IPYKERNEL):
            return candidate, x_y, True, True
        return candidate, x_y, False, None
    if look_first and version and not IS_WINDOWS:
        x_y, site = _site_of_version(version)
        candidate = base + site
        try:
            os.stat(candidate + _IPYKERNEL)
        except (OSError, ValueError):
            pass
        else:
            return candidate, x_y, True, True
    site_packages, lib_version, entries = _site_packages(prefix, base, version)
    has_module = "ipykernel" in entries
    has_ipykernel = has_module or any(
        entry.endswith((".dist-info", ".egg-info")) for entry in _starting_with(entries, "ipykernel-")
    )
    return site_packages, lib_version, has_module, has_ipykernel


def ipykernel_distribution(site_packages: str) -> bool:
    """Whether site-packages holds a distribution of ipykernel (its package, or a dist-info or egg-info alone): what
    ``has_ipykernel=None`` left unasked."""
    entries = fsread.listdir(site_packages)
    return "ipykernel" in entries or any(
        entry.endswith((".dist-info", ".egg-info")) for entry in _starting_with(entries, "ipykernel-")
    )


def site_packages_of(prefix: str, version: str | None) -> tuple[str | None, str | None, list[str]]:
    """The ``lib/pythonX.Y/site-packages`` of the env's Python ``version`` (none when it has none), else the newest; its
    X.Y, and its entries (listing it proves it exists). Knowing the version saves listing ``lib``. No default: a
    caller passes the version discovery gives the env (``Environment.python_version``); ``None`` only where nothing
    knows it (another Python's ``lib/python3.X`` left behind is then as likely as the env's own).
    """
    return _site_packages(prefix, _base(prefix), version)


def _site_packages(prefix: str, base: str, version: str | None) -> tuple[str | None, str | None, list[str]]:
    """``site_packages_of``, with the prefix's ``_base`` made already."""
    if version and not IS_WINDOWS:
        # The env's Python reads its own X.Y's site-packages (or, a free-threaded build, X.Yt's), never another
        # Python's left in lib: its packages counted as the env's would make a layer's plan wrong.
        x_y, site = _site_of_version(version)
        for candidate in (base + site, f"{base}lib{SEP}python{x_y}t{SEP}site-packages"):
            try:
                return candidate, x_y, os.listdir(candidate)
            except OSError:
                continue
        return None, x_y, []
    candidates: list[tuple[str, str | None]]
    if IS_WINDOWS:
        candidates = [(os.path.join(prefix, "Lib", "site-packages"), None)]
    else:
        lib = base + "lib"
        found = [(m.group(1), entry) for entry in fsread.listdir(lib) if (m := _LIB_PYTHON.match(entry))]
        found.sort(key=lambda item: tuple(int(part) for part in item[0].split(".")), reverse=True)
        candidates = [(f"{lib}{SEP}{entry}{SEP}site-packages", version) for version, entry in found]
    for candidate, version in candidates:
        try:
            return candidate, version, os.listdir(candidate)
        except OSError:
            continue
    return None, None, []


@functools.lru_cache(maxsize=64)
def _site_of_version(version: str) -> tuple[str, str]:
    """``X.Y`` and ``lib/pythonX.Y/site-packages`` of a version string: the envs of a tree share a few."""
    major, _, rest = version.partition(".")
    x_y = f"{major}.{rest.partition('.')[0]}"
    return x_y, f"lib{SEP}python{x_y}{SEP}site-packages"


@functools.lru_cache(maxsize=256)
def _leading_version(text: str) -> str | None:
    """The ``X.Y[.Z]`` a pyvenv.cfg version value starts with; the venvs of a tree share a few values."""
    match = _VERSION.match(text)
    return match.group(1) if match else None


def _python_version(pyvenv: dict[str, str] | None, conda_meta_entries: list[str]) -> str | None:
    if pyvenv is not None:
        for key in ("version_info", "version"):
            found = _leading_version(pyvenv.get(key, ""))
            if found:
                return found
    for entry in _starting_with(conda_meta_entries, "python-"):  # hundreds of package records in a real env
        if match := _CONDA_PYTHON_RECORD.match(entry):
            return match.group(1)
    return None


def _starting_with(names: list[str], prefix: str) -> Iterator[str]:
    """The ``names`` that begin with ``prefix``, in order, found by one string search over the names joined by
    NUL (no file name holds one) instead of a Python loop over hundreds of names (site-packages, conda-meta)."""
    if not names:
        return
    joined = "\0" + "\0".join(names) + "\0"
    needle = "\0" + prefix
    start = joined.find(needle)
    while start >= 0:
        end = joined.index("\0", start + 1)
        yield joined[start + 1 : end]
        start = joined.find(needle, end)


def _any_ends_with(names: list[str], suffix: str) -> bool:
    """Whether a name ends with ``suffix``: one search of the NUL-joined names (see ``_starting_with``)."""
    return (suffix + "\0") in ("\0".join(names) + "\0")


def _read_kernelspecs(kernels_dir: str, parsed: dict[bytes, dict | None] | None = None) -> tuple[ShippedKernel, ...]:
    found = []
    base = _base(kernels_dir)
    names = fsread.listdir(kernels_dir)
    for dirname in sorted(names) if len(names) > 1 else names:
        resource_dir = base + dirname
        spec = _read_parsed(f"{resource_dir}{SEP}kernel.json", parsed, _kernel_spec)
        if spec is not None:
            found.append(ShippedKernel(dirname, resource_dir, spec))
    return tuple(found)


def _kernel_spec(data: bytes) -> dict | None:
    """A kernel.json's spec (``None``: not UTF-8 JSON, or no argv); the envs one ipykernel wheel was installed in ship
    it byte for byte, so it is read with :func:`_read_parsed`."""
    try:
        spec = json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is one
        return None
    return spec if isinstance(spec, dict) and isinstance(spec.get("argv"), list) and spec["argv"] else None


def _activate_scripts(prefix: str) -> tuple[str, ...]:
    directory = os.path.join(prefix, "etc", "conda", "activate.d")
    return tuple(os.path.join(directory, name) for name in sorted(fsread.listdir(directory)) if name.endswith(".sh"))


def _state_env_vars(conda_meta: str) -> tuple[tuple[str, str], ...]:
    """``conda env config vars set`` stores variables in ``conda-meta/state``."""
    text = fsread.read_small_text(os.path.join(conda_meta, "state"))
    if not text:
        return ()
    try:
        env_vars = json.loads(text).get("env_vars") or {}
    except (ValueError, AttributeError):
        return ()
    return tuple((str(key), str(value)) for key, value in sorted(env_vars.items()) if isinstance(key, str))
