"""The CLI in a user's words: every name `list` prints is accepted, a typo gets a suggestion, an ambiguous name the
candidates, errors speak CLI (not REST), and each kind of error has its own exit code (README "Command line")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_api import layenv
from envtree import make_venv
from wheelhouse import write_wheel

from jupyter_layenv.cli import SyncApp

# README "Command line": one exit code per kind of outcome, written out (a test fails when the code's numbers move)
OK, FAILED, USAGE, NOT_FOUND, NOT_ALLOWED, CONFLICT = 0, 1, 2, 3, 4, 5


def assert_cli_words(proc: subprocess.CompletedProcess) -> None:
    """A refusal is one `error:` line in terminal words: no REST verbs, no traceback, no log noise, no usage."""
    for noise in ("GET ", "POST ", "Traceback", "CRITICAL", "usage:"):
        assert noise not in proc.stderr, proc.stderr
    assert proc.stderr.count("error:") == 1, proc.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["create", "ok", "--base", "py311_ia"], USAGE, "did you mean 'py311_ai'?"),
        (["create", "ok", "--base", "bse"], USAGE, "did you mean 'base'?"),
        (["delete", "py311_ia"], NOT_FOUND, "environment 'py311_ia' not found"),
        (["delete", "py311_ia"], NOT_FOUND, "did you mean 'py311_ai'?"),
        (["delete", "nothere"], NOT_FOUND, "see `jupyter layenv list`"),
        (["delete", "conda-base"], NOT_ALLOWED, "never deletes one"),
        (["create", "ok", "--base", "py311_ai", "--package", "--index-url=http://evil"], USAGE,
         "'--index-url=http://evil' is an installer option"),
        (["export", "py311_ai", "--format", "yaml"], USAGE,
         "--format: 'yaml' is not valid; expected one of 'environment.yml', 'requirements.txt'"),
        (["create", "ok", "--bse", "py311_ai"], USAGE, "unknown option --bse; did you mean '--base'?"),
        (["create", "ok", "--base"], USAGE, "--base needs a value"),
        (["create", "ok", "--base", "py311_ai", "-r", "/nonexistent/req.txt"], USAGE, "cannot read it"),
        (["export"], USAGE, "give exactly one environment NAME"),
        (["lsit"], USAGE, "unknown command 'lsit'; did you mean 'list'?"),
        (["create", "ok", "--base", "py311_ai", "--package", "iniconfig", "nbthing"], USAGE,
         "give exactly one environment NAME (got 2: ok nbthing; an option takes one value: repeat it for more"),
        (["create", "ok", "--conda", "python=3.11", "numpy"], USAGE, "got 2: ok numpy"),
        (["install", "py311_ai", "--dry-run", "iniconfig"], NOT_ALLOWED,
         "py311_ai is a Conda environment: jupyter_layenv changes the packages of layers and venvs"),
        (["create", "ok", "--conda", "python=3.11", "--package", "iniconfig"], USAGE,
         "--conda makes a Conda env from Conda specs alone: --package does not apply to it"),
        (["create", "ok", "--conda", "python=3.11", "--base", "py311_ai", "--no-inherit"], USAGE,
         "--base, --no-inherit do not apply to it"),
        (["create", "ok", "--base", "py311_ai", "--no-ipykernel"], USAGE, "--no-ipykernel goes with --conda"),
        (["create", "ok", "--base", "py311_ai", "--build-base"], USAGE, "--build-base goes with --file"),
        (["sync", "py311_ai"], USAGE, "`jupyter layenv sync` takes no NAME (got py311_ai)"),
        (["list", "py311_ai", "--json"], USAGE, "`jupyter layenv list` takes no NAME"),
        (["export", "py311_ai", "--json"], USAGE, "--json does not apply to export: it prints the file"),
    ],
)  # fmt: skip
def test_cli_errors_in_cli_words_with_one_exit_code_per_kind(
    cli_env: dict[str, str], clean_create_home: Path, args: list[str], code: int, message: str
):
    proc = layenv(*args, env=cli_env)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert_cli_words(proc)
    assert os.listdir(clean_create_home / ".virtualenvs") == []  # a refusal writes nothing


def test_every_name_list_prints_is_accepted(cli_env: dict[str, str], clean_create_home: Path, tmp_path: Path):
    """`list` shows `base` and `py311_ai`: those names work wherever an env is named, as do ids, paths, kernels."""
    base_path = clean_create_home / "miniconda3" / "envs" / "py311_ai"
    (tmp_path / "link").symlink_to(base_path)  # a path reaching the env another way
    for ref in ("py311_ai", "conda-py311_ai", str(base_path), "conda-py311_ai-py", str(tmp_path / "link")):
        proc = layenv("export", ref, "--format", "environment.yml", env=cli_env)
        assert proc.returncode == 0, (ref, proc.stderr)
        assert proc.stdout.startswith("name: py311_ai\n"), ref
    proc = layenv("create", "onroot", "--base", "base", env=cli_env)  # the Conda root, as `list` names it
    assert proc.returncode == OK, proc.stderr
    layer = clean_create_home / ".virtualenvs" / "onroot"
    assert f"home = {clean_create_home / 'miniconda3' / 'bin'}\n" in (layer / "pyvenv.cfg").read_text()
    again = layenv("create", "onroot", "--base", "base", env=cli_env)
    assert again.returncode == CONFLICT and "exists already" in again.stderr
    assert_cli_words(again)
    assert layenv("delete", str(layer), env=cli_env).returncode == 0 and not layer.exists()


def test_delete_json_says_what_it_deleted(cli_env: dict[str, str], clean_create_home: Path):
    venv = make_venv(clean_create_home / ".virtualenvs" / "gone")
    listing = json.loads(layenv("list", "--json", env=cli_env).stdout)
    listed = {env["path"]: env["id"] for env in listing["environments"]}
    proc = layenv("delete", "gone", "--json", env=cli_env)
    assert proc.returncode == OK, proc.stderr
    assert json.loads(proc.stdout) == {"deleted": {"id": listed[str(venv)], "path": str(venv)}}
    assert not venv.exists()


def test_an_ambiguous_name_lists_the_candidates(cli_env: dict[str, str], clean_create_home: Path):
    first = make_venv(clean_create_home / ".virtualenvs" / "twin")
    second = make_venv(clean_create_home / ".venvs" / "twin")
    try:
        proc = layenv("delete", "twin", env=cli_env)
        assert proc.returncode == USAGE and "2 environments are named 'twin'" in proc.stderr
        assert str(first) in proc.stderr and str(second) in proc.stderr
        assert_cli_words(proc)
        assert first.exists() and second.exists()
        assert layenv("delete", str(second), env=cli_env).returncode == 0
        assert layenv("delete", "twin", env=cli_env).returncode == 0  # unique now
        assert not first.exists() and not second.exists()
    finally:
        shutil.rmtree(clean_create_home / ".venvs", ignore_errors=True)


def test_a_base_named_like_a_layer_is_the_conda_env_of_that_name(cli_env: dict[str, str], clean_create_home: Path):
    """A layer named after its base (``~/.virtualenvs/py311_ai``, as the seed names a project after its foundation)
    made ``--base py311_ai`` ambiguous, though a layer is never a base: the Conda env of that name is meant."""
    assert layenv("create", "py311_ai", "--base", "py311_ai", env=cli_env).returncode == 0
    proc = layenv("create", "second", "--base", "py311_ai", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "kernel conda-py311_ai.second-py" in proc.stderr
    proc = layenv("delete", "py311_ai", env=cli_env)  # a NAME that is not a base stays ambiguous
    assert proc.returncode == USAGE and "2 environments are named 'py311_ai'" in proc.stderr
    for name in ("second", "conda-py311_ai.py311_ai"):
        assert layenv("delete", name, env=cli_env).returncode == 0


def test_envs_sharing_a_name_are_told_apart(cli_env: dict[str, str], clean_create_home: Path):
    """A Conda env ``py311_ai`` in a second install (~/miniforge3) and a venv ``py311_ai``: ``--base py311_ai`` is
    ambiguous between the two Conda envs (the venv is never a base), and a message naming one of them says which
    (its path), where the name alone would name all three."""
    from envtree import make_conda_prefix

    forge = clean_create_home / "miniforge3"
    ours = clean_create_home / "miniconda3" / "envs" / "py311_ai"
    try:
        make_conda_prefix(forge, conda_root=True)
        theirs = make_conda_prefix(forge / "envs" / "py311_ai", ipykernel=True)
        venv = make_venv(clean_create_home / ".virtualenvs" / "py311_ai")
        proc = layenv("create", "lay", "--base", "py311_ai", env=cli_env)
        assert proc.returncode == USAGE and "2 environments are named 'py311_ai'" in proc.stderr, proc.stderr
        assert str(ours) in proc.stderr and str(theirs) in proc.stderr and str(venv) not in proc.stderr
        assert_cli_words(proc)
        assert layenv("create", "lay", "--base", str(ours), env=cli_env).returncode == OK
        proc = layenv("delete", str(ours), env=cli_env)
        assert proc.returncode == NOT_ALLOWED, proc.stderr
        assert f"py311_ai ({ours}) is the base of lay; delete those first" in proc.stderr, proc.stderr
        proc = layenv("delete", str(forge), env=cli_env)
        assert proc.returncode == NOT_ALLOWED and f"base ({forge}) is a Conda install root" in proc.stderr, proc.stderr
        listing = json.loads(layenv("list", "--json", env=cli_env).stdout)
        reasons = {env["path"]: env["delete_blocked_reason"] for env in listing["environments"]}
        assert reasons[str(ours)].startswith(f"py311_ai ({ours}) is the base of lay"), reasons[str(ours)]
        assert layenv("delete", "lay", env=cli_env).returncode == OK
    finally:
        shutil.rmtree(forge, ignore_errors=True)


def test_help_lines_are_whole(cli_env: dict[str, str]):
    proc = layenv("--help", env=cli_env)
    assert proc.returncode == 0
    assert SyncApp.description in proc.stdout.replace("\n    ", " ")


def test_a_failed_install_prints_its_error_once(cli_env: dict[str, str], tmp_path: Path):
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    proc = layenv("create", "nope", "--base", "py311_ai", "--package", "iniconfig",
                  f"--LayenvService.find_links=['{empty}']", "--LayenvService.offline=True", env=cli_env)  # fmt: skip
    assert proc.returncode == FAILED
    assert_failure_once(proc)
    assert proc.stdout.endswith("\n== failed\n")  # the log's trailer does not repeat the error either


def assert_failure_once(proc: subprocess.CompletedProcess) -> None:
    """The installer's output is in the log (stdout) as it ran; stderr adds one line, the job error's first."""
    assert "cause: Because iniconfig was not found" in proc.stdout
    assert "cause:" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No solution found" in last, proc.stderr
    assert (proc.stdout + proc.stderr).count(last.removeprefix("error: ")) == 1


def test_a_failed_change_prints_its_error_once(cli_env: dict[str, str], clean_create_home: Path, tmp_path: Path):
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    config = [f"--LayenvService.find_links=['{empty}']", "--LayenvService.offline=True"]
    assert layenv("create", "changing", "--base", "py311_ai", *config, env=cli_env).returncode == 0
    proc = layenv("install", "changing", "iniconfig", *config, env=cli_env)
    assert proc.returncode == FAILED
    assert_failure_once(proc)
    assert layenv("delete", "changing", env=cli_env).returncode == 0


def test_a_create_whose_env_discovery_skips_says_why_in_cli_words(
    cli_env: dict[str, str], clean_create_home: Path, tmp_path: Path
):
    """A package that overwrites the new env's pyvenv.cfg: the last step finds no env. The error names discovery's
    reason for skipping it and points at the log printed above (not at a REST path or a configuration trait)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "cfgclobber", "1.0", {"cfgclobber-1.0.data/data/pyvenv.cfg": "clobbered = yes\n"})
    proc = layenv("create", "clobbered", "--base", "py311_ai", "--package", "cfgclobber",
                  f"--LayenvService.find_links=['{wheels}']", "--LayenvService.offline=True", env=cli_env)  # fmt: skip
    assert proc.returncode == FAILED, proc.stderr
    path = clean_create_home / ".virtualenvs" / "clobbered"
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path} was built but is not listed: discovery skips it (garbled pyvenv.cfg"), last
    assert last.endswith(
        "a package installed into it probably broke it: see the install step in the log above, leave that package "
        f"out; {path} was removed, create it again"
    ), last
    for noise in ("GET ", "user_root", "Traceback"):
        assert noise not in proc.stderr, proc.stderr
    assert not path.exists()


def test_a_bad_package_spec_is_named_by_the_option_or_argument_it_came_in_on_one_line(
    cli_env: dict[str, str], clean_create_home: Path, tmp_path: Path
):
    """The service names where a bad spec was by its JSON field (``packages:``, ``add:``, ``remove:``,
    ``requirements line 2:``) and packaging's parse error spans three lines (the spec again, a caret): the terminal
    gets the option it typed, on one line."""
    requirements = tmp_path / "req.txt"
    requirements.write_text("iniconfig\n-e .\n")
    assert layenv("create", "words", "--base", "py311_ai", env=cli_env).returncode == 0
    for args, start in [
        (["create", "ok", "--base", "py311_ai", "--package", "a b"], "error: --package: 'a b' is not a PEP 508"),
        (["create", "ok", "--base", "py311_ai", "-r", str(requirements)], "error: -r file, line 2: '-e' is an"),
        (["install", "words", "a b"], "error: 'a b' is not a PEP 508 requirement"),
        (["install", "words", "--dry-run", "x @ https://host/x.whl"], "error: 'x @ https://host/x.whl' is a direct"),
        (["uninstall", "words", "a b"], "error: 'a b' is not a package name"),
    ]:
        proc = layenv(*args, env=cli_env)
        assert proc.returncode in (USAGE, NOT_ALLOWED), proc.stderr
        assert proc.stderr.startswith(start), (args, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert_cli_words(proc)
    assert layenv("delete", "words", env=cli_env).returncode == 0
