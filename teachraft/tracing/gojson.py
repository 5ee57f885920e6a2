"""JSON text exactly as Go's ``encoding/json`` wrote KVRaft's trace files.

Python's encoder with compact separators and ``ensure_ascii=False`` already
agrees with Go on almost everything (field order, ``null``, ``true``, integer
forms, kept non-ASCII). The differences are patched here, on the rare strings
that need it: Go escapes ``<``, ``>``, ``&`` as ``\\u003c``, ``\\u003e``,
``\\u0026`` and U+2028/U+2029 as ``\\u2028``/``\\u2029``; it writes backspace
and form feed as ``\\u0008``/``\\u000c`` (the Go releases of KVRaft's time);
bytes become standard base64 with padding.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

_GO_ESCAPES = re.compile("[<>&\u2028\u2029]|\\\\.")
_REPLACEMENTS = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    "\\b": "\\u0008",
    "\\f": "\\u000c",
}


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"a trace body cannot hold a {type(value).__name__}")


def _make_encoder() -> Callable[[Any], str]:
    """The C encoder called directly: ``JSONEncoder.encode`` rebuilds it per call,
    which costs more than encoding a small body. No circular-reference markers:
    bodies are trees (a cycle ends in RecursionError)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    quote = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or quote is None:
        return json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
        ).encode
    iterencode = make(None, _default, quote, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


_encode = _make_encoder()


def _fix(match: re.Match[str]) -> str:
    text = match.group()
    return _REPLACEMENTS.get(text, text)


def go_json(value: Any) -> str:
    """Compact JSON text of ``value`` with Go's escaping; bytes become base64.

    Raises TypeError, ValueError or RecursionError for values JSON cannot hold.
    """
    text = _encode(value)
    # Six substring scans are cheaper than one search with the regex; a
    # backslash stands for any escape, and the regex then rewrites only \b, \f.
    if (
        "\\" not in text
        and "<" not in text
        and ">" not in text
        and "&" not in text
        and "\u2028" not in text
        and "\u2029" not in text
    ):
        return text
    return _GO_ESCAPES.sub(_fix, text)


QUOTED: dict[str, str] = {}
"""``go_string``'s results by text (read directly on the tracing server's hot path)."""


def go_string(text: str) -> str:
    """A JSON string literal in Go's escaping (cached: used for hosts and tags)."""
    quoted = QUOTED.get(text)
    if quoted is None:
        quoted = go_json(text)
        if len(QUOTED) < 100_000:
            QUOTED[text] = quoted
    return quoted
