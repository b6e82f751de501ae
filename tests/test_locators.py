"""The file formats discovery reads, on real files: .condarc, environments.txt, pyvenv.cfg, root markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from oscalls import BUILTIN_OPEN, LISTINGS, record_os_calls

from jupyter_layenv.discovery import env_children
from jupyter_layenv.locators import conda
from jupyter_layenv.locators.prefix import inspect_prefix, looks_like_conda_root, parse_pyvenv_cfg


def test_condarc_block_and_flow_lists():
    text = """
channels:
  - conda-forge
envs_dirs:
  - ~/envs-a   # a comment
  - "/srv/envs b"
pkgs_dirs: [/tmp/pkgs]
"""
    assert conda.parse_condarc_list(text, "envs_dirs") == ["~/envs-a", "/srv/envs b"]
    assert conda.parse_condarc_list("envs_dirs: [/x, '/y']\n", "envs_dirs") == ["/x", "/y"]
    assert conda.parse_condarc_list("channels:\n  - defaults\n", "envs_dirs") == []
    # what a line-by-line reader got wrong: a comma inside quotes, a flow list over two lines, a bad file
    assert conda.parse_condarc_list('envs_dirs: ["/srv/a,b",\n  /srv/c]\n', "envs_dirs") == ["/srv/a,b", "/srv/c"]
    assert conda.parse_condarc_list("envs_dirs: [unclosed\n", "envs_dirs") == []
    assert conda.parse_condarc_list("- a list\n", "envs_dirs") == []


def test_environments_txt_drops_stale_lines(tmp_path: Path):
    live = tmp_path / "live"
    live.mkdir()
    listing = tmp_path / "environments.txt"
    listing.write_text(f"{live}\n{tmp_path / 'deleted'}\n\n# comment\n")
    assert conda.read_environments_txt(str(listing)) == [str(live)]


def test_condarc_envs_dirs_are_scanned(tmp_path: Path):
    envs = tmp_path / "my envs"
    (envs / "one" / "conda-meta").mkdir(parents=True)
    (envs / "one" / "conda-meta" / "history").write_text("")
    rc = tmp_path / ".condarc"
    rc.write_text(f"envs_dirs:\n  - {envs}\n")
    located = conda.locate([], [], [], [str(rc)], lambda d: env_children(d, None)[0])
    assert [c.path for c in located.candidates] == [str(envs / "one")]
    assert str(rc) in located.deps and str(envs) in located.deps


def test_pyvenv_cfg_parsing():
    cfg = parse_pyvenv_cfg("home = /opt/conda/envs/x/bin\ninclude-system-site-packages = true\nuv = 0.4.0\n")
    assert cfg == {"home": "/opt/conda/envs/x/bin", "include-system-site-packages": "true", "uv": "0.4.0"}
    assert parse_pyvenv_cfg("\x00\x01garbage") is None
    assert parse_pyvenv_cfg("version = 3.11\n") is None


def test_conda_root_markers(tmp_path: Path):
    (tmp_path / "conda-meta").mkdir()
    assert not looks_like_conda_root(str(tmp_path))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "conda").write_text("")  # the conda package in an env (conda-build): still an env
    assert not looks_like_conda_root(str(tmp_path))
    (tmp_path / "bin" / "micromamba").write_text("")  # a micromamba root before its first env
    assert not looks_like_conda_root(str(tmp_path)) and looks_like_conda_root(str(tmp_path), named_root=True)
    (tmp_path / "condabin").mkdir()
    assert looks_like_conda_root(str(tmp_path))


def test_symlink_loops_are_reported_not_followed(tmp_path: Path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path, tmp_path / "self")
    (children, skipped), _deps = env_children(str(tmp_path), None)
    assert children == []
    assert sorted(Path(s.path).name for s in skipped) == ["a", "b"]
    assert all("symlink loop" in s.reason for s in skipped)


def test_version_from_conda_meta_and_lib(tmp_path: Path):
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "history").write_text("")
    (prefix / "conda-meta" / "python-3.12.4-h0_cpython.json").write_text("{}")
    (prefix / "lib" / "python3.12" / "site-packages" / "ipykernel-7.0.0.dist-info").mkdir(parents=True)
    facts = inspect_prefix(str(prefix))
    assert facts.python_version == "3.12.4"
    assert facts.has_ipykernel
    assert facts.python is None and facts.python_problem is None


def test_version_and_ipykernel_among_many_entries(tmp_path: Path):
    """conda-meta and site-packages hold hundreds of names: look-alikes do not count, and the real ones are found
    wherever they come in the listing (first, last, alone)."""
    prefix = tmp_path / "env"
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    for name in ("python-dateutil-2.9.0-pyhd8ed1ab_0", "python_abi-3.12-4_cp312", "python-tzdata-2024.1-pyhd_0"):
        (meta / f"{name}.json").write_text("{}")
    site = prefix / "lib" / "python3.12" / "site-packages"
    site.mkdir(parents=True)
    for name in ("ipykernel_helpers", "ipykernel-tools", "ipykernel-7.0.0.txt", "xipykernel-1.0.dist-info"):
        (site / name).mkdir()
    facts = inspect_prefix(str(prefix))
    assert facts.is_conda  # package records without a history: still a Conda prefix
    assert facts.python_version == "3.12" and not facts.has_ipykernel  # from lib/python3.12, no record matched
    (meta / "python-3.12.4-h0_cpython.json").write_text("{}")
    (site / "ipykernel-7.0.0.egg-info").mkdir()
    facts = inspect_prefix(str(prefix))
    assert facts.python_version == "3.12.4" and facts.has_ipykernel and facts.ipykernel_resources is None
    for name in os.listdir(meta):
        if name != "python-3.12.4-h0_cpython.json":
            os.remove(meta / name)
    assert inspect_prefix(str(prefix)).python_version == "3.12.4"


def test_root_condarc_files_read_only_when_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Conda root's own .condarc, condarc and condarc.d can name envs dirs. The root's listing (made anyway to
    tell a root) shows which of them exist: an absent one is neither stat'ed, opened nor listed, and stays a
    dependency (one created later is read on the next listing)."""
    root = tmp_path / "root"
    for marker in ("conda-meta", "envs", "condabin"):
        (root / marker).mkdir(parents=True)
    more = tmp_path / "more"
    (more / "e1" / "conda-meta").mkdir(parents=True)
    (more / "e1" / "conda-meta" / "history").write_text("")
    rc_paths = [str(root / name) for name in (".condarc", "condarc", "condarc.d")]
    touched: list[str] = []

    def locate() -> conda.Located:
        with monkeypatch.context() as patch:
            calls = record_os_calls(patch, ["stat", *LISTINGS, "open", BUILTIN_OPEN])  # fsread reads with os.open
            located = conda.locate([str(root)], [], [], [], lambda d: env_children(d, None)[0])
        touched.extend(calls.paths())
        return located

    located = locate()
    assert set(rc_paths) <= set(located.deps)
    assert not set(rc_paths) & set(touched)
    assert touched.count(str(root)) == 1  # one listing of the root
    (root / "condarc.d").mkdir()
    (root / "condarc.d" / "more.yml").write_text(f"envs_dirs:\n  - {more}\n")
    (root / ".condarc").write_text("channels: [conda-forge]\n")
    located = locate()
    assert str(more / "e1") in [c.path for c in located.candidates]
    assert str(root / ".condarc") in touched and str(root / "condarc") not in touched


def test_small_file_reads_whole_files_and_refuses_large_ones(tmp_path: Path):
    """fsread reads in chunks: a file of any size up to the limit comes back whole, a larger one not at all."""
    from jupyter_layenv import fsread

    for size in (0, 1, 300, fsread._CHUNK - 1, fsread._CHUNK, fsread._CHUNK + 1, 3 * fsread._CHUNK + 7):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        (tmp_path / "f").write_bytes(data)
        assert fsread.read_small_bytes(str(tmp_path / "f")) == data, size
    (tmp_path / "f").write_bytes(b"a" * fsread.MAX_SMALL_FILE)
    assert fsread.read_small_text(str(tmp_path / "f")) == "a" * fsread.MAX_SMALL_FILE
    (tmp_path / "f").write_bytes(b"a" * (fsread.MAX_SMALL_FILE + 1))
    assert fsread.read_small_bytes(str(tmp_path / "f")) is None
    (tmp_path / "f").write_bytes(b"\xff\xfe")
    assert fsread.read_small_text(str(tmp_path / "f")) is None and fsread.read_small_bytes(str(tmp_path)) is None
    assert fsread.read_small_bytes(str(tmp_path / "absent")) is None


def test_exists_is_stat(tmp_path: Path):
    """Broken by: a dangling link or symlink loop taken for there, or a file taken for a directory where the path
    ends in a separator (how a layer's site-packages/ipykernel is asked for), or a NUL raising."""
    from jupyter_layenv import fsread

    (tmp_path / "dir").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "file").write_text("x")
    for name in ("dir", "file", "dangling", "loop", "absent", "file/below"):
        assert fsread.exists(str(tmp_path / name)) == os.path.exists(str(tmp_path / name)), name
    assert fsread.exists(str(tmp_path / "dir") + os.sep)
    assert not fsread.exists(str(tmp_path / "file") + os.sep)
    assert not fsread.exists(str(tmp_path / "dir") + "\0x")


def _dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")


def test_a_known_python_without_its_site_packages_reads_no_other_pythons(tmp_path: Path):
    """An env whose Python is 3.11 reads lib/python3.11/site-packages or nothing: never the lib/python3.12 another
    Python left (a layer's plan would count that Python's packages as its base's, or re-install the base's; its
    kernel check would find the other Python's ipykernel). The newest is read only when the version is unknown; a
    free-threaded build's lib/python3.13t is its version's own. Broken by: falling back to the newest in lib."""
    from jupyter_layenv.inventory import distributions
    from jupyter_layenv.locators.prefix import site_packages_of

    prefix = tmp_path / "env"
    _dist(prefix / "lib" / "python3.12" / "site-packages", "numpy", "2.0")
    assert site_packages_of(str(prefix), "3.11.9") == (None, "3.11", [])
    assert distributions(str(prefix), "3.11.9") == []
    assert site_packages_of(str(prefix), None)[:2] == (str(prefix / "lib/python3.12/site-packages"), "3.12")
    assert [d.name for d in distributions(str(prefix), None)] == ["numpy"]
    _dist(prefix / "lib" / "python3.13t" / "site-packages", "flask", "3.0")
    site, x_y, entries = site_packages_of(str(prefix), "3.13.1")
    assert (site, x_y, entries) == (str(prefix / "lib/python3.13t/site-packages"), "3.13", ["flask-3.0.dist-info"])


def test_a_resolvers_view_of_a_prefix_lists_its_site_packages_once(tmp_path: Path):
    """What a layer's plan treats as installed (each distribution with its metadata file) comes from one listing of
    site-packages. Broken by: listing it for the metadata files and again for the distributions."""
    from jupyter_layenv.layers.installed import installed

    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    _dist(site, "numpy", "2.0")
    _dist(site, "Flask", "3.0")
    with pytest.MonkeyPatch.context() as patch:
        calls = record_os_calls(patch, list(LISTINGS))
        found = installed(str(tmp_path / "env"), "3.11.9")
    assert {key: (entry.dist.version, entry.metadata) for key, entry in found.items()} == {
        "flask": ("3.0", str(site / "Flask-3.0.dist-info" / "METADATA")),
        "numpy": ("2.0", str(site / "numpy-2.0.dist-info" / "METADATA")),
    }
    assert calls.paths("listdir", "scandir") == [str(site)], calls.paths()
