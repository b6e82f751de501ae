"""``jupyter layenv create|export|delete``: the same service as the REST API, from a terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_api import layenv
from jupyter_process import JUPYTER
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
        ([], "name: x\ndependencies: [python=2.7, ipykernel]\n", "--build-base builds one from the file's Conda"),
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


def test_no_fitting_base_names_a_few_unmet_specs_per_base_not_all(
    cli_env: dict[str, str], clean_create_home: Path, tmp_path: Path
):
    """An exported environment.yml pins every Conda package: on a server whose bases differ, the refusal listed each
    unmet spec of each of the closest bases, thousands of characters on one line. It names the first few of each
    base and how many more (the REST answer's ``bases`` keeps them all)."""
    yml = tmp_path / "environment.yml"
    missing = [f"notthere{i}=1.0" for i in range(12)]
    yml.write_text("name: x\ndependencies:\n" + "".join(f"  - {spec}\n" for spec in ["python=2.7", *missing]))
    proc = layenv("create", "--file", str(yml), env=cli_env)
    assert proc.returncode == 2, proc.stderr
    assert "python=2.7 (has 3." in proc.stderr and "notthere0=1.0 (missing)" in proc.stderr, proc.stderr
    assert "notthere11=1.0" not in proc.stderr, proc.stderr
    assert "and 8 more" in proc.stderr, proc.stderr
    assert len(proc.stderr) < 1200, proc.stderr


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


def test_a_name_differing_only_by_case_is_refused(cli_env: dict[str, str], clean_create_home: Path):
    """``ML`` beside ``ml``: one folder on a case-insensitive file system (a share from macOS or Windows), and one
    id and kernel name (they are lower case), so the first env's kernel would be renamed. Refused, nothing made,
    for a layer and for a Conda env."""
    from envtree import make_venv

    make_venv(clean_create_home / ".virtualenvs" / "ml")
    proc = layenv("create", "ML", "--base", "py311_ai", env=cli_env)
    assert proc.returncode == 5, proc.stderr
    assert f"{clean_create_home / '.virtualenvs' / 'ml'} differs from 'ML' only by case" in proc.stderr, proc.stderr
    assert sorted(os.listdir(clean_create_home / ".virtualenvs")) in (["ml"], [".layenv-locks", "ml"])
    envs = clean_create_home / ".conda" / "envs"
    (envs / "Stats").mkdir(parents=True)
    try:
        proc = layenv("create", "stats", "--conda", "python=3.11", f"--LayenvService.conda_envs_dir={envs}",
                      "--LayenvService.conda_channels=['file:///nowhere']", env=cli_env)  # fmt: skip
        assert proc.returncode == 5, proc.stderr
        assert f"{envs / 'Stats'} differs from 'stats' only by case" in proc.stderr, proc.stderr
        assert os.listdir(envs) == ["Stats"]
    finally:
        import shutil

        shutil.rmtree(clean_create_home / ".conda")


# ------------------------------------------------------------------ Ctrl-C


def _ctrl_c(args: list[str], env: dict[str, str], *, at_line: str | None = None, after: float | None = None):
    """Run ``jupyter layenv ARGS`` and press Ctrl-C (SIGINT to its process group, as a terminal does) once its live
    log prints ``at_line``, or ``after`` seconds; returns (exit code, stdout, stderr)."""
    proc = subprocess.Popen([JUPYTER, "layenv", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True, start_new_session=True)  # fmt: skip
    out: list[str] = []
    if at_line is not None:
        for line in proc.stdout:  # type: ignore[union-attr]
            out.append(line)
            if line.startswith(at_line):
                break
    else:
        time.sleep(after or 0)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, "".join(out) + stdout, stderr


def test_ctrl_c_as_a_create_ends_keeps_what_it_made_and_says_so(
    cli_env: dict[str, str], clean_create_home: Path, wheelhouse: Path
):
    """A Ctrl-C that comes once the job has succeeded (its log said so) changes nothing: the env is made and listed,
    the command says so and exits 0; it printed a KeyboardInterrupt traceback and died of SIGINT, as if it failed."""
    config = [f"--LayenvService.find_links=['{wheelhouse}']", "--LayenvService.offline=True"]
    args = ["create", "late", "--base", "conda-py311_ai", "--package", "iniconfig", *config]
    code, _, stderr = _ctrl_c(args, cli_env, at_line="== succeeded")
    path = clean_create_home / ".virtualenvs" / "late"
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert code == 0 and f"created {path}; kernel conda-py311_ai.late-py" in stderr, (code, stderr)
    listing = json.loads(layenv("list", "--json", env=cli_env).stdout)
    assert str(path) in {env["path"] for env in listing["environments"]}


def test_ctrl_c_cancels_the_job_it_follows(cli_env: dict[str, str], clean_create_home: Path, stalling_index):
    """The case the test below may never meet by its timings: Ctrl-C while the job surely runs (its resolver waits on
    an index that never answers) cancels it: `error: cancelled`, exit 1, nothing left, the name free."""
    args = ["create", "stuck", "--base", "conda-py311_ai", "--package", "iniconfig",
            f"--LayenvService.index_url={stalling_index.url}"]  # fmt: skip
    code, _, stderr = _ctrl_c(args, cli_env, at_line="== resolve")
    assert (code, stderr.strip()) == (1, "error: cancelled"), (code, stderr)
    assert not (clean_create_home / ".virtualenvs" / "stuck").exists()
    listed = {env["name"] for env in json.loads(layenv("list", "--json", env=cli_env).stdout)["environments"]}
    assert "stuck" not in listed


@pytest.mark.parametrize(
    "when", [{"after": 0.5}, {"after": 2.0}, {"after": 3.5}, {"at_line": "== create"}, {"at_line": "== install"}]
)
def test_ctrl_c_at_any_moment_of_a_create_leaves_nothing_half_made(
    cli_env: dict[str, str], clean_create_home: Path, wheelhouse: Path, when: dict
):
    """Ctrl-C while the command loads, checks the request or runs the job: one `error:` line, exit 1, no traceback,
    and no env (the job, once queued, is cancelled and removes what it made); or, had the job already succeeded, the
    env, listed, and exit 0. Never something in between, and the name is free again."""
    config = [f"--LayenvService.find_links=['{wheelhouse}']", "--LayenvService.offline=True"]
    args = ["create", "early", "--base", "conda-py311_ai", "--package", "iniconfig", *config]
    code, _, stderr = _ctrl_c(args, cli_env, **when)
    path = clean_create_home / ".virtualenvs" / "early"
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    listed = {env["path"] for env in json.loads(layenv("list", "--json", env=cli_env).stdout)["environments"]}
    if code == 0:
        assert path.is_dir() and str(path) in listed
        return
    # "cancelled", or "interrupted" while it loaded; rarely a step's own failure: a step spawned as Ctrl-C comes
    # receives it too before it leaves the command's process group (then "create failed (virtualenv exited with -2)")
    assert code == 1 and stderr.count("error:") == 1, stderr
    assert not path.exists() and str(path) not in listed, stderr
    again = layenv("create", "early", "--base", "conda-py311_ai", *config, env=cli_env)
    assert again.returncode == 0, again.stderr  # not "exists already", not "another job is working on it"
