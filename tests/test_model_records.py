"""The per-env records' generated ``__init__`` (model.fast_init) behaves as the dataclass one it replaces."""

from __future__ import annotations

import dataclasses

import pytest

from jupyter_layenv.locators.prefix import inspect_prefix
from jupyter_layenv.model import Activation, Environment


def test_fast_init_matches_the_dataclass_init_and_stays_frozen_for_the_type_checker():
    fields = {f.name: f for f in dataclasses.fields(Environment)}
    args = ("id", "name", "/p", (1, 2), "venv", None, "/p/bin/python", "3.11", "user", True, 0, True)
    env = Environment(*args, creator="me", chain=("a", "b"))
    other = Environment(*args)
    assert [getattr(env, name) for name in list(fields)[: len(args)]] == list(args)
    assert (env.creator, env.chain, env.owner_gid, env.display_name) == ("me", ("a", "b"), -1, None)
    assert env.activation == Activation() and env.activation is not other.activation  # a fresh default each time
    assert not hasattr(env, "__dict__")  # slotted: no per-record dict for the garbage collector
    # declared frozen: mypy (run by CI) rejects an assignment to a field; at run time a slot is filled by a plain
    # assignment, which a frozen dataclass's raising __setattr__ would make four times dearer (model.fast_init)
    assert Environment.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert Environment.__setattr__ is object.__setattr__
    assert hash(env) == hash(dataclasses.replace(env)) and env != other
    assert dataclasses.replace(env, creator=None, chain=()) == other
    with pytest.raises(TypeError):
        Environment(*args[:-1])


def test_prefix_bin_dir_is_kept_without_changing_equality(tmp_path):
    facts = inspect_prefix(str(tmp_path))
    again = inspect_prefix(str(tmp_path))
    assert facts.bin_dir == str(tmp_path / "bin") and facts.bin_dir is facts.bin_dir
    assert facts == again and hash(facts) == hash(again)  # again has not computed its bin_dir yet
    assert dataclasses.replace(facts, creator="x").bin_dir == facts.bin_dir
