"""The one way an environment a person named is found: by id, path, name (as `list` prints it) or kernel name.

Every place that takes an env from a person (the CLI's NAME and --base, a request's ``base``) goes through
:func:`resolve_env`, so they all accept the same words and refuse them the same way: an ambiguous name lists the
candidates, an unknown one suggests the closest names.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping

from . import fsread
from .model import Discovered, Environment
from .policy import BASE_KINDS, PolicyError

MAX_SUGGESTIONS = 3


def resolve_env(
    discovered: Discovered,
    ref: str,
    *,
    role: str = "environment",
    kernels: Mapping[str, str] | None = None,
    suitable: Callable[[Environment], bool] | None = None,
    also: Iterable[Environment] = (),
) -> Environment:
    """The env ``ref`` names; a :class:`PolicyError` saying what to type instead when it names none or several.

    ``role`` is how the message calls it ("environment", "base"); ``kernels`` maps kernel names to env ids (a
    kernel name `list` prints names its env); ``suitable`` narrows a shared name and the suggestions (a base: Conda
    envs);
    ``also`` are envs discovery does not list but a person may name (a layer whose base was deleted).
    An unknown environment is a 404, an unknown base a 400 (a bad field of a request), an ambiguous name a 400.
    """
    ref = ref.strip()
    envs = (*discovered.environments, *also)
    env = _by_path(envs, ref) if "/" in ref or "\\" in ref else next((e for e in envs if e.id == ref), None)
    if env is not None:
        return env
    named = [env for env in envs if env.name == ref]
    if len(named) > 1 and suitable is not None:  # a layer named like its base is never what --base means
        named = [env for env in named if suitable(env)] or named
    if len(named) == 1:
        return named[0]
    if named:
        listed = "; ".join(f"{env.id} ({env.path})" for env in named)
        raise PolicyError(400, f"{len(named)} environments are named {ref!r}: name one by its id or path: {listed}",
                          "ambiguous name")  # fmt: skip
    env_id = (kernels or {}).get(ref)
    by_kernel = discovered.by_id(env_id) if env_id else None
    if by_kernel is not None:
        return by_kernel
    hint = _did_you_mean(discovered, ref, suitable)
    if role == "environment":
        raise PolicyError(404, f"environment {ref!r} not found (see GET environments){hint}", "not found")
    raise PolicyError(
        400, f"{role} {ref!r} is not a known environment: use the name, id or path of a Conda env "
        f"(see GET environments){hint}", f"unknown {role}")  # fmt: skip


def is_conda(env: Environment) -> bool:
    """What a layer can be built on: the suggestions for a mistyped base."""
    return env.kind in BASE_KINDS


def _by_path(envs: tuple[Environment, ...], ref: str) -> Environment | None:
    """The env at that path, or at the directory it reaches another way (a symlink): matched by device and inode."""
    path = fsread.expand(ref)
    env = next((env for env in envs if env.path == path), None)
    if env is not None:
        return env
    try:
        st = os.stat(path)
    except OSError:
        return None
    return next((env for env in envs if env.dir_id == (st.st_dev, st.st_ino)), None)


def _did_you_mean(discovered: Discovered, ref: str, suitable: Callable[[Environment], bool] | None) -> str:
    """``"; did you mean 'py311_ai'?"``: the closest envs by name or id, each called by its name when unique."""
    names = [env.name for env in discovered.environments]
    words: dict[str, str] = {}  # a lower-cased word compared with the ref -> how to call that env
    for env in discovered.environments:
        if suitable is None or suitable(env):
            call = env.name if names.count(env.name) == 1 else env.id
            for word in (env.name, env.id):
                words.setdefault(word.lower(), call)
    close = difflib.get_close_matches(ref.lower(), list(words), n=2 * MAX_SUGGESTIONS, cutoff=0.6)
    calls = list(dict.fromkeys(words[word] for word in close))[:MAX_SUGGESTIONS]
    return ("; did you mean " + " or ".join(repr(call) for call in calls) + "?") if calls else ""
