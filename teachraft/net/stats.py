"""Per-link frame counters, kept by each node for the topology figure.

A node counts, for every directed pair of node names ``(src, dst)`` it is part
of, the frames it sent, received, and dropped (lost to a fault, or discarded
because the peer could not be reached). Counting happens on the hot path, so a
counter is a slotted object whose fields are bumped in place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class LinkStats:
    """Frames on one directed link ``src -> dst`` as seen by one node."""

    sent: int = 0
    received: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as plain data."""
        return {"sent": self.sent, "received": self.received, "dropped": self.dropped}


class LinkTable(dict[tuple[str, str], LinkStats]):
    """A mapping ``(src, dst) -> LinkStats`` that creates counters on first use."""

    def link(self, src: str, dst: str) -> LinkStats:
        """Return the counter of ``src -> dst``, creating it if needed."""
        key = (src, dst)
        stats = self.get(key)
        if stats is None:
            stats = self[key] = LinkStats()
        return stats

    def as_dict(self) -> dict[tuple[str, str], dict[str, int]]:
        """Every counter as plain data."""
        return {key: value.as_dict() for key, value in self.items()}
