"""Stable storage for a server's term and log: what lets a crashed server restart safely.

Raft's rule is that a server answers only after its term and new entries are on
stable storage. The host writes every ``Persist`` effect of a batch here and
fsyncs once, before any message of that batch leaves. The file is an
append-only sequence of msgpack records ``[term, truncate_from, entries]``;
loading replays them, so a torn last record (a crash mid-write) is ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import msgpack

from teachraft.core.effects import Persist
from teachraft.core.log import Entry

log = logging.getLogger(__name__)


class Storage:
    """One server's durable state in ``data_dir/server{id}.log``."""

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._file = self.path.open("ab")

    def write(self, persists: list[Persist]) -> None:
        """Append the batch and make it durable before the host sends anything."""
        packer = msgpack.Packer(use_bin_type=True)
        buf = bytearray()
        for p in persists:
            buf += packer.pack([p.term, p.truncate_from or 0, [e.to_wire() for e in p.entries]])
        self._file.write(buf)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def load(path: str | Path) -> tuple[int, list[Entry]] | None:
        """Replay a storage file: (term, entries), or None if there is none."""
        path = Path(path)
        if not path.exists():
            return None
        term = 0
        entries: list[Entry] = []
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(path.read_bytes())
        try:
            for record in unpacker:
                t, truncate_from, batch = record
                term = max(term, t)
                if truncate_from:
                    del entries[truncate_from - 1 :]
                entries.extend(Entry.from_wire(e) for e in batch)
        except (ValueError, TypeError, msgpack.ExtraData) as exc:
            log.warning("%s: ignoring a torn record at the end (%s)", path, exc)
        return term, entries
