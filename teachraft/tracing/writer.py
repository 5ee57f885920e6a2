"""The tracing server's two output files, written together record by record.

Each record's Body is encoded once and goes into both trace_output.log and
shiviz_output.log, so the two files always hold the same events in the same
order. In append mode (a tracing server restarted on the same files) the
existing trace_output.log is read back so that the new server knows what is
already written: it must not write a resent record twice, and it must answer
a restarted tracer with the clock it reached.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from teachraft.tracing.files import record_from_json
from teachraft.tracing.formats import SHIVIZ_HEADER, ClockTextCache, format_records
from teachraft.tracing.sinks import Record

logger = logging.getLogger(__name__)

_BUFFER = 1 << 20


class TraceFileWriter:
    """Appends records to trace_output.log and shiviz_output.log."""

    def __init__(
        self, output_file: str | Path, shiviz_output_file: str | Path, *, append: bool = False
    ) -> None:
        self.output_path = Path(output_file)
        self.shiviz_path = Path(shiviz_output_file)
        self.existing: list[Record] = read_existing(self.output_path) if append else []
        self._trace = self._open(self.output_path, append, header=b"")
        self._shiviz = self._open(self.shiviz_path, append, header=SHIVIZ_HEADER.encode())
        self.written = 0
        self._clocks = ClockTextCache()

    @staticmethod
    def _open(path: Path, append: bool, header: bytes) -> BinaryIO:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = path.stat().st_size if append and path.exists() else 0
        handle = open(path, "ab" if append else "wb", buffering=_BUFFER)  # noqa: SIM115
        if size == 0:
            handle.write(header)
        elif not _ends_with_newline(path):
            handle.write(b"\n")
        return handle

    def write(self, records: Iterable[Record]) -> int:
        """Format and write ``records`` to both files; return how many."""
        trace_parts: list[str] = []
        shiviz_parts: list[str] = []
        count = format_records(records, self._clocks, trace_parts, shiviz_parts)
        if count:
            self._trace.write("".join(trace_parts).encode("utf-8", "replace"))
            self._shiviz.write("".join(shiviz_parts).encode("utf-8", "replace"))
            self.written += count
        return count

    def flush(self) -> None:
        """Hand everything written so far to the operating system."""
        self._trace.flush()
        self._shiviz.flush()

    def close(self) -> None:
        """Flush and close both files."""
        for handle in (self._trace, self._shiviz):
            if not handle.closed:
                handle.flush()
                with contextlib.suppress(OSError):  # e.g. /dev/null cannot be synced
                    os.fsync(handle.fileno())
                handle.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_existing(path: Path) -> list[Record]:
    """The records already in a trace_output.log (a torn last line is skipped)."""
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(record_from_json(line))
            except ValueError as exc:
                logger.warning("%s:%d: skipping an unreadable line: %s", path, number, exc)
    return records
