"""The pure pieces of creating: spec parsing, command lines (nothing from a request on them), channel names."""

from __future__ import annotations

import pytest

from jupyter_layenv.create.builder import BuildPlan, virtualenv_command
from jupyter_layenv.create.installers import InstallerSettings, pip_command, uv_command
from jupyter_layenv.export import channel_name
from jupyter_layenv.policy import LayenvPolicy, PolicyError


def test_requirements_text_comments_markers_extras():
    text = "# project\n\niniconfig==2.0.0  # pinned\nrequests[socks]>=2,<3\nlegacy; python_version < '3'\n"
    assert LayenvPolicy().parse_create({"name": "x", "base": "b", "requirements": text}).requirements == (
        "iniconfig==2.0.0",
        "requests[socks]<3,>=2",
        'legacy; python_version < "3"',
    )


def test_direct_references_only_when_allowed():
    spec = "flask @ https://example.com/flask-3.0.0-py3-none-any.whl"
    with pytest.raises(PolicyError) as info:
        LayenvPolicy().parse_spec(spec, "packages")
    assert info.value.status == 403 and "LayenvPolicy.allow_direct_references" in info.value.message
    assert LayenvPolicy(allow_direct_references=True).parse_spec(spec, "packages") == spec


def test_too_many_packages():
    with pytest.raises(PolicyError, match="at most 2"):
        LayenvPolicy(max_packages=2).parse_create({"name": "x", "base": "b", "packages": ["a", "b", "c"]})


def _plan(**changes) -> BuildPlan:
    fields = dict(name="p", path="/r/p", base_id="conda-b", base_path="/c/b", base_python="/c/b/bin/python",
                  python_version="3.11", inherit=True, seed_pip=False, installer="uv", uv="/bin/uv",
                  requirements=("a",), requested=("a",), display_name=None, creator="u")  # fmt: skip
    return BuildPlan(**{**fields, **changes})


def test_virtualenv_command():
    command = virtualenv_command(_plan())
    assert command[-2:] == ["--", "/r/p"] and "--system-site-packages" in command and "--no-seed" in command
    command = virtualenv_command(_plan(inherit=False, seed_pip=True))
    assert "--system-site-packages" not in command and "--no-seed" not in command and "--no-download" in command


def test_installer_commands_take_sources_from_settings_and_packages_from_a_file():
    settings = InstallerSettings(index_url="https://mirror/simple", extra_index_urls=("https://x/simple",),
                                 find_links=("/wheels",))  # fmt: skip
    uv = uv_command("/bin/uv", "/r/p/bin/python", "/jobs/1.requirements.txt", settings)
    assert uv[:4] == ["/bin/uv", "pip", "install", "--no-config"] and uv[-2:] == ["-r", "/jobs/1.requirements.txt"]
    assert uv[uv.index("--index-url") : uv.index("--index-url") + 2] == ["--index-url", "https://mirror/simple"]
    pip = pip_command("/r/p/bin/python", "/jobs/1.requirements.txt", InstallerSettings(offline=True))
    assert "--no-index" in pip and "--isolated" in pip and pip[-2:] == ["-r", "/jobs/1.requirements.txt"]
    offline = uv_command("/bin/uv", "/py", "/req", InstallerSettings(offline=True, index_url="https://ignored"))
    assert "--offline" in offline and "--no-index" in offline and "https://ignored" not in offline


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://conda.anaconda.org/conda-forge/linux-64", "conda-forge"),
        ("https://conda.anaconda.org/pytorch/noarch", "pytorch"),
        ("https://repo.anaconda.com/pkgs/main/linux-64", "defaults"),
        ("conda-forge", "conda-forge"),
        ("https://mirror.example/conda/internal/osx-arm64", "https://mirror.example/conda/internal"),
        ("file:///srv/channel/", "file:///srv/channel"),  # a local mirror: conda reads "srv/channel" as anaconda.org's
        ("file:///srv/channel/linux-64", "file:///srv/channel"),
    ],
)
def test_channel_names(url: str, name: str):
    assert channel_name(url) == name


def test_a_job_store_not_made_yet_has_the_free_space_of_where_it_will_be(tmp_path):
    """Broken by: counting a store whose parents do not exist yet (a server's first job) as having no space: a full
    env root was then blamed on the job store."""
    from jupyter_layenv.create.jobs import _free_bytes

    assert _free_bytes(str(tmp_path / "data" / "layenv" / "jobs")) > 0  # tmp_path's (others write there meanwhile)
