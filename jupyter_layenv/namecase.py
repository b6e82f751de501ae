"""A new env's name may not differ from a name in its root only by case (``ML`` beside ``ml``).

On a case-insensitive file system (a share from macOS or Windows, mounted here or used there) the two are one
folder; everywhere, ids and kernel names are lower case, so the second env would take a hashed id and rename the
first one's kernel under notebooks saved with it. Names are ASCII (``policy.validate_name``): no Unicode
normalisation (NFC/NFD) can make two of them look alike.
"""

from __future__ import annotations

import os

from . import fsread
from .policy import PolicyError


def case_refusal(path: str) -> PolicyError | None:
    """409 naming the entry of ``path``'s folder that is ``path``'s name but for case; ``None`` when there is none.
    One listing of the folder (blocking: from a thread, as the rest of a create's planning)."""
    root, name = os.path.split(path)
    folded = name.casefold()
    twin = next((entry for entry in fsread.listdir(root) if entry != name and entry.casefold() == folded), None)
    if twin is None:
        return None
    return PolicyError(
        409,
        f"{os.path.join(root, twin)} differs from {name!r} only by case: pick another name (a file system shared "
        "with macOS or Windows takes the two for one folder, and kernel names are lower case)",
        "exists",
    )
