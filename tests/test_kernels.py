"""Kernel specs from a real tree: names, aliases, metadata, filters, and real kernels proving the activation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from envtree import PY_XY, Tree, make_conda_prefix, make_layered_env, site_packages
from isolated_ksm import looking_only_at
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_process import JUPYTER, run_in_kernel
from oscalls import LISTINGS, LOOKS, record_os_calls

from jupyter_layenv import LayenvKernelSpecManager

PROBE = """
import json, os, sys
import layenv_base_marker
print(json.dumps({
    "prefix": sys.prefix, "base_marker": layenv_base_marker.WHERE,
    "path": os.environ["PATH"].split(os.pathsep)[:3], "conda_prefix": os.environ.get("CONDA_PREFIX"),
    "virtual_env": os.environ.get("VIRTUAL_ENV"), "activated": os.environ.get("LAYENV_ACTIVATED"),
    "default_env": os.environ.get("CONDA_DEFAULT_ENV"),
    "scripts_var_leaked": "LAYENV_ACTIVATE_SCRIPTS" in os.environ,
}))
"""


def test_layered_kernel_runs_activated(home: Tree):
    ksm = LayenvKernelSpecManager()
    result = json.loads(
        run_in_kernel(ksm, "conda-py311_ai.myexp_env-py", PROBE + "import layenv_layer_marker\n").splitlines()[-1]
    )
    assert result["prefix"] == str(home.myexp_env)
    assert result["base_marker"] == "py311_ai"  # a package installed only in the base
    assert result["path"][:2] == [str(home.myexp_env / "bin"), str(home.py311_ai / "bin")]
    assert result["conda_prefix"] == str(home.py311_ai)
    assert result["virtual_env"] == str(home.myexp_env)
    assert result["default_env"] == "py311_ai"
    assert result["activated"] == "py311_ai"  # exported by the base's etc/conda/activate.d script
    assert result["scripts_var_leaked"] is False


def test_conda_env_kernel_and_plain_venv_kernel(home: Tree):
    ksm = LayenvKernelSpecManager()
    out = run_in_kernel(ksm, "conda-py311_ai-py", PROBE)
    result = json.loads(out.splitlines()[-1])
    assert result["prefix"] == str(home.py311_ai) and result["activated"] == "py311_ai"
    assert result["virtual_env"] is None
    plain = ksm.get_kernel_spec("venv-plain-py")
    assert plain.argv[0] == str(home.plain / "bin" / "python")  # no wrapper process: nothing to source
    out = run_in_kernel(ksm, "venv-plain-py", "import sys, os; print(sys.prefix, os.environ['VIRTUAL_ENV'])")
    assert out.split() == [str(home.plain), str(home.plain)]


def test_names_display_names_and_metadata(home: Tree):
    ksm = LayenvKernelSpecManager()
    specs = ksm.get_all_specs()
    expected = {
        "conda-base-py": f"Python {PY_XY} (base)",
        "conda-py311_ai-py": f"Python {PY_XY} (py311_ai)",
        "conda-py311_ai.myexp_env-py": f"Python {PY_XY} (py311_ai ▸ myexp_env)",
        "conda-py311_ai.proj_uv-py": f"Python {PY_XY} (py311_ai ▸ proj_uv)",
        "venv-plain-py": f"Python {PY_XY} (plain)",
        "conda-listed_env-py": f"Python {PY_XY} (listed_env)",
        "conda-rc_env-py": f"Python {PY_XY} (rc_env)",
        "conda-rstats-ir": "R (rstats)",
    }
    assert {name: specs[name]["spec"]["display_name"] for name in expected} == expected
    meta = specs["conda-py311_ai.myexp_env-py"]["spec"]["metadata"]
    assert meta["layenv"] == {
        "path": str(home.myexp_env),
        "kind": "layered",
        "base": str(home.py311_ai),
        "python_version": meta["layenv"]["python_version"],
        "scope": "user",
    }
    assert meta["layenv"]["python_version"].startswith(PY_XY)
    assert meta["conda_env_name"] == "py311_ai" and meta["conda_env_path"] == str(home.myexp_env)
    # ipykernel's own share/jupyter/kernels/python3 in py311_ai is that env's Python kernel, not a second one
    assert [n for n in specs if n.startswith("conda-py311_ai-")] == ["conda-py311_ai-py"]
    rstats = specs["conda-rstats-ir"]["spec"]
    assert rstats["env"]["LAYENV_STATE"] == "rstats"  # conda-meta/state variables
    assert rstats["argv"][0] == "R"  # not in the env's bin: left for PATH (the env's bin first) to find
    assert rstats["env"]["PATH"].startswith(str(home.rstats / "bin") + os.pathsep)


def test_names_are_stable_across_managers_and_order(home: Tree):
    first = set(LayenvKernelSpecManager().get_all_specs())
    reordered = LayenvKernelSpecManager(venv_roots=["~/.venvs", "~/.virtualenvs"])
    assert set(reordered.get_all_specs()) == first


def test_nb_conda_kernels_names_resolve_without_being_listed(home: Tree):
    ksm = LayenvKernelSpecManager()
    listed = set(ksm.find_kernel_specs())
    for alias, target in {
        "conda-root-py": "conda-base-py",
        "conda-base-py": "conda-base-py",
        "conda-env-py311_ai-py": "conda-py311_ai-py",
        "conda-env-rstats-ir": "conda-rstats-ir",
    }.items():
        assert ksm.get_kernel_spec(alias).to_dict() == ksm.get_kernel_spec(target).to_dict()
        assert alias == target or alias not in listed
    with pytest.raises(NoSuchKernel):
        ksm.get_kernel_spec("conda-env-does_not_exist-py")


def test_nb_conda_kernels_names_of_envs_outside_the_roots_envs_and_of_r_kernels(tmp_path: Path, monkeypatch):
    """nb_conda_kernels names an env in an ``envs`` folder other than its install's after that folder's parent
    (``~/.conda/envs/shared`` is ``conda-env-.conda-shared-py``: where users' envs go when the install is read-only),
    and an IRkernel spec (``ir``) ``-r``: notebooks saved with those names open, in the right env."""
    from envtree import add_kernelspec, irkernel_spec, isolate_home

    home = tmp_path / "home"
    root = make_conda_prefix(home / "miniconda3", conda_root=True)
    shared = make_conda_prefix(home / ".conda" / "envs" / "shared", ipykernel=True)
    rlang = make_conda_prefix(root / "envs" / "rlang")
    add_kernelspec(rlang, "ir", irkernel_spec())
    make_conda_prefix(root / "envs" / "données", ipykernel=True)
    isolate_home(monkeypatch, home)
    ksm = LayenvKernelSpecManager()
    listed = set(ksm.find_kernel_specs())
    for alias, target in {
        "conda-env-.conda-shared-py": "conda-shared-py",
        "conda-env-shared-py": "conda-shared-py",
        "conda-env-rlang-r": "conda-rlang-ir",
        "conda-env-rlang-ir": "conda-rlang-ir",
        "conda-env-donnees-py": "conda-donn_es-py",  # nb_conda_kernels drops accents
    }.items():
        assert ksm.get_kernel_spec(alias).to_dict() == ksm.get_kernel_spec(target).to_dict(), alias
        assert alias not in listed
    out = run_in_kernel(ksm, "conda-env-.conda-shared-py", "import sys; print(sys.prefix)")
    assert out.strip() == str(shared)
    # an env made or removed later: the next listing patches its names in and out
    make_conda_prefix(home / ".conda" / "envs" / "later", ipykernel=True)
    shutil.rmtree(shared)
    assert ksm.get_kernel_spec("conda-env-.conda-later-py").to_dict() == ksm.get_kernel_spec("conda-later-py").to_dict()
    with pytest.raises(NoSuchKernel):
        ksm.get_kernel_spec("conda-env-.conda-shared-py")


def test_nb_conda_kernels_names_of_a_second_installs_envs_and_root(tmp_path: Path, monkeypatch):
    """nb_conda_kernels names an env of an install other than its conda's ``conda-env-<install>-NAME-py`` (the
    ``envs`` folder's parent in front) and that install's root ``conda-env-<install>-py`` (its folder's name): with
    two installs, a notebook saved under either name opens in the right env, whichever install was the default."""
    from envtree import isolate_home

    home = tmp_path / "home"
    forge = make_conda_prefix(home / "miniforge3", conda_root=True, ipykernel=True)
    make_conda_prefix(home / "miniconda3", conda_root=True, ipykernel=True)
    forge_ml = make_conda_prefix(forge / "envs" / "ml", ipykernel=True)
    make_conda_prefix(home / "miniconda3" / "envs" / "ml", ipykernel=True)
    make_conda_prefix(forge / "envs" / "solo", ipykernel=True)
    isolate_home(monkeypatch, home)
    ksm = LayenvKernelSpecManager()
    kernels = {
        meta["path"]: name
        for name, item in ksm.get_all_specs().items()
        if (meta := item["spec"]["metadata"].get("layenv")) is not None
    }
    for alias, path in {
        "conda-env-miniforge3-ml-py": forge_ml,
        "conda-env-miniconda3-ml-py": home / "miniconda3" / "envs" / "ml",
        "conda-env-miniforge3-solo-py": forge / "envs" / "solo",
        "conda-env-solo-py": forge / "envs" / "solo",
        "conda-env-miniforge3-py": forge,
        "conda-env-miniconda3-py": home / "miniconda3",
    }.items():
        target = kernels[str(path)]
        assert ksm.get_kernel_spec(alias).to_dict() == ksm.get_kernel_spec(target).to_dict(), alias
        assert alias not in kernels.values()
    assert ksm.kernel_table().nb_conda_aliases["conda-env-miniforge3-ml-py"] == kernels[str(forge_ml)]  # `sync`
    out = run_in_kernel(ksm, "conda-env-miniforge3-ml-py", "import sys; print(sys.prefix)")
    assert out.strip() == str(forge_ml)


def test_filters(home: Tree):
    ksm = LayenvKernelSpecManager(exclude=["conda-rstats-*", str(home.home / ".virtualenvs" / "*")])
    specs = ksm.get_all_specs()
    assert "conda-rstats-ir" not in specs and "venv-plain-py" not in specs
    assert "conda-py311_ai.myexp_env-py" in specs
    envs = {e["path"]: e for e in ksm.listing()["environments"]}
    assert "exclude pattern" in envs[str(home.plain)]["skipped_reason"]
    only = LayenvKernelSpecManager(include=["conda-py311_ai*"], allowed_kernelspecs={"conda-py311_ai-py", "python3"})
    assert set(only.get_all_specs()) == {"conda-py311_ai-py", "python3"}


def test_hand_registered_kernelspec_is_not_listed_twice(home: Tree, tmp_path: Path):
    """The seed's manual `python -m ipykernel install --name myexp_env` duplicates the env's own kernel."""
    manual = tmp_path / "kernels" / "myexp_env"
    manual.mkdir(parents=True)
    argv = [str(home.myexp_env / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (manual / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "myexp", "language": "python"}))
    ksm = LayenvKernelSpecManager(kernel_dirs=[str(tmp_path / "kernels"), *LayenvKernelSpecManager().kernel_dirs])
    assert "myexp_env" not in ksm.get_all_specs()
    assert ksm.get_kernel_spec("myexp_env").argv == ksm.get_kernel_spec("conda-py311_ai.myexp_env-py").argv


def test_a_kernelspec_that_is_no_copy_of_the_envs_python_kernel_stays_itself(home: Tree, tmp_path: Path):
    """Only a plain `python -m ipykernel install` of an env duplicates its kernel. bash_kernel (`python -m
    bash_kernel.install --user`, argv[0] the env's python) vanished from the listing and `bash` started a Python
    kernel; a registered variant with its own variables (a GPU pinned) became the plain kernel, its variables lost."""
    kernels = tmp_path / "kernels"
    python = str(home.py311_ai / "bin" / "python")
    specs = {
        "bash": {"argv": [python, "-m", "bash_kernel", "-f", "{connection_file}"], "display_name": "Bash",
                 "language": "bash"},
        "py311_gpu1": {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                       "display_name": "Python (GPU 1)", "language": "python", "env": {"CUDA_VISIBLE_DEVICES": "1"}},
        "py311_plain": {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                        "display_name": "py311", "language": "python"},
    }  # fmt: skip
    for name, spec in specs.items():
        (kernels / name).mkdir(parents=True)
        (kernels / name / "kernel.json").write_text(json.dumps(spec))
    ksm = LayenvKernelSpecManager(kernel_dirs=[str(kernels), *LayenvKernelSpecManager().kernel_dirs])
    listed = ksm.get_all_specs()
    assert listed["bash"]["spec"]["language"] == "bash" and listed["bash"]["spec"]["argv"][2] == "bash_kernel"
    assert ksm.get_kernel_spec("bash").argv[2] == "bash_kernel"
    assert listed["py311_gpu1"]["spec"]["env"] == {"CUDA_VISIBLE_DEVICES": "1"}
    assert "py311_plain" not in listed  # a plain copy is still folded into the env's own kernel
    assert ksm.get_kernel_spec("py311_plain").argv == ksm.get_kernel_spec("conda-py311_ai-py").argv


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([JUPYTER, "layenv", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_list_json_matches_the_manager(home: Tree):
    env = {**os.environ, "HOME": str(home.home)}
    proc = _cli("list", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    reasons = {e["path"]: e.pop("delete_blocked_reason") for e in listing["environments"]}
    layer_reasons = {e["path"]: e.pop("layer_blocked_reason") for e in listing["environments"]}
    # a skipped layer whose base was deleted is still deletable: the service gives it an id and why it may not be
    deletable = {s["path"]: (s.pop("id"), s.pop("delete_blocked_reason")) for s in listing["skipped"] if "id" in s}
    usage_fields = ("size_bytes", "shared_bytes", "last_used", "last_used_by", "health", "shadowed")  # the service's
    assert all(field in e for e in listing["environments"] for field in usage_fields)
    for env_json in listing["environments"]:
        for field in usage_fields:
            env_json.pop(field)
    assert listing == json.loads(json.dumps(LayenvKernelSpecManager().listing()))
    assert deletable[str(home.orphan)][1] is None
    keys = {"id", "name", "path", "kind", "base", "python_version", "kernels", "writable", "scope", "skipped_reason"}
    keys |= {"owner", "group", "creator"}
    assert all(set(e) == keys for e in listing["environments"])
    assert "base of" in reasons[str(home.py311_ai)]  # GET environments says why delete is refused
    assert "install root" in reasons[str(home.conda_root)]
    assert reasons[str(home.proj_uv)] is None
    assert layer_reasons[str(home.py311_ai)] is None  # and why no layer may be built on an env
    assert "must be built on a Conda environment" in layer_reasons[str(home.proj_uv)]
    proc = _cli("list", "--json", "--LayenvKernelSpecManager.exclude=['conda-*']", env=env)
    names = {k["name"] for e in json.loads(proc.stdout)["environments"] for k in e["kernels"]}
    assert names and not any(n.startswith("conda-") for n in names)
    text = _cli("list", env=env).stdout
    assert "└ myexp_env" in text and "Skipped (not usable environments):" in text


def test_cli_doctor_explains(home: Tree):
    proc = _cli("doctor", "--json", env={**os.environ, "HOME": str(home.home)})
    report = json.loads(proc.stdout)
    located = {(loc["kind"], loc["path"]): loc["exists"] for loc in report["locations"]}
    assert located[("conda root", str(home.conda_root))] is True
    assert located[("venv root", str(home.home / ".virtualenvs"))] is True
    assert {s["path"] for s in report["skipped"]} >= {str(home.garbled), str(home.orphan)}
    assert report["kernel_spec_manager"]["ours"] is True


def test_cli_doctor_says_a_group_root_glob_found_its_roots(home: Tree, tmp_path: Path):
    """`group_roots = ["/srv/layenv/*"]` matching /srv/layenv/physics was printed "absent" (no file is named
    `*`), right above the group root it had found."""
    (tmp_path / "srv" / "physics").mkdir(parents=True)
    globs = [str(tmp_path / "srv" / "*"), str(tmp_path / "nowhere" / "*")]
    env = {**os.environ, "HOME": str(home.home)}
    proc = _cli("doctor", "--json", f"--LayenvKernelSpecManager.group_roots={globs!r}", env=env)
    located = {(loc["kind"], loc["path"]): loc["exists"] for loc in json.loads(proc.stdout)["locations"]}
    assert located[("group root (glob)", globs[0])] is True
    assert located[("group root (glob)", globs[1])] is False


def test_cli_doctor_names_a_kernel_spec_manager_set_elsewhere(home: Tree, tmp_path: Path):
    """nb_conda_kernels sets JupyterApp.kernel_spec_manager_class in jupyter_config.json, for every Jupyter app."""
    (tmp_path / "jupyter_config.json").write_text(
        json.dumps({"JupyterApp": {"kernel_spec_manager_class": "nb_conda_kernels.CondaKernelSpecManager"}})
    )
    env = {**os.environ, "HOME": str(home.home), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    proc = _cli("doctor", "--json", env=env)
    report = json.loads(proc.stdout)["kernel_spec_manager"]
    assert report["ours"] is False
    assert "nb_conda_kernels.CondaKernelSpecManager" in report["message"]
    assert "nb_conda_kernels uninstall" in report["message"]
    assert "WARNING" not in _cli("list", env=env).stderr


def test_cli_sync_writes_and_removes_only_its_own(home: Tree, tmp_path: Path):
    data = tmp_path / "data"
    stranger = data / "kernels" / "someone-else"
    stranger.mkdir(parents=True)
    (stranger / "kernel.json").write_text(json.dumps({"argv": ["x"], "display_name": "x", "language": "x"}))
    env = {**os.environ, "HOME": str(home.home), "JUPYTER_DATA_DIR": str(data)}
    assert _cli("sync", "--user", env=env).returncode == 0
    written = json.loads((data / "kernels" / "conda-py311_ai.myexp_env-py" / "kernel.json").read_text())
    assert written["argv"][-5:] == [str(home.myexp_env / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"]  # fmt: skip
    assert (data / "kernels" / "conda-py311_ai.myexp_env-py" / "logo-64x64.png").exists()
    # an env excluded later: its synced spec is stale and goes; a kernelspec sync did not write stays
    proc = _cli("sync", "--user", "--json", "--LayenvKernelSpecManager.exclude=['conda-py311_ai.*']", env=env)
    assert "conda-py311_ai.myexp_env-py" in json.loads(proc.stdout)["removed"]
    assert not (data / "kernels" / "conda-py311_ai.myexp_env-py").exists()
    assert stranger.exists()
    # a synced copy seen by the live manager is not listed a second time: the live entry replaces it, and a copy
    # whose env the manager leaves out is not listed from the copy either
    copy = data / "kernels" / "conda-py311_ai-py"
    assert copy.is_dir()
    served = LayenvKernelSpecManager(kernel_dirs=[str(data / "kernels")]).find_kernel_specs()
    assert served["conda-py311_ai-py"] != str(copy)
    excluding = LayenvKernelSpecManager(kernel_dirs=[str(data / "kernels")], exclude=["conda-py311_ai-*"])
    assert "conda-py311_ai-py" not in excluding.find_kernel_specs()


def _tree_ksm(root: Path) -> LayenvKernelSpecManager:
    """A manager that sees only the Conda install at ``root`` (no defaults, no kernelspec dirs)."""
    return looking_only_at(conda_roots=[str(root)], kernel_dirs=[], ensure_native_kernel=False)


@pytest.fixture(scope="module")
def ipykernel_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Conda install whose env ``full`` has a real ipykernel (logos in ``ipykernel/resources``) and a layer,
    and ``bare`` one without that folder (nor the ``python3`` kernelspec its wheel ships, logos included)."""
    root = make_conda_prefix(tmp_path_factory.mktemp("logos") / "miniconda3", conda_root=True)
    full = make_conda_prefix(root / "envs" / "full", ipykernel=True)
    bare = make_conda_prefix(root / "envs" / "bare", ipykernel=True)
    shutil.rmtree(site_packages(bare) / "ipykernel" / "resources")
    shutil.rmtree(bare / "share" / "jupyter" / "kernels")
    make_layered_env(full, full / "layer", tool="uv")
    return root


def test_ipykernels_logos_are_found_without_looking_inside_the_package(
    ipykernel_install: Path, monkeypatch: pytest.MonkeyPatch
):
    """Broken by: a ``stat`` of ``ipykernel/resources`` per env on every cold listing, when the ``stat`` of the
    package (or the site-packages listing, ``ipykernel`` in it) already says where ipykernel's logos are; or by
    both a ``stat`` of the package and a listing of its site-packages for one env."""
    looked = record_os_calls(monkeypatch, LOOKS)  # any look inside the package, not only a stat
    specs = _tree_ksm(ipykernel_install).get_all_specs()
    monkeypatch.undo()
    package = f"{os.sep}ipykernel"
    inside = [path for path in looked.paths() if package + os.sep in path]
    assert not inside, inside
    # the package itself: one stat per env at most; where it is there, its site-packages is not listed as well
    at_package = [(name, path) for name, path in looked.calls if path.endswith(package)]
    assert {name for name, _path in at_package} <= {"stat"}, at_package
    assert len(at_package) == len({path for _name, path in at_package}), at_package
    listed = set(looked.paths(*LISTINGS))
    found = [path for _name, path in at_package if os.path.isdir(path)]
    assert found and not [path for path in found if path[: -len(package)] in listed], at_package
    full_env = ipykernel_install / "envs" / "full"
    layer = [item for item in specs.values() if str(full_env / "layer") in item["spec"]["argv"][-5]]
    # the layer's ipykernel is its base's (the base's own python3 kernelspec is not the layer's)
    assert layer and layer[0]["resource_dir"] == str(site_packages(full_env) / "ipykernel" / "resources")


def test_an_ipykernel_without_logos_gives_a_kernel_without_logos(ipykernel_install: Path):
    """The served model of a kernel whose ipykernel ships no ``resources`` folder: no logo, no error (what
    jupyter_server's kernelspec model makes of a ``resource_dir`` that does not exist)."""
    from types import SimpleNamespace

    from jupyter_server.services.kernelspecs.handlers import kernelspec_model

    specs = _tree_ksm(ipykernel_install).get_all_specs()
    bare = str(ipykernel_install / "envs" / "bare")
    name, item = next((n, i) for n, i in specs.items() if i["spec"]["metadata"].get("conda_env_path") == bare)
    model = kernelspec_model(SimpleNamespace(base_url="/"), name, item["spec"], item["resource_dir"])
    assert model["resources"] == {}
    full = str(ipykernel_install / "envs" / "full" / "layer")
    name, item = next((n, i) for n, i in specs.items() if full in i["spec"]["argv"][-5])
    model = kernelspec_model(SimpleNamespace(base_url="/"), name, item["spec"], item["resource_dir"])
    assert {"logo-32x32", "logo-64x64", "logo-svg"} <= set(model["resources"])
