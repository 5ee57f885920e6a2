"""Vector clocks with the GoVector rules, as plain ``dict[str, int]``.

These are the rules that every KVRaft trace obeys, and that a student checks
by hand in ShiViz:

* local event: the node's own entry goes up by 1;
* send (make a token): own entry up by 1, then the ticked clock is sent;
* receive (take a token): own entry up by 1 **first**, then every entry
  becomes the maximum of the local and the received value.

Clocks are plain dicts so the tracer's hot path needs no objects; an absent
key means 0. The comparison helpers give the happened-before relation that
the figures and the checkers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Order = Literal["before", "after", "equal", "concurrent"]


def tick(clock: dict[str, int], identity: str) -> int:
    """Advance ``identity``'s own entry by one (a local event or a send)."""
    value = clock.get(identity, 0) + 1
    clock[identity] = value
    return value


def merge_into(clock: dict[str, int], other: Mapping[str, int]) -> None:
    """Per-key maximum of ``clock`` and ``other``, written into ``clock``."""
    for key, value in other.items():
        if value > clock.get(key, 0):
            clock[key] = value


def receive(clock: dict[str, int], identity: str, received: Mapping[str, int]) -> None:
    """A receive event: own entry +1 first, then the max-merge."""
    tick(clock, identity)
    merge_into(clock, received)


def next_clock(
    previous: Mapping[str, int], identity: str, received: Mapping[str, int] | None = None
) -> dict[str, int]:
    """The clock of ``identity``'s next event after ``previous`` (a receive if given)."""
    clock = dict(previous)
    if received is None:
        tick(clock, identity)
    else:
        receive(clock, identity, received)
    return clock


def compare(a: Mapping[str, int], b: Mapping[str, int]) -> Order:
    """How the event stamped ``a`` relates to the event stamped ``b``."""
    a_le_b = all(value <= b.get(key, 0) for key, value in a.items())
    b_le_a = all(value <= a.get(key, 0) for key, value in b.items())
    if a_le_b and b_le_a:
        return "equal"
    if a_le_b:
        return "before"
    if b_le_a:
        return "after"
    return "concurrent"


def happened_before(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    """True when the event stamped ``a`` happened before the one stamped ``b``."""
    return compare(a, b) == "before"


def concurrent(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    """True when neither event happened before the other."""
    return compare(a, b) == "concurrent"
