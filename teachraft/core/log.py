"""The replicated log: 1-indexed entries, each a command stamped with its term.

A command is a Put, a Get (gets go through the log, which is what makes them
linearizable) or the No-Op a new leader appends in its term. Every command but
the No-Op carries the client id and op id used for duplicate detection.

``describe`` is the one formatter for entries, shared by the demo's printout,
the figures and error messages: ``Put(k13,val13)``, ``Get(k13)``, ``No-Op``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple


class EntryKind(IntEnum):
    """What a log entry's command is, numbered as in KVRaft (its ``Kind``)."""

    NOOP = 0
    PUT = 1
    GET = 2


NOOP, PUT, GET = EntryKind.NOOP, EntryKind.PUT, EntryKind.GET
KIND_NAMES = {NOOP: "NoOp", PUT: "Put", GET: "Get"}


class Entry(NamedTuple):
    """One log entry. Field order mirrors KVRaft's ``{Term, Command, Index}``.

    A named tuple: entries are created for every replicated command, so they
    must be cheap to build, compare and send (the wire form is the tuple itself).
    """

    term: int
    index: int  # type: ignore[assignment]  # the paper's name; shadows tuple.index
    kind: int
    key: str = ""
    value: str = ""
    client_id: str = ""
    op_id: int = 0
    acked_below: int = 0

    def to_wire(self) -> Entry:
        return self  # msgpack packs a tuple as an array

    @classmethod
    def from_wire(cls, item: Any) -> Entry:
        if type(item) is not list or len(item) != 8:
            raise ValueError("malformed log entry")
        term, index, kind, key, value, client_id, op_id, acked_below = item
        if (
            type(term) is not int
            or type(index) is not int
            or type(kind) is not int
            or type(key) is not str
            or type(value) is not str
            or type(client_id) is not str
            or type(op_id) is not int
            or type(acked_below) is not int
            or kind not in KIND_NAMES
        ):
            raise ValueError("malformed log entry")
        return cls._make(item)

    def describe(self) -> str:
        """The original's text for a command: ``Put(k13,val13)``, ``Get(k13)``, ``No-Op``."""
        if self.kind == PUT:
            return f"Put({self.key},{self.value})"
        if self.kind == GET:
            return f"Get({self.key})"
        return "No-Op"

    def listing(self) -> str:
        """One line of the original's log printout: ``Term=1, Index=27, Entry=Put(k13,val13)``."""
        return f"Term={self.term}, Index={self.index}, Entry={self.describe()}"

    def go_body(self) -> dict[str, Any]:
        """The entry as the original's trace bodies show it (Go field names)."""
        return {
            "Term": self.term,
            "Command": {
                "Kind": self.kind,
                "Key": self.key,
                "Val": self.value,
                "ClientInfo": {"ClientId": self.client_id, "OpId": self.op_id},
            },
            "Index": self.index,
        }


class Log:
    """A Raft log whose first slot is a sentinel, so that ``prev_log_index`` there always matches.

    Without a snapshot the sentinel is ``Entry(0, 0, NOOP)`` at index 0. Once the
    prefix up to ``snapshot_index`` is compacted into a snapshot (§7), the
    sentinel is ``Entry(snapshot_term, snapshot_index, NOOP)``: it stands for the
    snapshot's last included entry, whose term AppendEntries' consistency check
    still needs. Every method takes Raft indexes; ``entries[k]`` has index
    ``snapshot_index + k``.
    """

    __slots__ = ("entries",)

    def __init__(
        self, entries: list[Entry] | None = None, snapshot_index: int = 0, snapshot_term: int = 0
    ) -> None:
        self.entries: list[Entry] = [Entry(snapshot_term, snapshot_index, NOOP)]
        if entries:
            self.entries.extend(entries)

    @property
    def snapshot_index(self) -> int:
        """The last index compacted into the snapshot (0 when nothing is)."""
        return self.entries[0].index

    @property
    def snapshot_term(self) -> int:
        """The term of the snapshot's last included entry."""
        return self.entries[0].term

    @property
    def first_index(self) -> int:
        """The first index still held as an entry."""
        return self.entries[0].index + 1

    @property
    def last_index(self) -> int:
        return self.entries[0].index + len(self.entries) - 1

    @property
    def last_term(self) -> int:
        return self.entries[-1].term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``: None past the end or inside the snapshot."""
        pos = index - self.entries[0].index
        if 0 <= pos < len(self.entries):
            return self.entries[pos].term
        return None

    def __getitem__(self, index: int) -> Entry:
        """The entry at Raft index ``index`` (negative counts from the end, as for lists)."""
        if index < 0:
            return self.entries[index]
        pos = index - self.entries[0].index
        if pos < 0:
            raise IndexError(f"index {index} is compacted into the snapshot")
        return self.entries[pos]

    def slice(self, start: int, stop: int | None = None) -> list[Entry]:
        """Entries with index in [start, stop); ``start`` must be past the snapshot."""
        base = self.entries[0].index
        if start <= base:
            raise IndexError(f"index {start} is compacted into the snapshot")
        return self.entries[start - base : None if stop is None else max(stop - base, 0)]

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)

    def replace_suffix(self, index: int, entries: list[Entry]) -> None:
        """Delete the entry at ``index`` and everything after it, then append ``entries``.

        AppendEntries rules 3 and 4 in one step; ``index`` one past the end appends.
        """
        del self.entries[index - self.entries[0].index :]
        self.entries.extend(entries)

    def truncate_from(self, index: int) -> None:
        """Delete the entry at ``index`` and everything after it (AppendEntries rule 3)."""
        del self.entries[index - self.entries[0].index :]

    def first_index_of_term(self, index: int) -> int:
        """The first index of the run of entries sharing the term at ``index`` (a repair hint).

        The run stops at the snapshot: a follower cannot vouch for compacted entries.
        """
        base = self.entries[0].index
        term = self.entries[index - base].term
        while index > base + 1 and self.entries[index - 1 - base].term == term:
            index -= 1
        return index

    def compact(self, index: int, term: int) -> None:
        """Drop every entry up to ``index``, which a snapshot now stands for (§7).

        Entries after ``index`` stay when the log holds ``index`` with ``term``;
        otherwise (an installed snapshot that this log disagrees with or is
        shorter than) the whole log goes, as the paper's InstallSnapshot rules 6-7 say.
        """
        if self.term_at(index) == term:
            del self.entries[1 : index - self.entries[0].index + 1]
        else:
            del self.entries[1:]
        self.entries[0] = Entry(term, index, NOOP)

    def user_entries(self) -> list[Entry]:
        """The entries still held, without the sentinel."""
        return self.entries[1:]

    def same_as(self, other: Log) -> bool:
        """Both logs end at the same entry and agree wherever both still hold one.

        Servers compact at different moments, so equal logs may hold different
        prefixes; the compacted part is committed, hence equal (Log Matching).
        """
        if self.last_index != other.last_index:
            return False
        start = max(self.snapshot_index, other.snapshot_index)
        if self.term_at(start) != other.term_at(start):
            return False
        return start >= self.last_index or self.slice(start + 1) == other.slice(start + 1)
