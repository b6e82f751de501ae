"""Wheels written by hand, for hermetic installs: a wheel is a zip with a dist-info (PEP 427); no network, no build."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


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
