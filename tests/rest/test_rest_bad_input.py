"""Every bad input of the issue, each its own test: the error JSON, a message saying what to change, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from envtree import make_layered_env
from layenv_api import BASE_ID, create, fetch_json
from tornado.httpclient import HTTPClientError


def snapshot(*roots: Path) -> dict[str, int]:
    """Every path under the roots with its mtime: a refused request must change none of them."""
    seen = {}
    for root in roots:
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != ".cache"]
            for name in [*dirs, *files]:
                path = os.path.join(directory, name)
                seen[path] = os.lstat(path).st_mtime_ns
        seen[str(root)] = os.lstat(root).st_mtime_ns if os.path.lexists(root) else -1
    return seen


@pytest.fixture
def unchanged(create_home: Path, jp_data_dir: Path, jp_serverapp):
    """Asserts after the test that neither the env roots nor the job store changed."""
    (create_home / ".virtualenvs" / "taken").mkdir()
    roots = [create_home / ".virtualenvs", create_home / "miniconda3" / "envs", jp_data_dir]
    before = snapshot(*roots)
    yield
    assert snapshot(*roots) == before


def assert_error(code: int, body: dict, status: int, *hints: str) -> None:
    assert code == status, body
    assert set(body) == {"message", "reason"}, body
    for hint in hints:
        assert hint in body["message"], body["message"]


VALID = {"name": "okname", "base": BASE_ID}

BAD_NAMES = ["../x", "a/b", "-rf", "", "x" * 65, " spaced", "name\n", ".hidden"]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_name(jp_fetch, unchanged, name: str):
    assert_error(*await create(jp_fetch, {**VALID, "name": name}), 400, "invalid env name", "letters, digits")


async def test_name_not_a_string(jp_fetch, unchanged):
    assert_error(*await create(jp_fetch, {**VALID, "name": 7}), 400, "invalid env name int")


async def test_name_that_exists(jp_fetch, unchanged):
    assert_error(*await create(jp_fetch, {**VALID, "name": "taken"}), 409, "exists already", "pick another name")


async def test_name_at_the_64_limit_is_accepted_until_its_base_check(jp_fetch, unchanged):
    code, body = await create(jp_fetch, {**VALID, "name": "x" * 64, "base": "conda-nope"})
    assert_error(code, body, 400, "not a known environment")  # the name passed; the bad base refused it


BAD_SPECS = {
    "not PEP 508": ("flask>>=2!!", "not a PEP 508 requirement"),
    "URL": ("https://example.com/flask-3.0.0-py3-none-any.whl", "is a URL"),
    # refused by an administrator's rule (403, the rule named), not by the syntax
    "direct reference": ("flask @ https://example.com/flask.whl", "LayenvPolicy.allow_direct_references"),
    "file URL": ("flask @ file:///tmp/flask.whl", "LayenvPolicy.allow_direct_references"),
    "relative path": ("./local/pkg", "local path"),
    "absolute path": ("/etc/passwd", "local path"),
    "-e": ("-e .", "installer option"),
    "-r": ("-r /etc/passwd", "installer option"),
    "--index-url": ("--index-url=http://evil.example/simple", "installer option"),
    "--extra-index-url": ("--extra-index-url http://evil.example/simple", "installer option"),
    "--trusted-host": ("--trusted-host evil.example", "installer option"),
    "empty": ("   ", "empty package spec"),
}


def _status(hint: str) -> int:
    return 403 if hint.startswith("LayenvPolicy.") else 400


@pytest.mark.parametrize("spec", BAD_SPECS.values(), ids=BAD_SPECS.keys())
async def test_bad_package_spec(jp_fetch, unchanged, spec: tuple[str, str]):
    text, hint = spec
    code, body = await create(jp_fetch, {**VALID, "packages": ["iniconfig", text]})
    assert_error(code, body, _status(hint), "packages", hint)


@pytest.mark.parametrize(
    "spec", [v for k, v in BAD_SPECS.items() if k != "empty"], ids=[k for k in BAD_SPECS if k != "empty"]
)
async def test_bad_line_in_requirements_text(jp_fetch, unchanged, spec: tuple[str, str]):
    text, hint = spec
    code, body = await create(jp_fetch, {**VALID, "requirements": f"# my project\niniconfig==2.0.0\n{text}\n"})
    assert_error(code, body, _status(hint), "requirements line 3", hint)


async def test_requirements_line_continuation(jp_fetch, unchanged):
    code, body = await create(jp_fetch, {**VALID, "requirements": "iniconfig \\\n  ==2.0.0\n"})
    assert_error(code, body, 400, "line continuations")


async def test_packages_not_a_list(jp_fetch, unchanged):
    assert_error(*await create(jp_fetch, {**VALID, "packages": "iniconfig"}), 400, "list of strings")


@pytest.mark.parametrize("base", ["conda-nope", "/nonexistent/env", ""])
async def test_base_not_a_known_environment(jp_fetch, unchanged, base: str):
    code, body = await create(jp_fetch, {**VALID, "base": base})
    assert_error(code, body, 400, "base")
    assert "GET environments" in body["message"]


async def test_base_not_a_conda_env(jp_fetch, jp_data_dir: Path, create_home: Path):
    """A layer on a layer would not inherit its packages: refused, naming the kinds that work."""
    layer = make_layered_env(create_home / "miniconda3" / "envs" / "py311_ai", create_home / ".virtualenvs" / "lay")
    roots = [create_home / ".virtualenvs", jp_data_dir]
    before = snapshot(*roots)
    code, body = await create(jp_fetch, {**VALID, "base": "conda-py311_ai.lay"})
    assert_error(code, body, 400)
    assert body["message"] == (
        "base 'lay' is a layered environment: a layer must be built on a Conda environment "
        "(kind conda-base or conda-env), whose packages it can inherit"
    )
    code, body = await create(jp_fetch, {**VALID, "base": str(layer)})
    assert_error(code, body, 400, "is a layered environment:")
    assert snapshot(*roots) == before


async def test_kind_refusals_name_the_kind_in_words(jp_fetch, create_home: Path):
    """A refusal that names what an env is says it with a noun ("is a layered environment", not "is a layered")."""
    make_layered_env(create_home / "miniconda3" / "envs" / "py311_ai", create_home / ".virtualenvs" / "lay")
    code, body = await fetch_json(
        jp_fetch, "environments", "conda-py311_ai.lay", "export", params={"format": "explicit"}
    )
    assert code == 400, body
    assert body["message"].startswith(
        "lay is a layered environment: an explicit spec lists Conda packages, so export a Conda env;"
    ), body
    code, body = await fetch_json(jp_fetch, "environments", "conda-py311_ai", "packages", method="POST",
                                  body=json.dumps({"add": ["iniconfig"], "dry_run": True}))  # fmt: skip
    assert code == 403, body
    assert body["message"] == (
        "py311_ai is a Conda environment: jupyter_layenv changes the packages of layers and venvs"
    ), body


@pytest.mark.parametrize("inherit", ["yes", 1, None, "true"])
async def test_inherit_not_a_boolean(jp_fetch, unchanged, inherit):
    assert_error(*await create(jp_fetch, {**VALID, "inherit": inherit}), 400, "'inherit' must be true or false")


@pytest.mark.parametrize("display_name", ["", "x" * 129, "a\nb", 3])
async def test_bad_display_name(jp_fetch, unchanged, display_name):
    assert_error(*await create(jp_fetch, {**VALID, "display_name": display_name}), 400, "display_name")


async def test_unknown_field(jp_fetch, unchanged):
    assert_error(*await create(jp_fetch, {**VALID, "index_url": "http://evil"}), 400, "unknown field(s) index_url")


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "null"])
async def test_body_not_a_json_object(jp_fetch, unchanged, body: str):
    code, reply = await fetch_json(jp_fetch, "environments", method="POST", body=body)
    assert_error(code, reply, 400, "JSON object")


async def test_oversized_body(jp_fetch, unchanged):
    body = json.dumps({**VALID, "requirements": "# padding\n" * (1024 * 1024 // 10)})
    assert len(body) > 1024 * 1024
    code, reply = await fetch_json(jp_fetch, "environments", method="POST", body=body)
    assert_error(code, reply, 413, "request body over 1048576 bytes")


UNKNOWN = [
    ("GET", ("environments", "conda-nope"), 404),
    ("DELETE", ("environments", "conda-nope"), 404),
    ("GET", ("environments", "conda-nope", "export"), 404),
    ("GET", ("jobs", "0" * 32), 404),
    ("GET", ("jobs", "not-a-job-id"), 404),
    ("GET", ("jobs", "0" * 32, "log"), 404),
    ("DELETE", ("jobs", "0" * 32), 404),
]


@pytest.mark.parametrize(("method", "parts", "status"), UNKNOWN, ids=[f"{m} {'/'.join(p)}" for m, p, _ in UNKNOWN])
async def test_unknown_ids(jp_fetch, unchanged, method: str, parts: tuple[str, ...], status: int):
    assert_error(*await fetch_json(jp_fetch, *parts, method=method), status, "not found")


async def test_export_unknown_format(jp_fetch, unchanged):
    code, body = await fetch_json(jp_fetch, "environments", BASE_ID, "export", params={"format": "conda.lock"})
    assert_error(code, body, 400, "format=explicit")


async def test_log_offset_not_a_number(jp_fetch, unchanged):
    code, body = await fetch_json(jp_fetch, "jobs", "0" * 32, "log", params={"offset": "-1"})
    assert_error(code, body, 400, "offset must be a byte count")


async def test_delete_a_conda_install_root_is_forbidden(jp_fetch, unchanged):
    code, body = await fetch_json(jp_fetch, "environments", "conda-base", method="DELETE")
    assert_error(code, body, 403, "Conda install root")


@pytest.mark.parametrize(("method", "parts", "body"), [
    ("GET", ("environments",), None),
    ("POST", ("environments",), json.dumps(VALID)),
    ("GET", ("jobs",), None),
    ("DELETE", ("environments", "venv-taken"), None),
])  # fmt: skip
async def test_no_token_is_403(jp_fetch, unchanged, method: str, parts: tuple[str, ...], body: str | None):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("layenv", *parts, method=method, body=body, headers={"Authorization": ""})
    reply = json.loads(info.value.response.body)
    assert_error(info.value.code, reply, 403, "token")
