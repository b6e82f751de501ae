"""Real-world install layouts (issue 11), built from the real Python with :mod:`envtree`'s builders.

Each piece reproduces a layout other environment locators meet on users' machines: installs known only
through ``~/.conda/environments.txt``, a Conda env with the ``conda`` package, installs inside pyenv's
``versions``, a micromamba root without ``envs/``, prefixes with package records but no history, the places
poetry, pipenv, virtualenvwrapper and pyenv keep their venvs, and a Conda found on ``PATH``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from envtree import _FAKE_CONDA, _conda_record, _conda_subdir, _write, _write_record, make_conda_prefix, make_venv

FAKE_MICROMAMBA = _FAKE_CONDA.replace("conda executable", "micromamba executable")


def add_conda_package(prefix: Path) -> Path:
    """What ``conda install conda`` (e.g. for conda-build) leaves in an env: ``bin/conda`` and its record.

    No ``condabin/`` and no ``envs/``: those come only with an install.
    """
    _write(Path(prefix) / "bin" / "conda", _FAKE_CONDA, 0o755)
    record = _conda_record("conda", "24.11.3", "py_0", _conda_subdir(), ["bin/conda"], ["python"], "conda")
    return _write_record(Path(prefix), record)


def drop_history(prefix: Path) -> Path:
    """A prefix whose installer wrote the package records but no ``conda-meta/history``."""
    (Path(prefix) / "conda-meta" / "history").unlink()
    return Path(prefix)


def make_micromamba_root(dest: Path) -> Path:
    """A micromamba root before its first env: ``bin/micromamba``, ``conda-meta/`` records, no ``envs/``."""
    prefix = drop_history(make_conda_prefix(dest))
    _write(prefix / "bin" / "micromamba", FAKE_MICROMAMBA, 0o755)
    return prefix


def set_prompt(venv: Path, prompt: str) -> Path:
    """``python -m venv --prompt`` writes the prompt quoted (``prompt = 'My Project'``); the file is replaced."""
    cfg = Path(venv) / "pyvenv.cfg"
    text = cfg.read_text() + f"prompt = {prompt!r}\n"
    cfg.unlink()
    cfg.write_text(text)
    return Path(venv)


@dataclass
class Layouts:
    home: Path
    miniconda3: Path  # ~/miniconda3, a default root
    build_env: Path  # envs/build: has the conda package (bin/conda), still an env
    loose_build_env: Path  # ~/projects/cb_env: a `conda create -p` env with the conda package, in environments.txt
    records_only: Path  # envs/records_only: conda-meta records, no history
    empty_meta: Path  # envs/empty_meta: an empty conda-meta/
    miniforge: Path  # ~/tools/miniforge3: known only through environments.txt (one of its envs listed)
    listed_env: Path  # ~/tools/miniforge3/envs/listed: the line in environments.txt
    unlisted_env: Path  # ~/tools/miniforge3/envs/unlisted: reached through its install
    anaconda: Path  # ~/other/anaconda3: its root line alone in environments.txt
    anaconda_env: Path  # ~/other/anaconda3/envs/other_env
    shared_a: Path  # ~/tools/miniforge3/envs/shared (ipykernel)
    shared_b: Path  # ~/other/anaconda3/envs/shared (ipykernel)
    configured_root: Path  # ~/custom/mf, given in env_paths
    configured_env: Path
    pyenv_conda: Path  # ~/.pyenv/versions/miniconda3-latest
    pyenv_conda_env: Path
    pyenv_venv: Path  # ~/.pyenv/versions/proj-3.x (pyenv-virtualenv)
    micromamba: Path  # ~/micromamba
    opt_anaconda: Path  # ~/opt/anaconda3
    poetry: Path
    pipenv: Path
    xdg_pipenv: Path  # $XDG_DATA_HOME/virtualenvs/…
    envs_upper: Path  # ~/Envs/wrapped
    envs_lower: Path  # ~/envs/venv: a generic name right inside a venv root
    path_root: Path  # ~/apps/condapath, found through its condabin/ on PATH
    path_env: Path
    prompted: Path  # ~/.virtualenvs/prompted, prompt 'My Project', ipykernel
    project_venv: Path  # ~/code/webapp/.venv, given in env_paths
    xdg_data: Path
    environments_txt: Path


def build_layouts_home(home: Path) -> Layouts:
    home = Path(home)
    L = Layouts(
        home=home,
        miniconda3=home / "miniconda3",
        build_env=home / "miniconda3" / "envs" / "build",
        loose_build_env=home / "projects" / "cb_env",
        records_only=home / "miniconda3" / "envs" / "records_only",
        empty_meta=home / "miniconda3" / "envs" / "empty_meta",
        miniforge=home / "tools" / "miniforge3",
        listed_env=home / "tools" / "miniforge3" / "envs" / "listed",
        unlisted_env=home / "tools" / "miniforge3" / "envs" / "unlisted",
        anaconda=home / "other" / "anaconda3",
        anaconda_env=home / "other" / "anaconda3" / "envs" / "other_env",
        shared_a=home / "tools" / "miniforge3" / "envs" / "shared",
        shared_b=home / "other" / "anaconda3" / "envs" / "shared",
        configured_root=home / "custom" / "mf",
        configured_env=home / "custom" / "mf" / "envs" / "cfg_env",
        pyenv_conda=home / ".pyenv" / "versions" / "miniconda3-latest",
        pyenv_conda_env=home / ".pyenv" / "versions" / "miniconda3-latest" / "envs" / "pyenv_env",
        pyenv_venv=home / ".pyenv" / "versions" / "proj-venv",
        micromamba=home / "micromamba",
        opt_anaconda=home / "opt" / "anaconda3",
        poetry=home / ".cache" / "pypoetry" / "virtualenvs" / "proj-AbCd1234-py3",
        pipenv=home / ".local" / "share" / "virtualenvs" / "pipproj-Xy12Ab34",
        xdg_pipenv=home / "xdg" / "virtualenvs" / "xdgproj-Qw12Er34",
        envs_upper=home / "Envs" / "wrapped",
        envs_lower=home / "envs" / "venv",
        path_root=home / "apps" / "condapath",
        path_env=home / "apps" / "condapath" / "envs" / "path_env",
        prompted=home / ".virtualenvs" / "prompted",
        project_venv=home / "code" / "webapp" / ".venv",
        xdg_data=home / "xdg",
        environments_txt=home / ".conda" / "environments.txt",
    )
    roots = [L.miniconda3, L.miniforge, L.anaconda, L.configured_root, L.pyenv_conda, L.opt_anaconda, L.path_root]
    with ThreadPoolExecutor(4) as pool:
        for job in [pool.submit(make_conda_prefix, root, conda_root=True) for root in roots]:
            job.result()
        envs = [L.build_env, L.loose_build_env, L.records_only, L.listed_env, L.unlisted_env, L.anaconda_env]
        envs += [L.configured_env, L.pyenv_conda_env, L.path_env]
        jobs = [pool.submit(make_conda_prefix, env) for env in envs]
        jobs += [pool.submit(make_conda_prefix, env, ipykernel=True) for env in (L.shared_a, L.shared_b)]
        jobs.append(pool.submit(make_micromamba_root, L.micromamba))
        venvs = [L.pyenv_venv, L.poetry, L.pipenv, L.xdg_pipenv, L.envs_upper, L.envs_lower, L.project_venv]
        jobs += [pool.submit(make_venv, venv) for venv in venvs]
        jobs.append(pool.submit(make_venv, L.prompted, ipykernel=True))
        for job in jobs:
            job.result()
    add_conda_package(L.build_env)
    add_conda_package(L.loose_build_env)
    drop_history(L.records_only)
    (L.empty_meta / "conda-meta").mkdir(parents=True)
    set_prompt(L.prompted, "My Project")
    # the root's path recorded nowhere else: conda wrote these lines when the envs were created
    _write(L.environments_txt, f"{L.listed_env}\n{L.anaconda}\n{L.build_env}\n{L.loose_build_env}\n")
    return L
