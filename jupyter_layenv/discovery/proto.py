"""Proto: what the builder made of one env, before ids and display chains (which depend on all envs) are added."""

from __future__ import annotations

from dataclasses import dataclass

from ..locators.prefix import PrefixFacts
from ..model import Activation, fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class Proto:
    """One listed env's kind, base, names and kernel facts; kept as the same object while its inputs are."""

    path: str
    name: str
    kind: str
    base: str | None
    chain: tuple[str, ...]
    facts: PrefixFacts
    base_facts: PrefixFacts | None
    version: str | None
    inherits: bool
    has_ipykernel: bool
    ipykernel_resources: str | None
    conda_env_name: str | None
    conda_root: str | None
    scope: str
    is_server_prefix: bool
    activation: Activation
