"""Text the commands print, safe whatever the names on disk hold.

Anyone who may write a shared root chooses the names of what is in it: a newline, a terminal escape sequence
(``ESC [ …``), a bidirectional override or a byte that is not UTF-8 (which Python carries as a lone surrogate,
``\\udcff``) in an environment's name reaches every other member's ``jupyter layenv list``. Printed as is, it forges
lines, recolours or clears their terminal, or ends the command with a ``UnicodeEncodeError``.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 and C1 controls, DEL, the bidirectional embeddings/overrides/isolates, and lone surrogates
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as os.fsdecode carries it: shown as that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` for a terminal line: each control character, bidi override and undecodable byte written as its
    escape (``\\n``, ``\\x1b``, ``\\xff``), as ``ls`` shows such names, so it stays one line of plain text."""
    return _UNPRINTABLE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """:func:`printable` for each line of a text whose line breaks are its own (a message, a report)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def json_text(data: Any, **options: Any) -> str:
    """``json.dumps`` that writes non-ASCII text as is, but a lone surrogate (a byte of a name that is not UTF-8) as
    its JSON escape ``\\udcff``, as the REST API's ASCII JSON does: the text is valid UTF-8, and decodes back (and
    ``os.fsencode``s) to the very name."""
    text = json.dumps(data, ensure_ascii=False, **options)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
