"""The ShiViz log of a run as a file a student can download from the notebook.

The log is embedded in a ``data:`` link, so the download works in JupyterLab,
in Voila and on Binder alike, with no file server involved. The one-line
instruction matters: ShiViz must be given the file (its first line is the
parser regex); pasting the text into its box drops that line and misparses
every event.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teachraft.tracing.events import EventTable
from teachraft.tracing.files import is_trace_output, load_trace_output
from teachraft.tracing.shiviz import shiviz_text
from teachraft.viz.sources import is_cluster, is_running, trace_file

SHIVIZ_URL = "https://bestchai.bitbucket.io/shiviz/"
INSTRUCTION = (
    "Download the file, open ShiViz, choose “Try out ShiViz”, then <b>upload</b> the "
    "file (do not paste its text: pasting loses the first line, the parser regex)."
)


@dataclass(frozen=True, slots=True)
class ShivizDownload:
    """A ShiViz log with a download link; displays itself in a notebook."""

    text: str
    filename: str = "shiviz_output.log"

    @property
    def events(self) -> int:
        """How many events the log holds (two lines per event after the header)."""
        return max(0, (len(self.text.splitlines()) - 2) // 2)

    def href(self) -> str:
        data = base64.b64encode(self.text.encode("utf-8")).decode("ascii")
        return f"data:text/plain;charset=utf-8;base64,{data}"

    def html(self) -> str:
        name = html.escape(self.filename)
        size = len(self.text.encode("utf-8")) / 1024
        return (
            f'<div class="teachraft-shiviz"><a download="{name}" href="{self.href()}" '
            f'style="font-weight:bold">⬇ Download {name}</a> ({self.events} events, '
            f"{size:.0f} KiB). {INSTRUCTION} "
            f'<a href="{SHIVIZ_URL}" target="_blank" rel="noopener">Open ShiViz</a></div>'
        )

    def _repr_html_(self) -> str:
        return self.html()

    def save(self, path: str | Path) -> Path:
        """Write the log to ``path`` (for a student who prefers a file on disk)."""
        target = Path(path)
        target.write_text(self.text, encoding="utf-8")
        return target


def shiviz_log_text(source: Any) -> str:
    """The ShiViz log text of a cluster, an EventTable, or a trace file or folder."""
    if isinstance(source, EventTable):
        return shiviz_text(source)
    if is_cluster(source):
        if is_running(source):
            source.flush_traces()
            table = source.events()
            return source.call_in_loop(lambda: shiviz_text(table))
        source = source.trace_paths[1]
    path = trace_file(source)
    if is_trace_output(path):
        return shiviz_text(load_trace_output(path))
    return path.read_text(encoding="utf-8")


def shiviz_download(source: Any, filename: str = "shiviz_output.log") -> ShivizDownload:
    """A download link for the ShiViz log of ``source`` (display it in a cell)."""
    return ShivizDownload(shiviz_log_text(source), filename)
