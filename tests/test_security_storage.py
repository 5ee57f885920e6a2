"""Finding 1: a damaged data file is never loaded as something the server did not write.

Every record carries a length and a checksum. A tail cut by a crash is dropped
and reported; any other damage refuses the restart with one line naming the
file, the offset and what to do.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from teachraft.core.effects import Persist
from teachraft.core.log import PUT, Entry
from teachraft.runtime.storage import Storage, StorageCorrupt


def _entries(first: int, count: int, term: int = 1) -> list[Entry]:
    return [
        Entry(term, i, PUT, f"k{i}", f"val{i}", "c1", i, 0) for i in range(first, first + count)
    ]


def _write(path: Path, batches: int = 5) -> tuple[list[int], list[Entry]]:
    """Write ``batches`` records; return the file offset of each and all entries."""
    storage = Storage(path, fsync=False)
    offsets = []
    entries: list[Entry] = []
    for b in range(batches):
        offsets.append(path.stat().st_size)
        batch = _entries(1 + 3 * b, 3)
        storage.write([Persist(1, None, batch)])
        entries += batch
    storage.close()
    return offsets, entries


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "server1.log"
    _, entries = _write(path)
    recovered = Storage.recover(path)
    assert recovered is not None
    assert recovered.entries == entries
    assert recovered.term == 1
    assert recovered.torn is None
    assert Storage.load(path) == (1, entries)


def test_every_cut_of_the_last_record_is_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "server1.log"
    offsets, entries = _write(path)
    data = path.read_bytes()
    for cut in range(offsets[-1] + 1, len(data)):
        path.write_bytes(data[:cut])
        recovered = Storage.recover(path)
        assert recovered is not None
        assert recovered.entries == entries[:-3], cut
        assert recovered.torn is not None and str(path) in recovered.torn
        assert f"byte {offsets[-1]}" in recovered.torn
        # The torn bytes are gone: the server can append and restart again.
        storage = Storage(path, fsync=False)
        storage.write([Persist(2, None, _entries(13, 1, term=2))])
        storage.close()
        again = Storage.recover(path)
        assert again is not None and again.torn is None
        assert again.entries == entries[:-3] + _entries(13, 1, term=2)


def test_garbage_tails_never_read_back_as_an_entry(tmp_path: Path) -> None:
    path = tmp_path / "server1.log"
    offsets, entries = _write(path)
    data = path.read_bytes()
    rng = random.Random(7)
    for trial in range(300):
        cut = rng.randrange(offsets[-1], len(data) + 1)
        garbage = rng.randbytes(rng.randrange(1, 200))
        path.write_bytes(data[:cut] + garbage)
        recovered = Storage.recover(path)
        assert recovered is not None
        expected = entries if cut == len(data) else entries[:-3]
        assert recovered.entries == expected, trial
        assert recovered.torn is not None


def test_a_bit_flip_anywhere_is_refused_or_dropped_never_served(tmp_path: Path) -> None:
    path = tmp_path / "server1.log"
    offsets, entries = _write(path)
    data = path.read_bytes()
    for pos in range(len(data)):
        bit = 1 << (pos % 8)
        damaged = bytearray(data)
        damaged[pos] ^= bit
        path.write_bytes(bytes(damaged))
        if pos < offsets[-1]:
            with pytest.raises(StorageCorrupt) as info:
                Storage.recover(path)
            message = str(info.value)
            assert str(path) in message and "byte " in message
            assert "\n" not in message
        else:
            # Damage inside the last record cannot be told from a torn write:
            # the record is dropped, never served altered.
            recovered = Storage.recover(path)
            assert recovered is not None
            assert recovered.entries == entries[:-3], pos
            assert recovered.torn is not None


def test_a_file_in_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "server1.log"
    path.write_bytes(b"\x93\x01\x00\x90" * 4)  # msgpack records of the old format
    with pytest.raises(StorageCorrupt, match="byte 0"):
        Storage.recover(path)
