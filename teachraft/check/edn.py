"""A small EDN reader and writer: just what Jepsen and Knossos histories use.

Jepsen writes histories as EDN maps (``{:process 0, :type :invoke, :f :read,
:value nil}``). Python has no EDN library in teachraft's dependencies, and the
subset needed is small: maps, vectors, lists, sets, keywords, strings,
integers, floats, nil and booleans, with ``;`` comments and commas as
whitespace. Reading builds plain Python values (keywords become
:class:`Keyword`, a ``str`` subclass) and never evaluates anything.

Jepsen also writes tagged values (``#jepsen.history.Op{...}``, ``#error
{...}``) and bare symbols (an exception's class name) in its ops: a tag is
dropped, leaving the value it tags, and a symbol is read as a
:class:`Symbol`, so such histories read without any code being run.
"""

from __future__ import annotations

import math
import re
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<ws>[\s,]+|;[^\n]*)
  | (?P<open>\#\{|[\[({])
  | (?P<close>[\])}])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<symbolic>\#\#(?:Inf|-Inf|NaN))
  | (?P<atom>[^\s,;"\[\](){}]+)
    """,
    re.VERBOSE | re.DOTALL,
)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?")
_SYMBOL = re.compile(r"[A-Za-z*!_?$%&=<>.+\-/][\w*!?$%&=<>.+\-/:#']*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}
_CLOSERS = {"[": "]", "(": ")", "{": "}", "#{": "}"}


class Keyword(str):
    """An EDN keyword such as ``:invoke`` (held without the colon)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Keyword({str(self)!r})"


class Symbol(str):
    """An EDN symbol such as ``java.net.ConnectException``: only ever a name here."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Symbol({str(self)!r})"


class EdnError(ValueError):
    """The text is not EDN of the subset teachraft reads."""


def loads_all(text: str) -> list[Any]:
    """Every top-level form in ``text``, in order (an iterative parser: no recursion limit)."""
    top: list[Any] = []
    stack: list[tuple[str, list[Any]]] = []
    items = top
    pos = 0
    atoms: dict[str, Any] = {}
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            raise EdnError(f"cannot read EDN at character {pos}: {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        tok = m.group()
        if kind == "atom":
            if tok[0] == "#" and len(tok) > 1 and tok[1].isalpha():
                continue  # a tag: the value it tags stands for it
            value = atoms.get(tok, atoms)
            if value is atoms:
                value = atoms[tok] = _atom(tok)
            items.append(value)
        elif kind == "string":
            items.append(tok[1:-1] if "\\" not in tok else _string(tok))
        elif kind == "open":
            stack.append((tok, items))
            items = []
        elif kind == "close":
            if not stack:
                raise EdnError(f"unexpected {tok!r}")
            opener, outer = stack.pop()
            if _CLOSERS[opener] != tok:
                raise EdnError(f"{opener!r} closed by {tok!r}")
            outer.append(_build(opener, items))
            items = outer
        else:
            items.append({"##Inf": math.inf, "##-Inf": -math.inf, "##NaN": math.nan}[tok])
    if pos != len(text):
        raise EdnError(f"cannot read EDN at character {pos}: {text[pos : pos + 20]!r}")
    if stack:
        raise EdnError(f"unclosed {stack[-1][0]!r}")
    return top


def _build(opener: str, items: list[Any]) -> Any:
    if opener == "{":
        if len(items) % 2:
            raise EdnError("a map needs an even number of forms")
        return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}
    if opener == "#{":
        return frozenset(_hashable(x) for x in items)
    return items


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _string(tok: str) -> str:
    body = tok[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
        elif body[i + 1] == "u":
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
    return "".join(out)


def _atom(tok: str) -> Any:
    if tok == "nil":
        return None
    if tok in ("true", "false"):
        return tok == "true"
    if tok.startswith(":") and len(tok) > 1:
        return Keyword(tok[1:])
    if _INT.fullmatch(tok):
        return int(tok.rstrip("N"))
    if _FLOAT.fullmatch(tok):
        return float(tok.rstrip("M"))
    if _SYMBOL.fullmatch(tok):
        return Symbol(tok)
    raise EdnError(f"unsupported EDN atom {tok!r}")


def dumps(value: Any) -> str:
    """One EDN form for ``value`` (None, bool, int, float, str, Keyword, list, tuple, dict)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Keyword):
        return ":" + str(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dumps(k)} {dumps(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as EDN")


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def _float(x: float) -> str:
    if math.isnan(x):
        return "##NaN"
    if math.isinf(x):
        return "##Inf" if x > 0 else "##-Inf"
    text = repr(x)
    return text if any(c in text for c in ".eE") else text + ".0"
