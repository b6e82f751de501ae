"""Wheels written by hand, for hermetic installs: a wheel is a zip with a dist-info (PEP 427); no network, no build."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(
    directory: Path, name: str, version: str, files: dict[str, str], requires: tuple[str, ...] = ()
) -> Path:
    """``<name>-<version>-py3-none-any.whl`` holding ``files`` (archive path -> text) and its metadata
    (``requires``: its ``Requires-Dist`` lines)."""
    dist_info = f"{name}-{version}.dist-info"
    requires_dist = "".join(f"Requires-Dist: {line}\n" for line in requires)
    contents = {
        **files,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires_dist}",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: layenv-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},{_record_hash(text.encode())},{len(text.encode())}" for path, text in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return wheel


_INSTALL_RECORDS = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}  # written by the installer, not the wheel


def wheels_from_installed(directory: Path, names: tuple[str, ...]) -> list[Path]:
    """The wheels of installed distributions and their runtime closure, packed again from the files their RECORD
    lists in site-packages (the very files pip unpacked), tagged as their WHEEL file says: a real, offline
    wheelhouse for packages such as ipykernel that a hand-written wheel cannot stand in for. Console scripts and
    data files outside site-packages are left out; target an interpreter of the running one's version."""
    import csv
    import io
    import os

    from envtree import _dependency_closure

    directory.mkdir(parents=True, exist_ok=True)
    wheels = []
    for dist in _dependency_closure(names):
        site = os.path.realpath(str(dist.locate_file("")))
        rows = [row for row in csv.reader(io.StringIO(dist.read_text("RECORD") or "")) if row]
        entries = []
        for row in rows:
            source = os.path.normpath(os.path.join(site, row[0]))
            inside = source.startswith(site + os.sep) and os.path.isfile(source)
            if inside and "__pycache__" not in row[0] and row[0].rsplit("/", 1)[-1] not in _INSTALL_RECORDS:
                entries.append((os.path.relpath(source, site), source))
        dist_info = next(path.split("/", 1)[0] for path, _ in entries if path.endswith(".dist-info/METADATA"))
        tags = [line[4:].strip() for line in (dist.read_text("WHEEL") or "").splitlines() if line.startswith("Tag:")]
        tags = tags or ["py3-none-any"]
        parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
        stem = dist_info[: -len(".dist-info")]
        wheel = directory / f"{stem}-{'-'.join('.'.join(part) for part in parts)}.whl"
        record = []
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, source in entries:
                data = Path(source).read_bytes()
                archive.writestr(path, data)
                record.append(f"{path},{_record_hash(data)},{len(data)}")
            record.append(f"{dist_info}/RECORD,,")
            archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
        wheels.append(wheel)
    return wheels


# ---------------------------------------------------------------------- the create and layer tests' wheelhouses

INICONFIG_VERSION = "2.0.0"
FOUNDATION = ("jupyter_core", "traitlets", "platformdirs")  # in the test bases through ipykernel


def write_create_wheels(directory: Path) -> None:
    """``iniconfig``, which the test bases do not have, and a newer version of a module the create base has (1.0):
    a layer installing it shadows the base's."""
    source = f'__version__ = "{INICONFIG_VERSION}"\nWHERE = "wheelhouse"\n'
    write_wheel(directory, "iniconfig", INICONFIG_VERSION, {"iniconfig/__init__.py": source})
    write_wheel(directory, "layenv_base_marker", "2.0", {"layenv_base_marker.py": 'WHERE = "layer 2.0"\n'})


def runtime_requires(name: str) -> tuple[str, ...]:
    """A distribution's run-time requirements (no extras), as its real wheel declares them."""
    return tuple(spec for spec in metadata.requires(name) or [] if Requirement(spec).marker is None)


def write_faithful_wheels(directory: Path) -> None:
    """The create wheels, plus what tests a layer's faithfulness to its base: the base's own packages at the base's
    versions (an installer that ignores the base would copy them into the layer), packages needing them, and a wheel
    uv refuses to install (a change that fails mid-way)."""
    write_create_wheels(directory)
    for name in FOUNDATION:  # the base's own versions, as an index has them
        write_wheel(directory, name, metadata.version(name), {f"{name}/__init__.py": ""}, runtime_requires(name))
    # like nbformat: needs what the base has, plus one package the base lacks
    write_wheel(directory, "nbthing", "1.0", {"nbthing.py": "import jupyter_core, iniconfig\nWHERE = 'layer'\n"},
                ("jupyter_core>=4", "traitlets>=5.1", "iniconfig"))  # fmt: skip
    # needs a newer version of a base package than the base has
    write_wheel(directory, "needsnew", "1.0", {"needsnew.py": ""}, ("layenv_base_marker>=2",))
    # resolvable (its metadata is fine), but uv refuses to install it
    with zipfile.ZipFile(directory / "brokenwheel-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("brokenwheel.py", "")
        wheel.writestr("brokenwheel-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: brokenwheel\nVersion: 1.0\n")
        wheel.writestr(
            "brokenwheel-1.0.dist-info/WHEEL", "Wheel-Version: 99.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr("brokenwheel-1.0.dist-info/RECORD", "")
