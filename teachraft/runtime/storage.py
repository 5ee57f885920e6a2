"""Stable storage for a server's term and log: what lets a crashed server restart safely.

Raft's rule is that a server answers only after its term and new entries are on
stable storage. The host writes every ``Persist`` effect of a batch here and
fsyncs once, before any message of that batch leaves.

The file starts with a magic line, then holds an append-only sequence of
records. Each record is a 12-byte header, ``length``, ``crc32(body)`` and
``crc32(length, crc32(body))`` (big-endian), then its msgpack body
``[term, truncate_from, entries]``, or in raft mode ``[term, truncate_from,
entries, voted_for]`` (Raft's votedFor, kept with the term). Loading replays the records, and never
loads bytes that fail a check:

- A damaged record at the end, with no valid record after it, is what a crash
  in the middle of a write leaves (a torn tail). It is dropped, the file is
  truncated before it, and the drop is reported (``Recovered.torn``). Raft
  copies the lost suffix back from the leader.
- Damage anywhere else means the disk or a person changed the file. The
  restart is refused with ``StorageCorrupt``: one line naming the file, the
  byte offset and what to do. A server never serves data it did not write.

A server that compacts its log (``snapshot_every``, Raft §7) keeps its latest
snapshot beside the log, in ``server{id}.snap``: a magic line and one checked
record ``[last_included_index, last_included_term, pairs, sessions]``. It is
written to a temporary file, fsynced and renamed over the old one, so a crash
leaves the old snapshot or the new one, never half of one. The log file is then
rewritten the same way to hold only the entries after the snapshot. A crash
between the two leaves the old, longer log, whose compacted prefix loading drops.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import msgpack

from teachraft.core.effects import Persist
from teachraft.core.log import Entry
from teachraft.core.snapshot import Snapshot, snapshot_from_wire, snapshot_to_wire
from teachraft.errors import TeachraftError

log = logging.getLogger(__name__)

MAGIC = b"teachraft-log v1\n"
SNAP_MAGIC = b"teachraft-snapshot v1\n"
_HEADER = struct.Struct(">III")
_LENGTH_CRC = struct.Struct(">II")
_MAX_RECORD = 1 << 31


class StorageCorrupt(TeachraftError):
    """A data file is damaged before its last record: the server must not start from it."""


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a data file holds, and the torn tail dropped from it (if any)."""

    term: int
    entries: list[Entry]
    torn: str | None = None
    dropped_bytes: int = 0
    voted_for: int = 0
    """Raft mode: the vote cast in ``term`` (0: none)."""
    snapshot: Snapshot | None = None
    """The latest snapshot (log compaction), which the entries follow."""


def encode_record(
    term: int, truncate_from: int, entries: list[Entry], voted_for: int | None = None
) -> bytes:
    """One record: checked header, then the msgpack body."""
    fields: list[object] = [term, truncate_from, entries]
    if voted_for is not None:
        fields.append(voted_for)
    return _checked(msgpack.packb(fields, use_bin_type=True))


def _checked(body: bytes) -> bytes:
    """``body`` behind its 12-byte checked header."""
    body_crc = zlib.crc32(body)
    head_crc = zlib.crc32(_LENGTH_CRC.pack(len(body), body_crc))
    return _HEADER.pack(len(body), body_crc, head_crc) + body


class Storage:
    """One server's durable state in ``data_dir/server{id}.log``."""

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._file = self.path.open("ab")
        if self._file.tell() == 0:
            self._file.write(MAGIC)
            self._sync()

    def write(self, persists: list[Persist]) -> None:
        """Append the batch and make it durable before the host sends anything."""
        buf = bytearray()
        for p in persists:
            if p.snapshot is not None:
                self._file.write(buf)
                buf.clear()
                self._compact(p, p.snapshot)
                continue
            entries = [e.to_wire() for e in p.entries]
            buf += encode_record(p.term, p.truncate_from or 0, entries, p.voted_for)
        self._file.write(buf)
        self._sync()

    @property
    def snapshot_path(self) -> Path:
        return self.path.with_suffix(".snap")

    def _compact(self, p: Persist, snapshot: Snapshot) -> None:
        """Replace the snapshot, then the log with the entries after it (each atomically)."""
        body = msgpack.packb(snapshot_to_wire(snapshot), use_bin_type=True)
        _replace(self.snapshot_path, SNAP_MAGIC + _checked(body), self.fsync)
        entries = [e.to_wire() for e in p.entries]
        self._file.close()
        _replace(self.path, MAGIC + encode_record(p.term, 0, entries, p.voted_for), self.fsync)
        self._file = self.path.open("ab")

    def _sync(self) -> None:
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def load(path: str | Path) -> tuple[int, list[Entry]] | None:
        """Replay a storage file: (term, entries), or None if there is none.

        Raises StorageCorrupt on damage other than a torn tail; use ``recover``
        to learn whether a torn tail was dropped.
        """
        recovered = Storage.recover(path)
        return None if recovered is None else (recovered.term, recovered.entries)

    @staticmethod
    def recover(path: str | Path) -> Recovered | None:
        """Replay a storage file, dropping (and truncating) a torn tail; None if absent."""
        path = Path(path)
        if not path.exists():
            return None
        data = path.read_bytes()
        if not data.startswith(MAGIC):
            if MAGIC.startswith(data):  # crashed while creating the file
                _truncate(path, 0)
                return Recovered(0, [])
            raise StorageCorrupt(
                f"{path}: corrupt at byte 0 (not a teachraft data file, or written by an older "
                "version): move it away to restart this server empty; it catches up from the leader"
            )
        snapshot = _load_snapshot(path.with_suffix(".snap"))
        term = vote = 0
        entries: list[Entry] = []
        pos = len(MAGIC)
        while pos < len(data):
            record, problem = _read_record(data, pos)
            if record is None:
                torn = _torn_or_corrupt(path, data, pos, problem, term, entries, vote)
                return dataclasses.replace(torn, snapshot=snapshot)
            t, truncate_from, batch, stop, voted_for = record
            if t > term or (t == term and voted_for is not None):
                vote = voted_for or 0
            term = max(term, t)
            if truncate_from and entries:  # indexes start after the snapshot, if any
                del entries[max(truncate_from - entries[0].index, 0) :]
            entries.extend(batch)
            pos = stop
        return Recovered(term, entries, voted_for=vote, snapshot=snapshot)


Record = tuple[int, int, list[Entry], int, int | None]


def _read_body(data: bytes, pos: int) -> tuple[tuple[bytes, int] | None, str]:
    """The checked body of the record at ``pos`` and where the record ends, or None and why."""
    if len(data) - pos < _HEADER.size:
        return None, "a record header cut short"
    length, body_crc, head_crc = _HEADER.unpack_from(data, pos)
    if zlib.crc32(data[pos : pos + 8]) != head_crc or length >= _MAX_RECORD:
        return None, "a record header that fails its checksum"
    start = pos + _HEADER.size
    stop = start + length
    if stop > len(data):
        return None, "a record cut short"
    body = data[start:stop]
    if zlib.crc32(body) != body_crc:
        return None, "a record that fails its checksum"
    return (body, stop), ""


def _read_record(data: bytes, pos: int) -> tuple[Record | None, str]:
    """The record at ``pos`` as (term, truncate_from, entries, end, voted_for), or None and why."""
    checked, problem = _read_body(data, pos)
    if checked is None:
        return None, problem
    body, stop = checked
    try:
        fields = msgpack.unpackb(body, raw=False, strict_map_key=True)
        if type(fields) is not list or len(fields) not in (3, 4):
            raise ValueError("a record of the wrong shape")
        t, truncate_from, batch = fields[:3]
        vote = fields[3] if len(fields) == 4 else None
        if type(t) is not int or type(truncate_from) is not int or type(batch) is not list:
            raise ValueError("a record of the wrong shape")
        if vote is not None and type(vote) is not int:
            raise ValueError("a record of the wrong shape")
        return (t, truncate_from, [Entry.from_wire(e) for e in batch], stop, vote), ""
    except (ValueError, TypeError, msgpack.ExtraData):
        return None, "a record whose checksum holds but whose contents are not a log record"


def _torn_or_corrupt(
    path: Path, data: bytes, pos: int, problem: str, term: int, entries: list[Entry], vote: int
) -> Recovered:
    """A bad record at ``pos``: a torn tail if no valid record follows, else corruption."""
    following = _next_valid_record(data, pos + 1)
    if following is not None:
        raise StorageCorrupt(
            f"{path}: corrupt at byte {pos} ({problem}; valid records follow at byte "
            f"{following}): move the file away to restart this server empty; "
            "it catches up from the leader"
        )
    dropped = len(data) - pos
    note = (
        f"{path}: dropped a torn tail of {dropped} bytes at byte {pos} ({problem}), "
        "left by a crash during a write; the server catches up from the leader"
    )
    log.warning("%s", note)
    _truncate(path, pos)
    return Recovered(term, entries, note, dropped, vote)


def _next_valid_record(data: bytes, start: int) -> int | None:
    """The offset of the first whole, checked record at or after ``start`` (None if none)."""
    crc32 = zlib.crc32
    unpack = _HEADER.unpack_from
    end = len(data) - _HEADER.size
    for pos in range(start, end + 1):
        length, body_crc, head_crc = unpack(data, pos)
        if crc32(data[pos : pos + 8]) != head_crc:
            continue
        stop = pos + _HEADER.size + length
        if stop <= len(data) and crc32(data[pos + _HEADER.size : stop]) == body_crc:
            return pos
    return None


def _load_snapshot(path: Path) -> Snapshot | None:
    """The snapshot kept beside a log, checked like a log record; None if there is none."""
    if not path.exists():
        return None
    data = path.read_bytes()
    problem = f"{path}: corrupt snapshot"
    if data.startswith(SNAP_MAGIC):
        record, why = _read_body(data, len(SNAP_MAGIC))
        if record is not None and record[1] == len(data):
            try:
                return snapshot_from_wire(msgpack.unpackb(record[0], raw=False))
            except (ValueError, TypeError, msgpack.ExtraData) as exc:
                why = str(exc)
        problem += f" ({why or 'bytes after its record'})"
    else:
        problem += " (not a teachraft snapshot)"
    raise StorageCorrupt(
        f"{problem}: it is written whole or not at all, so a person or the disk changed it; "
        "move it and the log beside it away to restart this server empty; "
        "it catches up from the leader"
    )


def _replace(path: Path, content: bytes, fsync: bool) -> None:
    """Write ``content`` to ``path`` atomically: a temporary file, fsync, rename, fsync the dir."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(content)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _truncate(path: Path, size: int) -> None:
    """Cut the file to ``size`` bytes, durably, so later appends follow good records."""
    with path.open("r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())
