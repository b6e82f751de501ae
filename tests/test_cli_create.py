"""``jupyter layenv create|export|delete``: the same service as the REST API, from a terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_api import layenv
from wheelhouse import INICONFIG_VERSION


def test_cli_create_export_delete(cli_env: dict[str, str], clean_create_home: Path, wheelhouse: Path, tmp_path: Path):
    config = [f"--LayenvService.find_links=['{wheelhouse}']", "--LayenvService.offline=True"]
    proc = layenv("create", "clienv", "--base", "conda-py311_ai", "--package", "iniconfig", *config,
                  env=cli_env, tty=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    path = clean_create_home / ".virtualenvs" / "clienv"
    assert f"[{'#' * 30}] 100% done" in proc.stderr  # the progress bar, drawn as the job goes
    assert "uv pip install" in proc.stdout and "== succeeded" in proc.stdout  # the live log
    assert f"created {path}; kernel conda-py311_ai.clienv-py" in proc.stderr

    listing = json.loads(layenv("list", "--json", env=cli_env).stdout)
    assert str(path) in {env["path"] for env in listing["environments"]}

    exported = layenv("export", "clienv", "--format", "requirements.txt", env=cli_env)
    assert exported.returncode == 0 and f"iniconfig=={INICONFIG_VERSION}" in exported.stdout.splitlines()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(exported.stdout)
    proc = layenv("create", "clicopy", "--base", "conda-py311_ai", "-r", str(requirements), "--json", *config,
                  env=cli_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["environment"]["kernels"][0]["name"] == "conda-py311_ai.clicopy-py"
    yml = layenv("export", "clicopy", env=cli_env).stdout
    assert yml.startswith("name: clicopy\n") and f"      - iniconfig=={INICONFIG_VERSION}" in yml

    assert layenv("delete", "clienv", env=cli_env).returncode == 0
    assert not path.exists() and (clean_create_home / ".virtualenvs" / "clicopy").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "../x", "--base", "conda-py311_ai"], "invalid env name"),
        (["create", "ok", "--base", "conda-nope"], "not a known environment"),
        (["create", "ok", "--base", "conda-py311_ai", "--package=--index-url=http://evil"], "installer option"),
        (["create", "ok", "--base", "conda-py311_ai", "--package", "./here"], "local path"),
        (["delete", "conda-base"], "install root"),
        (["delete", "nothing-here"], "not found"),
        (["export", "conda-py311_ai", "--format", "pdf"], "environment.yml"),
    ],
)
def test_cli_refuses_bad_input_and_writes_nothing(cli_env: dict[str, str], clean_create_home: Path, args, message):
    before = sorted(os.listdir(clean_create_home / ".virtualenvs"))
    proc = layenv(*args, env=cli_env)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert sorted(os.listdir(clean_create_home / ".virtualenvs")) == before


def test_cli_create_in_a_group_root(cli_env: dict[str, str], clean_create_home: Path):
    """--root picks a group root from LayenvKernelSpecManager.group_roots; one it does not know is refused."""
    group_root = clean_create_home / "srv" / "physics"
    group_root.mkdir(parents=True, exist_ok=True)
    config = [f"--LayenvKernelSpecManager.group_roots=['{group_root.parent}/*']"]
    proc = layenv("create", "nowhere", "--base", "conda-py311_ai", "--root", "group:chemistry", *config, env=cli_env)
    assert proc.returncode == 2 and "unknown root 'group:chemistry'" in proc.stderr and "group:physics" in proc.stderr
    proc = layenv("create", "shared", "--base", "conda-py311_ai", "--root", "group:physics", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((group_root / "shared" / "layenv.json").read_text())["creator"]
    listing = json.loads(layenv("list", "--json", *config, env=cli_env).stdout)
    shared = next(env for env in listing["environments"] if env["path"] == str(group_root / "shared"))
    assert shared["scope"] == "group" and shared["delete_blocked_reason"] is None
    assert layenv("delete", "shared", *config, env=cli_env).returncode == 0
    assert not (group_root / "shared").exists()


# ------------------------------------------------------------------ create --file environment.yml


def test_cli_round_trip_through_an_environment_yml(cli_env: dict[str, str], wheelhouse: Path, tmp_path: Path):
    config = [f"--LayenvService.find_links=['{wheelhouse}']", "--LayenvService.offline=True"]
    proc = layenv("create", "fromcli", "--base", "conda-py311_ai", "--package", "iniconfig", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    before = layenv("export", "fromcli", "--format", "requirements.txt", env=cli_env).stdout
    yml = tmp_path / "environment.yml"
    yml.write_text(layenv("export", "fromcli", env=cli_env).stdout)
    assert layenv("delete", "fromcli", env=cli_env).returncode == 0

    proc = layenv("create", "--file", str(yml), *config, env=cli_env)  # the name from the file
    assert proc.returncode == 0, proc.stderr
    assert "kernel conda-py311_ai.fromcli-py" in proc.stderr
    after = layenv("export", "fromcli", "--format", "requirements.txt", env=cli_env).stdout
    assert after == before and f"iniconfig=={INICONFIG_VERSION}" in after.splitlines()

    proc = layenv("create", "renamed", "-f", str(yml), *config, env=cli_env)  # NAME wins over the file's
    assert proc.returncode == 0, proc.stderr
    assert "kernel conda-py311_ai.renamed-py" in proc.stderr


@pytest.mark.parametrize(
    ("args", "text", "message"),
    [
        (["--base", "conda-py311_ai"], "name: x\ndependencies: [python]\n", "--file replaces --base"),
        (["a", "b"], "name: x\ndependencies: [python]\n", "at most one environment name"),
        ([], None, "cannot read"),
        ([], "dependencies: [python]\n", "no 'name:'"),
        ([], "name: x\ndependencies: [python=2.7, ipykernel]\n", "python=2.7 (has 3."),
        ([], "name: x\ndependencies: [{pip: [--index-url=http://evil/simple]}]\n", "installer option"),
    ],
)
def test_cli_refuses_bad_files_and_writes_nothing(
    cli_env: dict[str, str], clean_create_home: Path, tmp_path: Path, args, text, message
):
    yml = tmp_path / "environment.yml"
    if text is not None:
        yml.write_text(text)
    before = sorted(os.listdir(clean_create_home / ".virtualenvs"))
    proc = layenv("create", *args, "--file", str(yml), env=cli_env)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert sorted(os.listdir(clean_create_home / ".virtualenvs")) == before


def test_cli_refuses_a_conda_env_discovery_would_not_list(cli_env: dict[str, str], clean_create_home: Path):
    """The REST refusal, from a terminal: exit 1, the directory and the settings named, no REST words, nothing made."""
    envs = clean_create_home / "scratch" / "envs"
    proc = layenv(
        "create",
        "hidden",
        "--conda",
        "python=3.11",
        f"--LayenvService.conda_envs_dir={envs}",
        "--LayenvService.conda_channels=['file:///nowhere']",
        "--LayenvKernelSpecManager.environments_files=[]",
        env=cli_env,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {envs / 'hidden'} would not be listed, so it is not built: "), proc.stderr
    assert "LayenvKernelSpecManager.envs_dirs" in proc.stderr and "GET " not in proc.stderr
    assert not (clean_create_home / "scratch").exists()
