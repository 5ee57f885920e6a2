"""The shape every core machine has: inputs through ``step`` and ``tick``, effects out.

``Server``, ``Coord`` and ``ClientSession`` fit ``Machine``. What drives one (the
asyncio hosts in ``teachraft.runtime``, the seeded simulator in
``teachraft.sim``, a grader that replays a transcript) needs nothing else:

* ``step(msg, responder)`` feeds one input: a wire message, or a local input
  such as the coord's ``Heartbeat``. ``responder`` is where the answer to a
  request goes; the machine hands it back, untouched, in a ``Reply`` effect.
* ``tick()`` is the only way time enters a machine: one timer interval passed.
* ``flush()`` ends a batch of inputs (the server sends what it appended).
* ``take()`` returns the effects produced since the last call
  (``teachraft.core.effects``), to be carried out in order.
"""

from __future__ import annotations

from typing import Any, Protocol

from teachraft.core.effects import Effect


class NotServed(ValueError):
    """A machine was handed an input it has no handler for."""


class Machine(Protocol):
    """A pure protocol machine; see the module docstring."""

    def step(self, msg: Any, responder: Any = None) -> None: ...

    def tick(self) -> None: ...

    def flush(self) -> None: ...

    def take(self) -> list[Effect]: ...
