"""Synthetic environment trees for the discovery benchmark: the file layout of N envs, no real Python copies.

Layout under ``root`` (``N`` envs: 1/5 Conda envs, 2/5 venvs nested in them, 2/5 plain venvs)::

    miniconda3/                          the Conda root: conda-meta/{history,python-*.json}, envs/, condabin/conda,
                                         bin/python (no ipykernel: listed by jupyter_layenv, not a kernel)
    miniconda3/envs/condaNNNN/           conda-meta/history, conda-meta/python-X.Y.Z-h0_cpython.json,
                                         bin/python -> the real interpreter, site-packages/ipykernel/__init__.py
    miniconda3/envs/condaNNNN/projNNNN/  a layered venv (the seed's layout): pyvenv.cfg home = <conda env>/bin,
                                         include-system-site-packages = true; bin/python; a dist-info or two
    virtualenvs/venvNNNN/                a plain venv on the real interpreter (half with ``uv = 0.4.0``), with
                                         ipykernel in site-packages and the share/jupyter/kernels/python3 that
                                         ipykernel's wheel unpacks
    home/.venv/environments.txt          nb_venv_kernels' registries (it reads ``$HOME/.venv`` and ``$HOME/.uv``):
    home/.uv/environments.txt            every venv, nested and plain, as ``nb_venv_kernels register`` writes them
    user_kernels/<name>/kernel.json      one kernelspec per env, as ``python -m ipykernel install --name`` writes it
                                         (for the plain jupyter_client KernelSpecManager)
    kernels/                             empty: the kernel_dirs of the managers that find envs themselves

Everything is plain files and symlinks; ``bin/python`` links to the real interpreter so "is there a working
python" checks pass. ``backdate`` sets every mtime in the tree to the past, so that caches that distrust a
recent mtime (jupyter_layenv's 2 s racy window) see a settled tree at once, without sleeping.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY_XY = f"{sys.version_info[0]}.{sys.version_info[1]}"
PY_XYZ = f"{PY_XY}.{sys.version_info[2]}"
LIB = f"lib/python{PY_XY}"
SITE = f"{LIB}/site-packages"
REAL_PYTHON = os.path.join(sys.base_prefix, "bin", f"python{PY_XY}")
IPYKERNEL_VERSION = "6.29.5"
OLD_MTIME = time.time() - 86_400  # "yesterday": far outside any racy window

_KERNEL_JSON = {
    "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "metadata": {"debugger": True},
}
_LOGOS = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


def _write(path: str, text: str = "") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _python_link(prefix: str, target: str) -> None:
    os.makedirs(os.path.join(prefix, "bin"), exist_ok=True)
    os.symlink(target, os.path.join(prefix, "bin", "python"))


def _dist_info(site: str, name: str, version: str, with_module: bool = True) -> None:
    info = os.path.join(site, f"{name}-{version}.dist-info")
    _write(os.path.join(info, "METADATA"), f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    _write(os.path.join(info, "INSTALLER"), "pip\n")
    if with_module:
        _write(os.path.join(site, name, "__init__.py"), f'__version__ = "{version}"\n')


def _conda_meta(prefix: str, cmd: str) -> None:
    meta = os.path.join(prefix, "conda-meta")
    _write(
        os.path.join(meta, "history"),
        f"==> 2025-01-01 00:00:00 <==\n# cmd: {cmd}\n# conda version: 24.11.3\n"
        f"+conda-forge/linux-64::python-{PY_XYZ}-h0_cpython\n",
    )
    record = {"name": "python", "version": PY_XYZ, "build": "h0_cpython", "channel": "conda-forge", "files": []}
    _write(os.path.join(meta, f"python-{PY_XYZ}-h0_cpython.json"), json.dumps(record))


@dataclass
class SynthTree:
    root: Path
    conda_envs: list[Path] = field(default_factory=list)
    nested: list[Path] = field(default_factory=list)
    plain: list[Path] = field(default_factory=list)

    @property
    def conda_root(self) -> Path:
        return self.root / "miniconda3"

    @property
    def envs_dir(self) -> Path:
        return self.conda_root / "envs"

    @property
    def venv_root(self) -> Path:
        return self.root / "virtualenvs"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def empty_kernels(self) -> Path:
        return self.root / "kernels"

    @property
    def user_kernels(self) -> Path:
        return self.root / "user_kernels"

    @property
    def envs(self) -> list[Path]:
        return [*self.conda_envs, *self.nested, *self.plain]

    # -- one env of each kind (used by the builder and by "add one env" in the benchmark) -----------------

    def add_conda_env(self, name: str) -> Path:
        prefix = str(self.envs_dir / name)
        _conda_meta(prefix, f"{self.conda_root}/bin/conda create -n {name} python={PY_XY} ipykernel")
        _python_link(prefix, REAL_PYTHON)
        site = os.path.join(prefix, SITE)
        _dist_info(site, "ipykernel", IPYKERNEL_VERSION)
        self.conda_envs.append(Path(prefix))
        return Path(prefix)

    def add_nested_venv(self, conda_env: Path, name: str) -> Path:
        prefix = str(conda_env / name)
        _write(
            os.path.join(prefix, "pyvenv.cfg"),
            f"home = {conda_env}/bin\nimplementation = CPython\nversion_info = {PY_XYZ}.final.0\n"
            f"virtualenv = 20.26.6\ninclude-system-site-packages = true\nbase-prefix = {conda_env}\n"
            f"base-exec-prefix = {conda_env}\nbase-executable = {conda_env}/bin/python{PY_XY}\n",
        )
        _python_link(prefix, str(conda_env / "bin" / "python"))
        site = os.path.join(prefix, SITE)
        _dist_info(site, "flask", "3.0.3")
        _dist_info(site, "itsdangerous", "2.2.0")
        _write(os.path.join(site, "_virtualenv.pth"), "import _virtualenv\n")
        self.nested.append(Path(prefix))
        return Path(prefix)

    def add_plain_venv(self, name: str, *, uv: bool) -> Path:
        prefix = str(self.venv_root / name)
        home = os.path.dirname(REAL_PYTHON)
        uv_line = "uv = 0.4.0\n" if uv else ""
        _write(
            os.path.join(prefix, "pyvenv.cfg"),
            f"home = {home}\nimplementation = CPython\n{uv_line}version_info = {PY_XYZ}\n"
            "include-system-site-packages = false\n",
        )
        _python_link(prefix, REAL_PYTHON)
        site = os.path.join(prefix, SITE)
        _dist_info(site, "ipykernel", IPYKERNEL_VERSION)
        kdir = os.path.join(prefix, "share", "jupyter", "kernels", "python3")
        _write(os.path.join(kdir, "kernel.json"), json.dumps(_KERNEL_JSON, indent=1))
        self.plain.append(Path(prefix))
        return Path(prefix)

    # -- what the other managers need ---------------------------------------------------------------------

    def register_nb_venv(self, env: Path) -> None:
        """Append to nb_venv_kernels' registry as ``nb_venv_kernels register <env>`` does (uv envs go to ~/.uv)."""
        cfg = (env / "pyvenv.cfg").read_text(encoding="utf-8")
        registry = self.home / (".uv" if "\nuv =" in "\n" + cfg else ".venv") / "environments.txt"
        registry.parent.mkdir(parents=True, exist_ok=True)
        with open(registry, "a", encoding="utf-8") as handle:
            handle.write(f"{env}\n")

    def kernelspec_name(self, env: Path) -> str:
        return env.name.lower()

    def write_user_kernelspec(self, env: Path) -> Path:
        """``<env>/bin/python -m ipykernel install --user --name <env name>``: kernel.json and ipykernel's logos."""
        kdir = self.user_kernels / self.kernelspec_name(env)
        spec = {
            "argv": [str(env / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": env.name,
            "language": "python",
            "metadata": {"debugger": True},
        }
        _write(str(kdir / "kernel.json"), json.dumps(spec, indent=1))
        for logo in _LOGOS:
            _write(str(kdir / logo), "logo")
        return kdir


def split_counts(n: int) -> tuple[int, int, int]:
    """(conda envs, nested venvs, plain venvs) for N envs: 1/5, 2/5, 2/5."""
    conda = max(1, round(n / 5))
    nested = min(2 * conda, n - conda)
    return conda, nested, n - conda - nested


def build_tree(root: str | Path, n: int) -> SynthTree:
    """N envs (see the module doc), the nb_venv_kernels registries and one hand-made kernelspec per env."""
    tree = SynthTree(Path(root))
    root_prefix = str(tree.conda_root)
    _conda_meta(root_prefix, f"constructor /tmp/install {root_prefix}")
    _python_link(root_prefix, REAL_PYTHON)
    os.makedirs(os.path.join(root_prefix, SITE), exist_ok=True)
    _write(os.path.join(root_prefix, "condabin", "conda"), "#!/bin/sh\nexit 1\n")
    os.makedirs(tree.envs_dir, exist_ok=True)
    os.makedirs(tree.venv_root, exist_ok=True)
    os.makedirs(tree.empty_kernels, exist_ok=True)
    os.makedirs(tree.user_kernels, exist_ok=True)
    n_conda, n_nested, n_plain = split_counts(n)
    for i in range(n_conda):
        tree.add_conda_env(f"conda{i:04d}")
    for i in range(n_nested):
        tree.add_nested_venv(tree.conda_envs[i % n_conda], f"proj{i:04d}")
    for i in range(n_plain):
        tree.add_plain_venv(f"venv{i:04d}", uv=i % 2 == 1)
    for env in [*tree.nested, *tree.plain]:
        tree.register_nb_venv(env)
    for env in tree.envs:
        tree.write_user_kernelspec(env)
    return tree


_FS_FUNCS = ("stat", "lstat", "listdir", "scandir", "access", "readlink")


@contextmanager
def counting_fs_calls(skip_thread: str | None = None, paths: list[str] | None = None) -> Iterator[Counter[str]]:
    """Counts os.stat/lstat/listdir/scandir/access/readlink and file opens (``open()`` and ``os.open``, which
    jupyter_layenv's small reads use, both as "open") (diagnostic runs only, not timed), for the discovery and
    usage benchmarks both. ``skip_thread``: not the calls of threads of that name (jupyter_layenv's change
    notifications promote in a background thread after a listing: counted apart). ``paths``: gets the path of
    each call counted."""
    counts: Counter[str] = Counter()
    originals = {name: getattr(os, name) for name in _FS_FUNCS}
    original_open, original_os_open = builtins.open, os.open

    def wrap(name: str, func: Callable) -> Callable:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if skip_thread is None or threading.current_thread().name != skip_thread:
                counts[name] += 1
                if paths is not None and args:
                    paths.append(os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else "")
            return func(*args, **kwargs)

        return counted

    for name, func in originals.items():
        setattr(os, name, wrap(name, func))
    builtins.open = wrap("open", original_open)
    os.open = wrap("open", original_os_open)
    try:
        yield counts
    finally:
        for name, func in originals.items():
            setattr(os, name, func)
        builtins.open = original_open
        os.open = original_os_open


def backdate(*paths: str | Path, when: float = OLD_MTIME) -> int:
    """Set the mtime of every directory, file and symlink under ``paths`` (and the paths) to ``when``."""
    count = 0
    for top in paths:
        top = str(top)
        os.utime(top, (when, when), follow_symlinks=False)
        count += 1
        for dirpath, dirnames, filenames in os.walk(top):
            for name in (*dirnames, *filenames):
                os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
                count += 1
    return count


def backdate_one(*paths: str | Path, when: float = OLD_MTIME) -> None:
    """Only these paths (not their contents)."""
    for path in paths:
        os.utime(str(path), (when, when), follow_symlinks=False)


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of envs")
    parser.add_argument("--dest", help="where to build (default: a new temp dir)")
    args = parser.parse_args()
    dest = Path(args.dest or tempfile.mkdtemp(prefix=f"layenv-synth-{args.n}-"))
    start = time.perf_counter()
    built = build_tree(dest, args.n)
    files = backdate(dest)
    print(
        f"{dest}: {len(built.conda_envs)} conda, {len(built.nested)} nested, {len(built.plain)} plain venvs, "
        f"{files} paths, {time.perf_counter() - start:.2f} s"
    )
