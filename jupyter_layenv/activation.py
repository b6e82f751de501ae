"""What a kernel process needs to run "activated": PATH, the activation variables, activate.d scripts.

Plain envs get everything through the kernelspec's ``env`` (no extra process). Only an env (or base)
with ``etc/conda/activate.d/*.sh`` scripts is started through ``resources/activate.sh``, which sources
them and then ``exec``s the kernel, so the kernel keeps the wrapper's PID and signals.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .locators.prefix import PrefixFacts
from .model import Activation, require_field_order

WRAPPER = str(Path(__file__).parent / "resources" / "activate.sh")
SCRIPTS_VAR = "LAYENV_ACTIVATE_SCRIPTS"
# The server's own Python settings, never an env's: a kernel starts with the server's environment plus its spec's
# ``env``, so a spec takes them away by setting them empty (Python ignores an empty PYTHONPATH or PYTHONHOME).
SERVER_ONLY = {"PYTHONPATH": "", "PYTHONHOME": ""}


def activation_for(
    facts: PrefixFacts,
    *,
    base: PrefixFacts | None,
    conda_env_name: str | None,
) -> Activation:
    """Layer first, then its base: PATH order, CONDA_PREFIX from the Conda part, VIRTUAL_ENV from the venv part."""
    conda_part = facts if facts.is_conda else base if base is not None and base.is_conda else None
    path_dirs = (facts.bin_dir,) if base is None else (facts.bin_dir, base.bin_dir)
    # Activation's fields by position (see _ACTIVATION_FIELDS); made per listed env, so the common cases (a plain venv,
    # a Conda env or layer without state variables or activate.d scripts) build their tuples directly: no dict, list
    # or generator to throw away
    if conda_part is None:
        return Activation(path_dirs, (("VIRTUAL_ENV", facts.path),) if facts.is_venv else (), ())
    variables = _conda_variables(facts, conda_part, conda_env_name)
    if not conda_part.state_env_vars and not conda_part.activate_scripts:
        return Activation(path_dirs, variables, ())
    env_vars = dict(variables)
    env_vars.update(conda_part.state_env_vars)  # `conda env config vars` may set any of them
    scripts = tuple((conda_part.path, script) for script in conda_part.activate_scripts)
    return Activation(path_dirs=path_dirs, env_vars=tuple(env_vars.items()), scripts=scripts)


def _conda_variables(
    facts: PrefixFacts, conda_part: PrefixFacts, conda_env_name: str | None
) -> tuple[tuple[str, str], ...]:
    """What ``conda activate`` sets (and, for a layer, ``activate`` of its venv): the one place they are built."""
    conda = (("CONDA_PREFIX", conda_part.path), ("CONDA_DEFAULT_ENV", conda_env_name or conda_part.path))
    return (("VIRTUAL_ENV", facts.path), *conda) if facts.is_venv else conda


_ACTIVATION_FIELDS = ("path_dirs", "env_vars", "scripts")
require_field_order(Activation, _ACTIVATION_FIELDS, "activation.activation_for")


def kernel_launch(activation: Activation, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and env of a kernelspec that starts ``argv`` activated.

    ``${PATH}`` is substituted by jupyter_client with the launching server's PATH, so specs written to
    disk by ``jupyter layenv sync`` stay correct for nbconvert or papermill too.
    """
    env = dict(SERVER_ONLY)
    env.update(activation.env_vars)
    env["PATH"] = os.pathsep.join((*activation.path_dirs, "${PATH}"))
    if not activation.scripts:
        return list(argv), env
    env[SCRIPTS_VAR] = "\n".join(script for _prefix, script in activation.scripts)
    return [wrapper_shell(), WRAPPER, *argv], env


def wrapper_shell() -> str:
    """bash, as ``conda activate`` would source the scripts in an interactive shell; sh where bash is absent."""
    return shutil.which("bash", path="/bin:/usr/bin") or "/bin/sh"
