"""An environment.yml whose Conda part no known base satisfies: build that base first, then the layer on it.

``POST environments {"environment_yml": …, "build_base": true}``. The base is a Conda env solved by py-rattler
from the *configured* channels (a ``channel::`` in a spec is dropped, the file's ``channels`` are only recorded),
named ``<layer name>-base``; its job, once the base is built and registered, queues the layer's job on exactly that
base and names it in its JSON (``then``). Nothing here writes to disk; blocking reads: call from a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import condabase, envfile
from .model import Discovered
from .policy import LayenvPolicy, PolicyError, bad_request

FIELD = "build_base"
PENDING = "(built first)"  # stands for the base while the request is checked, before the base exists


@dataclass(frozen=True)
class BaseFirst:
    layer: dict[str, Any]  # the POST body without build_base: the layer's create, once the base exists
    conda: dict[str, Any] | None  # the base's Conda create; None: a known base fits, no base to build


def asks(body: Any) -> bool:
    return isinstance(body, dict) and "environment_yml" in body and FIELD in body


def split(body: dict[str, Any], policy: LayenvPolicy, discovered: Discovered) -> BaseFirst:
    """The two creates a body with ``build_base`` amounts to, every field checked before anything is queued."""
    if not isinstance(body[FIELD], bool):
        raise bad_request(f"'{FIELD}' must be true or false (a JSON boolean)")
    layer = {key: value for key, value in body.items() if key != FIELD}
    try:
        envfile.request_from_file(layer, policy, discovered)
        return BaseFirst(layer, None)  # a known base satisfies the file: the layer goes on it
    except PolicyError as err:
        if not body[FIELD] or err.status != 422:
            raise
    file = envfile.parse(layer["environment_yml"], policy)
    name = layer.get("name") if layer.get("name") is not None else file.name
    if name is None:
        raise bad_request("environment.yml has no 'name:': give the new environment a name")
    fields = {key: layer[key] for key in ("display_name", "root", "inherit") if key in layer}
    policy.parse_create({**fields, "name": name, "base": PENDING, "packages": list(file.pip)})
    specs = base_specs(file)
    if not specs:
        raise bad_request("environment.yml has no Conda dependencies to build a base from (only pip); pick a base")
    conda = {"kind": "conda", "name": f"{name}-base"[:64], "packages": specs, "root": layer.get("root", "user")}
    condabase.parse_request(conda, policy.max_packages)  # a spec conda accepts but the builder would not: 400 now
    return BaseFirst({**layer, "name": name}, conda)


def base_specs(file: envfile.EnvironmentFile) -> list[str]:
    """The file's Conda specs for the configured channels: no ``channel::``, no bare ``pip`` (the layer's own)."""
    specs = []
    for spec in file.conda:
        if spec.name == "pip" and spec.bare:
            continue
        specs.append(spec.text.split("::", 1)[1] if spec.channel else spec.text)
    return specs
