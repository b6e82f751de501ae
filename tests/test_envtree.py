"""The fixture builders of envtree.py make real, working (or really broken) environments."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from envtree import (
    LIB_PYTHON,
    PY_XYZ,
    PYTHON_NAME,
    Tree,
    add_ipykernel_spec,
    add_kernelspec,
    add_pure_python_package,
    base_python,
    install_distributions,
    irkernel_spec,
    make_conda_prefix,
    make_dangling_python_venv,
    make_garbled_pyvenv,
    make_layered_env,
    make_orphan_layer,
    make_symlink_loop,
    make_unreadable_env,
    make_venv,
    read_pyvenv_cfg,
    site_packages,
    write_activate_script,
    write_conda_state,
)
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Conda copies need patchelf")


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would steer a child Python elsewhere."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items() if k not in drop}


def run_py(python: Path, code: str) -> str:
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def py_fails(python: Path, code: str) -> str:
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60, check=False
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def kernel_output(python: Path, code: str, tmp: Path) -> str:
    """Start a real ipykernel with ``python`` through jupyter_client, run ``code``, return its stdout."""
    spec_dir = tmp / "kernels" / "layenv-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "layenv test",
                "language": "python",
            }
        )
    )
    km = KernelManager(
        kernel_name="layenv-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    )
    km.start_kernel(env=clean_env(), cwd=str(tmp))
    out: list[str] = []
    try:
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)

            def hook(msg: dict) -> None:
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    out.append("ERROR " + msg["content"]["ename"])

            reply = kc.execute_interactive(code, output_hook=hook, timeout=60)
            assert reply["content"]["status"] == "ok", out
        finally:
            kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    return "".join(out)


# ----------------------------------------------------------------------------------------- Conda prefixes


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Conda-style prefix with ipykernel and a marker module only it has."""
    start = time.perf_counter()
    prefix = make_conda_prefix(tmp_path_factory.mktemp("b") / "base", ipykernel=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"make_conda_prefix(ipykernel=True) took {elapsed:.1f}s"
    add_pure_python_package(site_packages(prefix), "layenv_base_marker", "1.0", 'WHERE = "base"\n')
    return prefix


def test_copied_interpreter_is_real_and_runs_from_the_copy(tmp_path: Path) -> None:
    original = base_python()
    original_bytes = original.read_bytes()
    start = time.perf_counter()
    prefix = make_conda_prefix(tmp_path / "env")
    assert time.perf_counter() - start < 2
    exe = prefix / "bin" / PYTHON_NAME
    assert not exe.is_symlink()
    assert exe.stat().st_ino != original.stat().st_ino, "the binary must be a copy, never a hard link"
    assert original.read_bytes() == original_bytes, "patchelf touched the original interpreter"
    assert os.readlink(prefix / "bin" / "python") == PYTHON_NAME
    # the copy loads its own libpython
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True).stdout
    libpython = [line for line in ldd.splitlines() if "libpython" in line]
    if libpython:  # a statically linked CPython has none
        assert f"=> {prefix}/bin/../lib/" in libpython[0], ldd
    info = json.loads(
        run_py(
            prefix / "bin" / "python",
            (
                "import sys, json, sysconfig; print(json.dumps([sys.prefix, sys.base_prefix, sys.executable,"
                " sysconfig.get_paths()['purelib'], sys.version]))"
            ),
        )
    )
    assert info[0] == info[1] == str(prefix)
    assert info[2] == str(prefix / "bin" / "python")
    assert info[3] == str(site_packages(prefix))
    assert info[4].startswith(PY_XYZ)
    # stdlib present (including C extension modules from lib-dynload), base's site-packages not leaked
    run_py(prefix / "bin" / "python", "import ssl, sqlite3, ctypes, json, decimal, venv, asyncio")
    assert list(site_packages(prefix).iterdir()) == []
    assert "iniconfig" in py_fails(prefix / "bin" / "python", "import iniconfig")
    # the stdlib is hard linked, and its linked bytecode is valid (not recompiled at every start)
    stdlib_os = prefix / LIB_PYTHON / "os.py"
    assert stdlib_os.stat().st_ino == (Path(sys.base_prefix) / LIB_PYTHON / "os.py").stat().st_ino
    verbose = subprocess.run(
        [str(exe), "-v", "-c", "import json"], capture_output=True, text=True, env=clean_env(), check=True
    ).stderr
    assert f"# code object from '{prefix / LIB_PYTHON}/json/__pycache__/__init__" in verbose, verbose[-2000:]


def test_conda_metadata(tmp_path: Path) -> None:
    prefix = make_conda_prefix(tmp_path / "miniconda3", conda_root=True)
    history = (prefix / "conda-meta" / "history").read_text().splitlines()
    assert history[0] == "==> 2025-01-01 00:00:00 <=="
    assert history[1].startswith("# cmd: ")
    record = json.loads((prefix / "conda-meta" / f"python-{PY_XYZ}-h0_0_cpython.json").read_text())
    assert record["name"] == "python" and record["version"] == PY_XYZ and record["build_number"] == 0
    assert record["channel"].startswith("https://conda.anaconda.org/conda-forge/")
    assert f"bin/{PYTHON_NAME}" in record["files"]
    conda_records = list((prefix / "conda-meta").glob("conda-*-py*_0.json"))
    assert len(conda_records) == 1
    assert (prefix / "envs").is_dir() and (prefix / "condabin").is_dir()
    # the fake conda refuses to run
    proc = subprocess.run([str(prefix / "bin" / "conda"), "env", "list"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "must never be executed" in proc.stderr
    # a plain env has none of the root's marks
    env = make_conda_prefix(prefix / "envs" / "e")
    assert not (env / "envs").exists() and not (env / "bin" / "conda").exists()
    assert f"conda create -n e python={PY_XYZ[:4]}" in (env / "conda-meta" / "history").read_text()


def test_install_distributions_copies_the_closure(base: Path, tmp_path: Path) -> None:
    site = site_packages(base)
    names = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"ipykernel", "jupyter_client", "pyzmq", "tornado", "traitlets", "ipython"} <= names
    assert not {"pytest", "iniconfig", "virtualenv"} & names, "extras or unrelated distributions leaked in"
    assert not (base / "bin" / "ipython").exists(), "console scripts must not be copied"
    kernel_json = json.loads((base / "share/jupyter/kernels/python3/kernel.json").read_text())
    assert kernel_json["argv"][0] == "python", "ipykernel's wheel data (share/) is unpacked as pip does"
    record = (
        site
        / "ipykernel-{}.dist-info".format(run_py(base / "bin/python", "import ipykernel; print(ipykernel.__version__)"))
        / "RECORD"
    ).read_text()
    assert "../../../bin/" not in record
    # conda-style record for each distribution
    assert list((base / "conda-meta").glob("ipykernel-*-pyhd8ed1ab_0.json"))
    out = run_py(base / "bin" / "python", "import ipykernel, zmq; print(ipykernel.__file__, zmq.__file__)")
    assert all(p.startswith(str(site)) for p in out.split())
    # idempotent, and independent of prefix layout
    install_distributions(site, ["ipykernel"])
    other = tmp_path / "sp"
    install_distributions(other, ["traitlets"])
    assert (other / "traitlets" / "__init__.py").is_file()


def test_kernel_runs_from_the_copied_base(base: Path, tmp_path: Path) -> None:
    out = kernel_output(base / "bin" / "python", "import sys, zmq; print(sys.prefix); print(zmq.__file__)", tmp_path)
    prefix, zmq_file = out.split()
    assert prefix == str(base)
    assert zmq_file.startswith(str(base))


# ------------------------------------------------------------------------------------------------- layers


@pytest.mark.parametrize("tool", ["virtualenv", "uv", "venv"])
def test_layered_env_inherits_base(base: Path, tmp_path: Path, tool: str) -> None:
    layer = make_layered_env(base, tmp_path / f"layer_{tool}", tool=tool)
    cfg = read_pyvenv_cfg(layer)
    assert cfg["home"] == str(base / "bin")
    assert cfg["include-system-site-packages"] == "true"
    if tool == "uv":
        assert "uv" in cfg
    code = "import sys, layenv_base_marker as m, ipykernel; print(sys.prefix, sys.base_prefix, m.WHERE)"
    out = run_py(layer / "bin" / "python", code)
    assert out.split() == [str(layer), str(base), "base"]


def test_layer_without_inherit_and_with_own_packages(base: Path, tmp_path: Path) -> None:
    layer = make_layered_env(base, tmp_path / "closed", inherit=False, packages=["six"])
    assert read_pyvenv_cfg(layer)["include-system-site-packages"] == "false"
    py_fails(layer / "bin" / "python", "import layenv_base_marker")
    py_fails(layer / "bin" / "python", "import ipykernel")
    assert run_py(layer / "bin" / "python", "import six; print(six.__file__)").startswith(str(layer))


def test_kernel_from_a_layer_uses_base_ipykernel(base: Path, tmp_path: Path) -> None:
    layer = make_layered_env(base, tmp_path / "lay", tool="uv")
    add_pure_python_package(site_packages(layer), "layenv_layer_marker", "1.0", 'WHERE = "layer"\n')
    out = kernel_output(
        layer / "bin" / "python",
        (
            "import sys, ipykernel, layenv_layer_marker as l\n"
            "print(sys.prefix, sys.base_prefix, ipykernel.__file__, l.WHERE)"
        ),
        tmp_path,
    )
    prefix, base_prefix, ipk, where = out.split()
    assert (prefix, base_prefix, where) == (str(layer), str(base), "layer")
    assert ipk.startswith(str(site_packages(base)))


def test_plain_venv(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "plain", ipykernel=True)
    assert read_pyvenv_cfg(venv)["home"] == str(base_python().parent)
    out = run_py(venv / "bin" / "python", "import sys, ipykernel; print(sys.prefix, ipykernel.__file__)")
    prefix, ipk = out.split()
    assert prefix == str(venv) and ipk.startswith(str(site_packages(venv)))
    for tool in ("virtualenv", "venv"):
        other = make_venv(tmp_path / tool, tool=tool)
        assert read_pyvenv_cfg(other)["home"] == str(base_python().parent)
        assert run_py(other / "bin" / "python", "import sys; print(sys.prefix)") == str(other)


def test_activation_state_and_kernelspecs(tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    script = write_activate_script(prefix, "x", "export LAYENV_ACTIVATED=p\n")
    assert script == prefix / "etc/conda/activate.d/x.sh"
    out = subprocess.run(
        ["sh", "-c", f". {script}; echo $LAYENV_ACTIVATED"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "p"
    state = write_conda_state(prefix, {"A": "1"})
    assert json.loads(state.read_text()) == {"env_vars": {"A": "1"}}
    r = add_kernelspec(prefix, "ir", irkernel_spec())
    assert json.loads(r.read_text())["argv"][:3] == ["R", "--slave", "-e"]
    py = add_ipykernel_spec(prefix)
    spec = json.loads(py.read_text())
    assert spec["argv"] == [str(prefix / "bin/python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert spec["language"] == "python" and (py.parent / "logo-64x64.png").is_file()
    # jupyter_client reads both
    ksm = KernelSpecManager(kernel_dirs=[str(prefix / "share/jupyter/kernels")])
    assert {"ir", "python3"} <= set(ksm.find_kernel_specs())


# -------------------------------------------------------------------------------------------- broken envs


def test_dangling_python(tmp_path: Path) -> None:
    venv = make_dangling_python_venv(tmp_path / "dangling")
    cfg = read_pyvenv_cfg(venv)
    assert "home" in cfg and not Path(cfg["home"]).exists()
    python = venv / "bin" / "python"
    assert python.is_symlink() and not python.exists()
    with pytest.raises(FileNotFoundError):
        subprocess.run([str(python), "-V"], check=False)


@pytest.mark.parametrize("variant", ["binary", "no-home"])
def test_garbled_pyvenv(tmp_path: Path, variant: str) -> None:
    venv = make_garbled_pyvenv(tmp_path / "garbled", variant=variant)
    raw = (venv / "pyvenv.cfg").read_bytes()
    if variant == "binary":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
    else:
        assert "home" not in read_pyvenv_cfg(venv)
    assert (venv / "bin" / "python").exists(), "only the cfg is broken"


def test_orphan_layer(tmp_path: Path) -> None:
    layer = make_orphan_layer(tmp_path / "orphan")
    home = Path(read_pyvenv_cfg(layer)["home"])
    assert home.name == "bin" and not home.parent.exists()
    assert (layer / "bin" / "python").is_symlink() and not (layer / "bin" / "python").exists()
    assert os.listdir(tmp_path) == ["orphan"], "the deleted base left nothing behind"


def test_symlink_loop(tmp_path: Path) -> None:
    loop = make_symlink_loop(tmp_path)
    for link in (loop.a, loop.b):
        with pytest.raises(OSError) as err:
            link.stat()
        assert err.value.errno == errno.ELOOP
    assert loop.back_link.resolve() == tmp_path.resolve()
    assert (loop.venv / "parent" / "loop_venv" / "parent" / "loop_venv" / "pyvenv.cfg").is_file()
    assert run_py(loop.venv / "bin" / "python", "import sys; print(sys.prefix)") == str(loop.venv)


def test_unreadable_env(tmp_path: Path) -> None:
    env = make_unreadable_env(tmp_path / "locked")
    try:
        assert (env.stat().st_mode & 0o777) == 0
        if os.geteuid() == 0:
            assert (env / "conda-meta").is_dir()  # root ignores permissions: documented in the builder
        else:
            with pytest.raises(PermissionError):
                os.listdir(env)
    finally:
        env.chmod(0o755)


# ------------------------------------------------------------------------------------------ the home tree


@pytest.fixture(scope="module")
def tree(home_tree: Tree) -> Tree:
    """conftest.py's session ``home_tree``, made by :func:`envtree.build_home_tree` (timings included)."""
    print("build_home_tree timings:", home_tree.timings)
    return home_tree


def test_home_tree_layout(tree: Tree) -> None:
    for env in (tree.conda_root, tree.py311_ai, tree.noipk, tree.rstats, tree.listed_env, tree.rc_env):
        assert (env / "conda-meta" / "history").is_file(), env
        assert (env / "bin" / PYTHON_NAME).is_file()
    assert (tree.conda_root / "bin" / "conda").is_file() and (tree.conda_root / "envs").is_dir()
    for env in (tree.myexp_env, tree.proj_uv, tree.noinherit):
        assert read_pyvenv_cfg(env)["home"] == str(tree.py311_ai / "bin"), env
    assert read_pyvenv_cfg(tree.plain)["home"] == str(tree.pyenv_python.parent)
    assert "uv" in read_pyvenv_cfg(tree.proj_uv)
    assert read_pyvenv_cfg(tree.noinherit)["include-system-site-packages"] == "false"
    listed = tree.environments_txt.read_text().splitlines()
    assert str(tree.listed_env) in listed and str(tree.stale_listed) in listed
    assert not tree.stale_listed.exists()
    assert "~/more_envs" in tree.condarc.read_text()
    assert tree.rc_env.parent == tree.home / "more_envs"
    state = json.loads((tree.rstats / "conda-meta/state").read_text())
    assert state == {"env_vars": {"LAYENV_STATE": "rstats"}}
    assert json.loads((tree.rstats / "share/jupyter/kernels/ir/kernel.json").read_text())["language"] == "R"
    assert "LAYENV_ACTIVATED=py311_ai" in (tree.py311_ai / "etc/conda/activate.d/layenv_test.sh").read_text()
    assert not tree.orphan_deleted_base.exists()
    # the python kernels and the not-kernels, as the files say
    for env in tree.python_kernel_envs:
        assert list(site_packages(env).glob("ipykernel-*.dist-info")) or (
            read_pyvenv_cfg(env)["include-system-site-packages"] == "true"
            and list(site_packages(tree.py311_ai).glob("ipykernel-*.dist-info"))
        ), env
    for env in tree.not_kernel_envs:
        assert not list(site_packages(env).glob("ipykernel-*.dist-info")), env
    for path in tree.broken:
        assert path.is_symlink() or (path / "pyvenv.cfg").exists()
    # nothing of the base install leaked into the bases
    assert not list(site_packages(tree.noipk).iterdir())


def test_home_tree_environments_work(tree: Tree) -> None:
    code = "import sys, layenv_base_marker as b; print(sys.prefix, b.WHERE)"
    assert run_py(tree.myexp_env / "bin/python", code) == f"{tree.myexp_env} py311_ai"
    assert run_py(tree.proj_uv / "bin/python", code) == f"{tree.proj_uv} py311_ai"
    layer_code = "import layenv_layer_marker as m; print(m.WHERE)"
    assert run_py(tree.myexp_env / "bin/python", layer_code) == "myexp_env"
    py_fails(tree.py311_ai / "bin/python", "import layenv_layer_marker")
    assert "ipykernel" in py_fails(tree.noinherit / "bin/python", "import ipykernel")
    py_fails(tree.noipk / "bin/python", "import ipykernel")
    py_fails(tree.rstats / "bin/python", "import ipykernel")
    for env in tree.python_kernel_envs:
        assert run_py(env / "bin/python", "import sys, ipykernel; print(sys.prefix)") == str(env)
    with pytest.raises(OSError):
        subprocess.run([str(tree.orphan / "bin/python"), "-V"], check=False)


def test_home_tree_time(tree: Tree) -> None:
    assert tree.timings["total"] < 20, tree.timings


def test_tree_builders_do_not_touch_the_sources() -> None:
    """Hard links are shared with the running interpreter: nothing may have been written through them."""
    assert (Path(sys.base_prefix) / LIB_PYTHON / "os.py").read_text().startswith('r"""OS routines')
    readelf = subprocess.run(["readelf", "-d", str(base_python())], capture_output=True, text=True, check=False)
    if readelf.returncode == 0 and "RUNPATH" in readelf.stdout:
        assert "$ORIGIN" not in readelf.stdout


def test_uv_install_runs_the_uv_command_line_jupyter_layenv_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A user's install by hand in a fixture is the product's own uv command line (``installers.uv_command``: its
    config isolation, offline wheelhouse and ``--no-deps``), not a second one to keep in step with it."""
    from envtree import uv_install
    from wheelhouse import write_wheel

    from jupyter_layenv.create import installers

    built: list[list[str]] = []
    real = installers.uv_command

    def recording(*args, **kwargs) -> list[str]:  # the real builder, its command line noted
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(installers, "uv_command", recording)
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "alpha", "1.0", {"alpha.py": ""}, requires=("beta",))
    write_wheel(wheels, "beta", "1.0", {"beta.py": ""})
    env = make_venv(tmp_path / "env")
    uv_install(env, wheels, "alpha==1.0", deps=False)
    assert len(built) == 1 and "--no-deps" in built[0] and "--no-config" in built[0], built
    assert (site_packages(env) / "alpha.py").is_file() and not (site_packages(env) / "beta.py").exists()
    uv_install(env, wheels, "alpha==1.0", "beta==1.0", hardlink=True)
    assert len(built) == 2 and (site_packages(env) / "beta.py").is_file(), built
