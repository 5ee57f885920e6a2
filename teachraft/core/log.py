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
    """A Raft log with a sentinel at index 0 so that ``prev_log_index`` 0 always matches."""

    __slots__ = ("entries",)

    def __init__(self, entries: list[Entry] | None = None) -> None:
        self.entries: list[Entry] = [Entry(0, 0, NOOP)]
        if entries:
            self.entries.extend(entries)

    @property
    def last_index(self) -> int:
        return len(self.entries) - 1

    @property
    def last_term(self) -> int:
        return self.entries[-1].term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``, or None past the end."""
        if 0 <= index < len(self.entries):
            return self.entries[index].term
        return None

    def __getitem__(self, index: int) -> Entry:
        return self.entries[index]

    def slice(self, start: int, stop: int | None = None) -> list[Entry]:
        """Entries with index in [start, stop)."""
        return self.entries[start:stop]

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)

    def replace_suffix(self, index: int, entries: list[Entry]) -> None:
        """Delete the entry at ``index`` and everything after it, then append ``entries``.

        AppendEntries rules 3 and 4 in one step; ``index`` one past the end appends.
        """
        del self.entries[index:]
        self.entries.extend(entries)

    def truncate_from(self, index: int) -> None:
        """Delete the entry at ``index`` and everything after it (AppendEntries rule 3)."""
        del self.entries[index:]

    def first_index_of_term(self, index: int) -> int:
        """The first index of the run of entries sharing the term at ``index`` (a repair hint)."""
        term = self.entries[index].term
        while index > 1 and self.entries[index - 1].term == term:
            index -= 1
        return index

    def user_entries(self) -> list[Entry]:
        """All entries without the sentinel."""
        return self.entries[1:]
