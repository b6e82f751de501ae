"""A kernel's launch computed again from the environment's files, at the moment it starts.

A kernelspec carries the activation of the moment it was listed or written by ``jupyter layenv sync``; the env may
have changed since (a new ``conda-meta/state`` variable, an ``activate.d`` script), been deleted, or broken.
Reads the env (and a layer's Conda base) as discovery does — directories and small files, no process — and
either returns the launch of now or says what a person can do. Used by :mod:`jupyter_layenv.provisioner`.
"""

from __future__ import annotations

import os

from . import activation, fsread
from .locators.prefix import PrefixFacts, inspect_prefix

# what activation.kernel_launch writes into a spec's env: replaced at launch, the spec's other variables kept
_MANAGED = frozenset(("PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", activation.SCRIPTS_VAR))
_PICK_ANOTHER = "pick another kernel"


class EnvUnusable(Exception):
    """The env named by a kernelspec cannot start a kernel now; the message says why and what to do."""

    def __init__(self, message: str, *, gone: bool) -> None:
        super().__init__(message)
        self.gone = gone


def launch_now(env_path: str, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The argv and env to start ``argv`` (the spec's, wrapper or not) activated in the env as it is now."""
    facts, base = read_env(env_path)
    command = _command(argv)
    program = command[0] if command else ""
    if os.path.isabs(program) and not fsread.exists(program):
        raise EnvUnusable(
            f"environment {env_path} has no {program} any more; reinstall it or {_PICK_ANOTHER}", gone=False
        )
    if "ipykernel_launcher" in command and not (facts.has_ipykernel or _inherited_ipykernel(facts, base)):
        raise EnvUnusable(
            f"environment {env_path} has no ipykernel any more: run `{program} -m pip install ipykernel`, "
            f"or {_PICK_ANOTHER}",
            gone=False,
        )
    now = activation.activation_for(facts, base=base, conda_env_name=env.get("CONDA_DEFAULT_ENV"))
    launch_argv, launch_env = activation.kernel_launch(now, command)
    kept = {key: value for key, value in env.items() if key not in _MANAGED}
    return launch_argv, {**kept, **launch_env}


def read_env(env_path: str) -> tuple[PrefixFacts, PrefixFacts | None]:
    """The env's facts and, for a layer, its Conda base's; :class:`EnvUnusable` when either is gone or broken."""
    facts = inspect_prefix(env_path)
    if facts.dir_id == (0, 0) and facts.problem is None:
        raise EnvUnusable(f"environment {env_path} was deleted; {_PICK_ANOTHER}", gone=True)
    if facts.problem:
        raise EnvUnusable(f"environment {env_path} cannot be used: {facts.problem}; or {_PICK_ANOTHER}", gone=False)
    home = facts.pyvenv["home"] if facts.is_venv and facts.pyvenv is not None else None
    if home is not None and not fsread.is_dir(home):  # before its interpreter, which then dangles: the layer is whole
        raise EnvUnusable(
            f"the base of environment {env_path} was deleted ({home} no longer exists); "
            f"recreate the environment on an existing base or {_PICK_ANOTHER}",
            gone=True,
        )
    if facts.python_problem and not facts.kernels:
        raise EnvUnusable(
            f"environment {env_path} is broken: {facts.python_problem}; recreate it or {_PICK_ANOTHER}", gone=False
        )
    if home is None or facts.pyvenv is None:
        return facts, None
    return facts, _conda_base(env_path, facts.pyvenv)


def _conda_base(env_path: str, pyvenv: dict[str, str]) -> PrefixFacts | None:
    """The Conda env a layer was made from: its ``home``'s prefix, ``base-prefix``, or (the seed's nesting, when the
    base's python was a symlink that virtualenv resolved) the Conda env it sits in, on the same interpreter."""
    home = pyvenv["home"]
    home_prefix = os.path.dirname(home) if os.path.basename(home) in ("bin", "Scripts") else home
    for prefix in dict.fromkeys(p for p in (home_prefix, pyvenv.get("base-prefix")) if p):
        if fsread.is_dir(os.path.join(prefix, "conda-meta")):
            base = inspect_prefix(prefix)
            if base.is_conda:
                return base
    parent = os.path.dirname(env_path.rstrip(os.sep))
    if fsread.is_dir(os.path.join(parent, "conda-meta")):
        base = inspect_prefix(parent)
        interpreter = pyvenv.get("base-executable") or os.path.join(home, "python")
        if base.is_conda and base.python and os.path.realpath(base.python) == os.path.realpath(interpreter):
            return base
    return None


def _inherited_ipykernel(facts: PrefixFacts, base: PrefixFacts | None) -> bool:
    inherits = (facts.pyvenv or {}).get("include-system-site-packages", "false").lower() == "true"
    return inherits and base is not None and bool(base.has_ipykernel)


def _command(argv: list[str]) -> list[str]:
    """The kernel's own command: a spec's argv without the activate.d wrapper in front of it."""
    if len(argv) >= 2 and os.path.basename(argv[1]) == os.path.basename(activation.WRAPPER):
        return list(argv[2:])
    return list(argv)
