"""Seeded network faults between named nodes: partitions, cuts, loss and delay.

Every teachraft node asks one shared ``FaultFilter`` what to do with each frame
it is about to send (``route(src, dst)``): drop it, or deliver it after some
delay. Faults are therefore applied by the *sender*, per direction, which keeps
the rules simple to state:

- ``partition(*groups)``: nodes in different groups lose every frame between
  them, both ways. Nodes named in no group keep talking to everyone. A new
  partition replaces the previous one; ``partition()`` with no groups clears it.
- ``cut(a, b)``: every frame a->b and b->a is lost. ``cut(a, b, one_way=True)``
  loses only a->b frames: A still hears B, B never hears A. Over a one-way cut a
  request from B reaches A but A's reply is lost, so B's call times out, just as
  on a real half-broken link. Cuts add up with partitions; ``uncut`` removes one.
- ``drop(a, b, p)``: each a->b frame is lost with probability ``p``.
- ``delay(a, b, mean, jitter)``: each a->b frame waits a uniform draw from
  ``[mean - jitter, mean + jitter]`` (never negative); independent draws reorder
  frames, as on a real network.
- ``heal()`` removes every fault.

Randomness is deterministic: each directed link has its own ``random.Random``
seeded from ``(seed, a, b)``, so the decisions on one link depend only on the
seed and on how many frames that link carried, not on how asyncio interleaved
the other links. With no fault installed ``route`` returns at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

Subscriber = Callable[[str, dict], None]


class FaultFilter:
    """The network's fault table, consulted by every sender for every frame."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._groups: dict[str, int] = {}
        self._group_list: list[list[str]] = []
        self._cuts: set[tuple[str, str]] = set()
        self._drops: dict[tuple[str, str], float] = {}
        self._delays: dict[tuple[str, str], tuple[float, float]] = {}
        self._rngs: dict[tuple[str, str], random.Random] = {}
        self._subscribers: list[Subscriber] = []
        self.active = False
        """True while any fault is installed (read it, never set it)."""

    # -- changing the faults -------------------------------------------------

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the named nodes into groups that cannot talk to each other."""
        table: dict[str, int] = {}
        listed: list[list[str]] = []
        for index, group in enumerate(groups):
            members = list(group)
            for name in members:
                if name in table:
                    raise ValueError(f"node {name!r} is in more than one partition group")
                table[name] = index
            listed.append(members)
        self._groups = table
        self._group_list = listed
        self._changed("partition", {"groups": [list(g) for g in listed]})

    def cut(self, a: str, b: str, one_way: bool = False) -> None:
        """Lose every frame a->b, and b->a too unless ``one_way``."""
        self._cuts.add((a, b))
        if not one_way:
            self._cuts.add((b, a))
        self._changed("cut", {"a": a, "b": b, "one_way": one_way})

    def uncut(self, a: str, b: str, one_way: bool = False) -> None:
        """Undo ``cut(a, b, one_way)``: restore a->b, and b->a too unless ``one_way``."""
        self._cuts.discard((a, b))
        if not one_way:
            self._cuts.discard((b, a))
        self._changed("uncut", {"a": a, "b": b, "one_way": one_way})

    def drop(self, a: str, b: str, p: float) -> None:
        """Lose each a->b frame with probability ``p`` (0 removes the loss)."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], not {p}")
        if p == 0.0:
            self._drops.pop((a, b), None)
        else:
            self._drops[(a, b)] = p
        self._changed("drop", {"a": a, "b": b, "p": p})

    def delay(self, a: str, b: str, mean: float, jitter: float) -> None:
        """Delay each a->b frame by a seeded uniform draw in mean±jitter seconds."""
        if mean < 0 or jitter < 0:
            raise ValueError(f"delay mean and jitter must be >= 0, not {mean}, {jitter}")
        if mean == 0 and jitter == 0:
            self._delays.pop((a, b), None)
        else:
            self._delays[(a, b)] = (mean, jitter)
        self._changed("delay", {"a": a, "b": b, "mean": mean, "jitter": jitter})

    def heal(self) -> None:
        """Remove every fault: partitions, cuts, losses and delays."""
        self._groups = {}
        self._group_list = []
        self._cuts.clear()
        self._drops.clear()
        self._delays.clear()
        self._changed("heal", {})

    def subscribe(self, fn: Subscriber) -> None:
        """Call ``fn(kind, details)`` after every change (e.g. to trace fault events)."""
        self._subscribers.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        """Stop calling ``fn``; unknown functions are ignored."""
        if fn in self._subscribers:
            self._subscribers.remove(fn)

    # -- asking about the faults ---------------------------------------------

    def route(self, src: str, dst: str) -> float | None:
        """Decide one src->dst frame: None to drop it, else its delay in seconds."""
        if not self.active:
            return 0.0
        key = (src, dst)
        if key in self._cuts or self._partitioned(src, dst):
            return None
        p = self._drops.get(key)
        if p is not None and self._rng(key).random() < p:
            return None
        spread = self._delays.get(key)
        if spread is None:
            return 0.0
        mean, jitter = spread
        return max(0.0, self._rng(key).uniform(mean - jitter, mean + jitter))

    def link_state(self, a: str, b: str) -> str:
        """Describe the a->b direction: "up", "cut", "one-way", "lossy" or "slow".

        "cut" means frames are lost both ways; "one-way" means a->b frames are
        lost while b->a frames pass (so ``link_state(b, a)`` is not "one-way"
        but whatever b->a is). Loss beats delay when a link has both.
        """
        forward = (a, b) in self._cuts or self._partitioned(a, b)
        backward = (b, a) in self._cuts or self._partitioned(b, a)
        if forward:
            return "cut" if backward else "one-way"
        if (a, b) in self._drops:
            return "lossy"
        if (a, b) in self._delays:
            return "slow"
        return "up"

    def describe(self) -> dict:
        """A plain-data snapshot of every installed fault (for views and traces)."""
        return {
            "groups": [list(g) for g in self._group_list],
            "cuts": sorted(self._cuts),
            "drops": {f"{a}->{b}": p for (a, b), p in sorted(self._drops.items())},
            "delays": {f"{a}->{b}": list(v) for (a, b), v in sorted(self._delays.items())},
        }

    # -- internals -----------------------------------------------------------

    def _partitioned(self, src: str, dst: str) -> bool:
        groups = self._groups
        if not groups:
            return False
        g_src = groups.get(src)
        g_dst = groups.get(dst)
        return g_src is not None and g_dst is not None and g_src != g_dst

    def _rng(self, key: tuple[str, str]) -> random.Random:
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = random.Random(f"{self.seed}:{key[0]}->{key[1]}")
        return rng

    def _changed(self, kind: str, details: dict) -> None:
        self.active = bool(self._groups or self._cuts or self._drops or self._delays)
        for fn in list(self._subscribers):
            try:
                fn(kind, details)
            except Exception:
                logger.exception("fault subscriber %r failed on %s", fn, kind)
