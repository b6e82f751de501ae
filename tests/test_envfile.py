"""environment.yml files: written with PyYAML, read back, and matched against Conda bases."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from jupyter_layenv import envfile
from jupyter_layenv.export import environment_yml
from jupyter_layenv.model import CONDA_ENV, VENV, Environment
from jupyter_layenv.policy import LayenvPolicy, PolicyError


def _plain_env(path: Path, name: str) -> Environment:
    path.mkdir(exist_ok=True)
    fields = dict(dir_id=(0, 0), kind=VENV, base=None, python=None, python_version="3.11", scope="user",
                  writable=True, owner_uid=0, has_ipykernel=False)  # fmt: skip
    return Environment(id=name, name=name, path=str(path), **fields)


@pytest.mark.parametrize("name", ["1.10", "true", "null", "0x1F", "2024-01-01", "no"])
def test_exported_names_that_look_like_other_yaml_types_stay_strings(tmp_path: Path, name: str):
    text = environment_yml(_plain_env(tmp_path / "env", name), None)
    assert yaml.safe_load(text) == {"name": name, "channels": ["conda-forge"], "dependencies": ["python=3.11"]}


# ---------------------------------------------------------------------------------------- reading the file

FILE = """\
name: analysis
channels:
  - conda-forge
  - defaults
dependencies:
  - python=3.11
  - numpy>=1.26,<2
  - conda-forge::scipy=1.13=py311h_0
  - pip
  - pip:
      - iniconfig==2.0.0
      - requests[socks]>=2
"""


def test_a_conda_export_is_read_whole():
    file = envfile.parse(FILE + "prefix: /opt/conda/envs/analysis\n", LayenvPolicy())
    assert file.name == "analysis" and file.channels == ("conda-forge", "defaults")
    assert [(s.text, s.name, s.channel) for s in file.conda] == [
        ("python=3.11", "python", None),
        ("numpy>=1.26,<2", "numpy", None),
        ("conda-forge::scipy=1.13=py311h_0", "scipy", "conda-forge"),
        ("pip", "pip", None),
    ]
    assert file.pip == ("iniconfig==2.0.0", "requests[socks]>=2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [x\n", "not valid YAML"),
        ("- numpy\n", "expected a mapping"),
        ("name: x\nvariables:\n  A: 1\n", "unsupported key(s) variables"),
        ("dependencies: numpy\n", "'dependencies' must be a list"),
        ("dependencies:\n  - {numpy: 1}\n", "dependency 1 must be a Conda match spec"),
        ("dependencies:\n  - https://repo.example/numpy-1.0-0.conda\n", "not a Conda match spec"),
        ("dependencies:\n  - ./numpy-1.0-0.conda\n", "not a Conda match spec"),
        ("dependencies:\n  - /tmp/pkgs::numpy\n", "not a Conda match spec"),
        ("dependencies:\n  - numpy[url=https://x/numpy.conda]\n", "not a Conda match spec"),
        ("dependencies:\n  - numpy=1.2=b=c\n", "not a Conda match spec"),
        ("dependencies:\n  - pip:\n      - --index-url=https://evil/simple\n", "installer option"),
        ("dependencies:\n  - pip:\n      - -e .\n", "installer option"),
        ("dependencies:\n  - pip:\n      - ./src\n", "local path"),
        ("dependencies:\n  - pip:\n      - https://evil/x.whl\n", "is a URL"),
        ("dependencies:\n  - pip:\n      - flask @ https://evil/flask.whl\n", "direct reference"),
        ("dependencies:\n  - pip: flask\n", "'pip:' must be a list"),
    ],
)
def test_bad_files_are_refused_with_the_reason(text: str, message: str):
    with pytest.raises(PolicyError) as info:
        envfile.parse(text, LayenvPolicy())
    assert message in info.value.message and info.value.status in (400, 403)


def test_long_lists_are_refused_before_they_are_read():
    """YAML aliases make long lists from a short text (``[&a numpy, *a, *a…]``): counted before any is parsed."""
    policy = LayenvPolicy(max_packages=20)
    many = "dependencies: [&a '%bad'" + ", *a" * 20 + "]\n"  # refused for the count, not for the spec
    with pytest.raises(PolicyError, match="21 packages: at most 20"):
        envfile.parse(many, policy)
    pip = "dependencies:\n  - pip:\n" + "".join(f"      - ./p{i}\n" for i in range(21))
    with pytest.raises(PolicyError, match="21 packages: at most 20"):
        envfile.parse(pip, policy)
    channels = "channels:\n" + "".join(f"  - c{i}\n" for i in range(51))
    with pytest.raises(PolicyError, match="51 channels: at most 50"):
        envfile.parse(channels, policy)


def test_pip_entries_follow_the_create_rules():
    with pytest.raises(PolicyError, match="denied_packages"):
        envfile.parse("dependencies:\n  - pip:\n      - evil-pkg\n", LayenvPolicy(denied_packages=["evil-*"]))
    allowed = LayenvPolicy(allowed_installer_options=["--pre"])
    assert envfile.parse("dependencies:\n  - pip:\n      - --pre\n      - six\n", allowed).pip == ("--pre", "six")


# ------------------------------------------------------------------------ matching specs against records

NUMPY = {"name": "numpy", "version": "1.26.4", "build": "py311h64a7726_0", "build_number": 0,
         "subdir": "linux-64", "channel": "https://conda.anaconda.org/conda-forge/linux-64"}  # fmt: skip
MAIN_SIX = {"name": "six", "version": "1.16.0", "build": "pyhd3eb1b0_1", "build_number": 1, "subdir": "noarch",
            "channel": "https://repo.anaconda.com/pkgs/main/noarch"}  # fmt: skip
RC = {"name": "scipy", "version": "2.0.0rc1", "build": "py311_0", "subdir": "linux-64"}  # no channel recorded


@pytest.mark.parametrize(
    ("spec", "met"),
    [
        ("numpy", True),
        ("NumPy", True),
        ("numpy=1.26", True),  # =1.26 means 1.26.*
        ("numpy=1.2", False),  # 1.2.*, which 1.26.4 is not: not a string prefix
        ("numpy==1.26", False),  # == is exact
        ("numpy==1.26.4", True),
        ("numpy>=1.9", True),  # 1.26 > 1.9: versions compare by number
        ("numpy>=1.2,<2", True),
        ("numpy >=1.2, <2", True),
        ("numpy>=2", False),
        ("numpy<1.26.4|>=2", False),
        ("numpy 1.26.*", True),
        ("numpy=1.26.4=py311h64a7726_0", True),
        ("numpy=1.26.4=py311*", True),
        ("numpy=1.26.4=py312h64a7726_0", False),
        ("conda-forge::numpy", True),
        ("conda-forge::numpy=1.26", True),
        ("defaults::numpy", False),
        ("https://conda.anaconda.org/conda-forge::numpy", False),  # refused at parse time, see above
        ("pkgs/main::six", True),
        ("defaults::six=1.16", True),
        ("conda-forge::six", False),
        ("scipy>=2.0", False),  # 2.0.0rc1 < 2.0
        ("scipy>=2.0.0rc0", True),
        ("conda-forge::scipy", True),  # no channel in the record: nothing to check against
        ("torch", False),
        ("pip", True),  # a bare pip only says there is a pip section
        ("pip>=23", False),
    ],
)
def test_each_spec_form_with_conda_semantics(spec: str, met: bool):
    if "://" in spec:
        with pytest.raises(PolicyError):
            envfile.parse_conda_spec(spec)
        return
    unmet = envfile.unmet_specs((envfile.parse_conda_spec(spec),), [NUMPY, MAIN_SIX, RC])
    assert (unmet == []) is met


def test_unmet_specs_say_what_the_base_has():
    specs = tuple(envfile.parse_conda_spec(s) for s in ("numpy>=2", "torch", "defaults::numpy"))
    assert envfile.unmet_specs(specs, [NUMPY]) == [
        envfile.Unmet("numpy>=2", "1.26.4=py311h64a7726_0 from conda-forge"),
        envfile.Unmet("torch", None),
        envfile.Unmet("defaults::numpy", "1.26.4=py311h64a7726_0 from conda-forge"),
    ]


def _base(tmp_path: Path, name: str, records: list[dict]) -> Environment:
    meta = tmp_path / name / "conda-meta"
    meta.mkdir(parents=True)
    for record in records:
        (meta / f"{record['name']}-{record['version']}-{record['build']}.json").write_text(json.dumps(record))
    return dataclasses.replace(_plain_env(tmp_path / name, name), kind=CONDA_ENV)


def test_the_closest_satisfying_base_wins(tmp_path: Path):
    python = {"name": "python", "version": "3.11.9", "build": "h0_0_cpython", "subdir": "linux-64"}
    big_files = {**RC, "name": "torch", "version": "2.3.0", "files": [f"lib/f{i:07d}.py" for i in range(40000)]}
    small = _base(tmp_path, "small", [python, NUMPY])
    big = _base(tmp_path, "big", [python, NUMPY, MAIN_SIX, big_files])
    specs = lambda *texts: tuple(envfile.parse_conda_spec(t) for t in texts)  # noqa: E731
    ranked = envfile.rank_bases(specs("python=3.11", "numpy"), [big, small])
    assert [(m.base.name, m.unmet, m.extra) for m in ranked] == [("small", (), 0), ("big", (), 2)]
    # a record of megabytes (torch lists every file) is read too
    assert (tmp_path / "big/conda-meta/torch-2.3.0-py311_0.json").stat().st_size > 256 * 1024
    ranked = envfile.rank_bases(specs("python=3.11", "torch>=2"), [small, big])
    assert [(m.base.name, len(m.unmet)) for m in ranked] == [("big", 0), ("small", 1)]
    ranked = envfile.rank_bases(specs("python=3.12", "torch>=2"), [small, big])
    assert ranked[0].base.name == "big" and [u.spec for u in ranked[0].unmet] == ["python=3.12"]
    assert ranked[0].to_json()["unmet"] == [{"spec": "python=3.12", "found": "3.11.9=h0_0_cpython"}]
