"""Action bodies built on the tracer's hot path: ``actions.action_body``, only faster.

A traced AppendEntries lists every entry it carries, each a nested dict whose
``Kind`` is an ``EntryKind`` on the leader. ``actions.plain`` calls itself once
per value and walks a chain of ``isinstance`` checks for every enum, which
made building the bodies of one batch cost more than sending it. Here plain
values are kept inline, and the conversion for each other type (``int`` for
an ``IntEnum``...) is looked up once per type, in the same order of checks
as ``actions.plain``, so every body is exactly the dict ``action_body`` builds
(``tests/test_tracing_bodies.py`` checks this on every action class).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from teachraft.tracing.actions import field_names, plain

_SCALARS: frozenset[type] = frozenset({str, int, bool, bytes, float, type(None)})
_CONVERT: dict[type, Callable[[Any], Any]] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}
_BASES: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (bool, bool),
    (int, int),
    (str, str),
    ((bytes, bytearray, memoryview), bytes),
    (float, float),
)


def action_body(action: object) -> dict[str, Any]:
    """The action's fields as a plain dict in declaration order (see ``actions.action_body``)."""
    cls = type(action)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = field_names(cls)
    scalars = _SCALARS
    body: dict[str, Any] = {}
    for name in names:
        value = getattr(action, name)
        body[name] = value if type(value) in scalars else plain_value(value)
    return body


def plain_value(value: Any) -> Any:
    """``actions.plain(value)``: dict/list/str/int/bool/float/bytes/None only."""
    kind = type(value)
    scalars = _SCALARS
    if kind is dict:
        out = {}
        for key, item in value.items():
            out[key if type(key) is str else str(key)] = (
                item if type(item) in scalars else plain_value(item)
            )
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in scalars else plain_value(item) for item in value]
    if kind in scalars:
        return value
    convert = _CONVERT.get(kind)
    if convert is None:
        convert = _converter(kind)
    return convert(value)


def _converter(kind: type) -> Callable[[Any], Any]:
    """How ``actions.plain`` turns a value of type ``kind`` into a plain one.

    Subclasses of the scalar types (enums) become their base type; anything
    else (dict subclasses, dataclasses, other sequences) goes to ``plain``.
    """
    convert: Callable[[Any], Any] = plain
    if not issubclass(kind, (dict, list, tuple)) and not dataclasses.is_dataclass(kind):
        for bases, base in _BASES:
            if issubclass(kind, bases):
                convert = base
                break
    if len(_CONVERT) < 1000:
        _CONVERT[kind] = convert
    return convert
