"""What a request may ask for: env names, package specs, bases, and which envs may be deleted.

Every refusal is a :class:`PolicyError` whose message says what to change. Nothing here touches the disk
(callers refuse before they write), and nothing imports the server, so the CLI applies the same rules.
The shared-server rules (who may create where) extend :class:`Policy` later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from traitlets import Bool, Int
from traitlets.config import LoggingConfigurable

from .model import CONDA_BASE, CONDA_ENV, Discovered, Environment

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CREATE_FIELDS = {"name", "base", "packages", "requirements", "inherit", "display_name"}
BASE_KINDS = (CONDA_BASE, CONDA_ENV)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PolicyError(Exception):
    """A refused request: HTTP ``status``, a ``message`` saying what to change, and a short ``reason``."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


def bad_request(message: str, reason: str = "bad input") -> PolicyError:
    return PolicyError(400, message, reason)


@dataclass(frozen=True)
class CreateRequest:
    """A validated POST body: every field checked, every package spec normalized."""

    name: str
    base: str
    requirements: tuple[str, ...]
    inherit: bool
    display_name: str | None


class Policy(LoggingConfigurable):
    """Input validation and who may do what."""

    allow_direct_references = Bool(
        False,
        config=True,
        help="Allow PEP 508 direct references (`name @ https://…`, `name @ file:///…`) in package specs. "
        "Installer options (`-e`, `--index-url`…) are never allowed: the index comes from configuration.",
    )
    max_packages = Int(200, config=True, help="Most package specs one create request may name.")

    def parse_create(self, body: Any) -> CreateRequest:
        if not isinstance(body, dict):
            raise bad_request('send a JSON object like {"name": "myexp", "base": "conda-py311_ai"}')
        unknown = sorted(set(body) - CREATE_FIELDS)
        if unknown:
            raise bad_request(f"unknown field(s) {', '.join(unknown)}: allowed are {', '.join(sorted(CREATE_FIELDS))}")
        name = validate_name(body.get("name"))
        base = body.get("base")
        if not isinstance(base, str) or not base.strip():
            raise bad_request("'base' is required: the id or path of a Conda environment (see GET environments)")
        inherit = body.get("inherit", True)
        if not isinstance(inherit, bool):
            raise bad_request("'inherit' must be true or false (a JSON boolean, not a string or number)")
        packages = body.get("packages", [])
        if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
            raise bad_request('\'packages\' must be a list of strings like ["flask==3.0.3", "requests"]')
        text = body.get("requirements", "")
        if not isinstance(text, str):
            raise bad_request("'requirements' must be the text of a requirements.txt file (a string)")
        display_name = body.get("display_name")
        if display_name is not None and (
            not isinstance(display_name, str)
            or not display_name.strip()
            or len(display_name) > 128
            or _CONTROL.search(display_name)
        ):
            raise bad_request("'display_name' must be a non-empty string of at most 128 printable characters")
        specs = [*self.parse_specs(packages, "packages"), *self.parse_requirements_text(text)]
        if len(specs) > self.max_packages:
            raise bad_request(f"{len(specs)} package specs: at most {self.max_packages} per request")
        return CreateRequest(name, base.strip(), tuple(dict.fromkeys(specs)), inherit, display_name)

    def parse_specs(self, specs: Iterable[str], where: str) -> list[str]:
        return [self.parse_spec(spec, where) for spec in specs]

    def parse_requirements_text(self, text: str) -> list[str]:
        """The lines of a requirements.txt, each one a PEP 508 spec; options and continuations refused."""
        specs = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line.startswith("#"):
                continue
            line = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            if not line:
                continue
            if line.endswith("\\"):
                raise bad_request(f"requirements line {number}: line continuations ('\\') are not supported")
            specs.append(self.parse_spec(line, f"requirements line {number}"))
        return specs

    def parse_spec(self, spec: str, where: str) -> str:
        """One package spec, normalized; pip options, URLs and paths refused with the reason."""
        text = spec.strip()
        if not text:
            raise bad_request(f"{where}: empty package spec; remove it or name a package like 'requests>=2'")
        if len(text) > 500:
            raise bad_request(f"{where}: package spec longer than 500 characters")
        if text.startswith("-"):
            option = text.split()[0]
            raise bad_request(
                f"{where}: {option!r} is an installer option, not a package; options are not allowed "
                "(the index, find-links and proxy are set by the administrator). Use specs like 'flask==3.0.3'",
                "installer option",
            )
        if "://" in text and "@" not in text:
            raise bad_request(f"{where}: {text!r} is a URL; name a package from the index instead", "url")
        try:
            req = Requirement(text)
        except InvalidRequirement as err:
            if text.startswith((".", "~", "/", "\\")) or "/" in text.split(";")[0] or "\\" in text:
                raise bad_request(
                    f"{where}: {text!r} is a local path; name a package from the index instead", "path"
                ) from None
            raise bad_request(
                f"{where}: {text!r} is not a PEP 508 requirement ({err}); write it like 'name', 'name==1.2' "
                "or 'name[extra]>=1,<2'",
                "not PEP 508",
            ) from None
        if req.url and not self.allow_direct_references:
            raise bad_request(
                f"{where}: {text!r} is a direct reference (URL or path); name a package from the index instead "
                "(an administrator may allow these with Policy.allow_direct_references)",
                "url",
            )
        return str(req)

    def check_base(self, base: Environment | None, wanted: str) -> Environment:
        """The base must be a known, usable Conda environment (a layer on a layer would not inherit it)."""
        if base is None:
            raise bad_request(
                f"base {wanted!r} is not a known environment: use the id or path of a Conda env "
                "from GET environments (or `jupyter layenv list`)",
                "unknown base",
            )
        if base.kind not in BASE_KINDS:
            raise bad_request(
                f"base {base.id!r} is a {base.kind}: a layer must be built on a Conda environment "
                "(kind conda-base or conda-env), whose packages it can inherit",
                "base not a Conda env",
            )
        if not base.python or not os.path.exists(base.python):
            raise bad_request(f"base {base.id!r} has no working Python interpreter; pick another base", "no python")
        return base

    def check_delete(self, env: Environment, discovered: Discovered, uid: int) -> None:
        refusal = self.delete_refusal(env, discovered, uid)
        if refusal is not None:
            raise refusal

    def delete_refusal(self, env: Environment, discovered: Discovered, uid: int) -> PolicyError | None:
        """Why ``env`` may not be deleted (only the caller's own, writable layers and venvs may), or ``None``.

        The listing carries this reason too, so the panel explains a disabled delete without its own rules.
        """
        if env.kind in BASE_KINDS:
            return PolicyError(
                403,
                f"{env.id} is a Conda environment: jupyter_layenv deletes only layers and venvs; "
                f"use `conda remove -p {env.path} --all`",
                "conda env",
            )
        if env.is_server_prefix:
            return PolicyError(403, f"{env.id} is the environment this Jupyter server runs in", "server env")
        layers = [layer.name for layer in discovered.layers.get(env.path, ())]
        if layers:
            return PolicyError(403, f"{env.id} is the base of {', '.join(layers)}; delete those first", "is a base")
        if uid != 0 and env.owner_uid != uid:
            return PolicyError(403, f"{env.id} belongs to another user (uid {env.owner_uid})", "not yours")
        if not env.writable or not os.access(os.path.dirname(env.path), os.W_OK | os.X_OK):
            return PolicyError(403, f"{env.id} is read-only for this server's user", "read-only")
        return None


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = repr(name) if isinstance(name, str) else type(name).__name__
        raise bad_request(
            f"invalid env name {shown}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (no '/', no spaces)",
            "invalid name",
        )
    return name


def requirement_names(specs: Iterable[str]) -> set[str]:
    return {canonicalize_name(Requirement(spec).name) for spec in specs}
