"""``jupyter layenv install|uninstall|history|rollback`` and ``export --format lock``, from a terminal."""

from __future__ import annotations

from pathlib import Path

from cli_api import layenv
from envtree import layer_dists


def test_cli_install_uninstall_history_rollback(
    cli_env: dict[str, str],
    clean_create_home: Path,
    faithful_wheelhouse: Path,
):
    config = [f"--LayenvService.find_links=['{faithful_wheelhouse}']", "--LayenvService.offline=True"]
    path = clean_create_home / ".virtualenvs" / "clilife"
    proc = layenv("create", "clilife", "--base", "conda-py311_ai", "--package", "iniconfig", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr

    proc = layenv("install", "clilife", "nbthing", "--dry-run", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "would install: nbthing 1.0" in proc.stdout and "jupyter_core" in proc.stdout  # kept from the base
    assert layer_dists(path) == {"iniconfig"}

    proc = layenv("install", "clilife", "nbthing", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "restart its running kernels" in proc.stderr and "== succeeded" in proc.stdout
    assert layer_dists(path) == {"iniconfig", "nbthing"}

    proc = layenv("uninstall", "clilife", "iniconfig", *config, env=cli_env)
    assert proc.returncode == 5 and "needed by nbthing" in proc.stderr, proc.stderr  # a conflict

    proc = layenv("history", "clilife", env=cli_env)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and [line.split()[0] for line in lines] == ["2", "1"], proc.stdout
    assert "+nbthing" in lines[0] and "(2 packages)" in lines[0] and "create +iniconfig" in lines[1]

    lock = layenv("export", "clilife", "--format", "lock", env=cli_env)
    assert lock.returncode == 0 and "nbthing==1.0 --hash=sha256:" in lock.stdout

    proc = layenv("rollback", "clilife", "1", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert layer_dists(path) == {"iniconfig"}
    proc = layenv("history", "clilife", env=cli_env)
    assert "restore of revision 1" in proc.stdout.splitlines()[0]
    proc = layenv("rollback", "clilife", "7", env=cli_env)
    assert proc.returncode == 3 and "no revision 7" in proc.stderr  # not found


def test_cli_history_of_a_conda_env_says_why_it_has_none(cli_env: dict[str, str], clean_create_home: Path):
    """A Conda env has no revisions because only layers and venvs keep them, not because jupyter_layenv did not make
    it ("made before jupyter_layenv recorded them, or not by it" was printed for the Conda envs it made too)."""
    proc = layenv("history", "py311_ai", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "py311_ai is a Conda environment: revisions are kept for layers and venvs (`jupyter layenv export "
        "py311_ai --format explicit` gives its exact Conda packages)\n"
    ), proc.stdout


def test_cli_unresolvable_install_exits_5_as_a_dry_run_and_1_as_a_job(
    cli_env: dict[str, str], clean_create_home: Path, faithful_wheelhouse: Path
):
    """README "Command line": the dry run is refused before any work (a conflict, 5); the install runs its job, which
    fails (1). Both name the package; the layer is left as it was."""
    config = [f"--LayenvService.find_links=['{faithful_wheelhouse}']", "--LayenvService.offline=True"]
    path = clean_create_home / ".virtualenvs" / "unres"
    proc = layenv("create", "unres", "--base", "conda-py311_ai", "--package", "iniconfig", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    dry = layenv("install", "unres", "nosuchpkg-xyz", "--dry-run", *config, env=cli_env)
    assert dry.returncode == 5 and "nosuchpkg-xyz" in dry.stderr, dry.stderr
    real = layenv("install", "unres", "nosuchpkg-xyz", *config, env=cli_env)
    assert real.returncode == 1 and "nosuchpkg-xyz" in real.stderr + real.stdout, real.stderr
    assert layer_dists(path) == {"iniconfig"}


def test_the_first_change_of_a_layer_made_by_hand_can_be_rolled_back(
    cli_env: dict[str, str], clean_create_home: Path, faithful_wheelhouse: Path
):
    """The seed's layers are made by hand (`virtualenv --system-site-packages`): their first `install` was recorded
    as revision 1, the layer after it, so no revision held the layer as it was and `rollback` could not undo it. The
    layer as found is recorded first."""
    from envtree import add_pure_python_package, make_layered_env, site_packages

    config = [f"--LayenvService.find_links=['{faithful_wheelhouse}']", "--LayenvService.offline=True"]
    path = make_layered_env(clean_create_home / "miniconda3" / "envs" / "py311_ai", clean_create_home / ".virtualenvs"
                            / "byhand")  # fmt: skip
    add_pure_python_package(site_packages(path), "handmade", "1.0", "")  # what its owner pip-installed before
    assert layer_dists(path) == {"handmade"}
    proc = layenv("install", "byhand", "iniconfig", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert layer_dists(path) == {"handmade", "iniconfig"}
    lines = layenv("history", "byhand", env=cli_env).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["2", "1"], lines
    assert "change +iniconfig" in lines[0] and "as found" in lines[1] and "(1 package)" in lines[1], lines
    proc = layenv("rollback", "byhand", "1", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert layer_dists(path) == {"handmade"}


def test_an_install_of_what_the_layer_has_already_changes_nothing_and_says_so(
    cli_env: dict[str, str], clean_create_home: Path, faithful_wheelhouse: Path
):
    """Installing what the layer has, or what its base provides, ran a job that said "changed NAME; restart its
    running kernels to use the new packages" and recorded one more revision, identical to the last."""
    config = [f"--LayenvService.find_links=['{faithful_wheelhouse}']", "--LayenvService.offline=True"]
    proc = layenv("create", "same", "--base", "conda-py311_ai", "--package", "iniconfig", *config, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    for spec in ("iniconfig", "traitlets"):  # in the layer; from the base
        proc = layenv("install", "same", spec, *config, env=cli_env)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert "nothing to change in same" in proc.stderr and "restart" not in proc.stderr, proc.stderr
    lines = layenv("history", "same", env=cli_env).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["1"], lines
    assert layer_dists(clean_create_home / ".virtualenvs" / "same") == {"iniconfig"}
