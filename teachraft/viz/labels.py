"""Text for humans in figures: event summaries, wrapped bodies, clocks, entries.

Hover boxes and captions in every figure are written here, so an event reads
the same in the space-time diagram, the time cursor and the topology title.
Long bodies are cut and wrapped (a hover box wider than the screen is useless),
and tokens, which are opaque base64, are replaced by what they mean: a message
sent or received.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from teachraft.core.log import Entry
from teachraft.tracing.events import GENERATE, RECEIVE, Event

WRAP = 90
BODY_LIMIT = 360


def wrap(text: str, width: int = WRAP, limit: int = BODY_LIMIT) -> str:
    """HTML-escape ``text``, cut it at ``limit`` characters and break it every ``width``."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if len(text) <= width:
        return _escape(text)
    return "<br>".join(_escape(text[i : i + width]) for i in range(0, len(text), width))


def _escape(text: str) -> str:
    if "<" in text or ">" in text or "&" in text:
        return html.escape(text, quote=False)
    return text


def clock_text(clock: Mapping[str, int]) -> str:
    """A vector clock as compact JSON with sorted keys."""
    return "{" + ", ".join(f'"{k}":{clock[k]}' for k in sorted(clock)) + "}"


def body_text(event: Event) -> str:
    """The body as the trace files write it, with tokens shortened to ``<token>``."""
    body = event.body
    if event.tag in (GENERATE, RECEIVE) or "Token" in body:
        body = {k: ("<token>" if k == "Token" and v else v) for k, v in body.items()}
        return json.dumps(body, separators=(",", ":"), default=str)
    return event.body_json


def summary(event: Event, limit: int = 120) -> str:
    """One plain line: ``#153 server2 BecameLeader {"ServerId":2}``."""
    body = body_text(event)
    text = f"#{event.index} {event.host} {event.tag}"
    if body not in ("", "{}"):
        text += " " + body
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_note(event: Event, partner: Event | None) -> str:
    """What a token event means: the message it sent or received, and its partner."""
    if event.tag == GENERATE:
        if partner is None:
            return "message sent (never received in this trace)"
        return f"message sent → received by {partner.host} (event #{partner.index})"
    if event.tag == RECEIVE:
        if partner is None:
            return "message received (its send is not in this trace)"
        return f"message received ← sent by {partner.host} (event #{partner.index})"
    return ""


def event_hover(event: Event, partner: Event | None = None) -> str:
    """The hover box of one event: host and own time, tag, body, clock, trace id.

    A token event shows the message it sent or took instead of its opaque token.
    """
    tag, host = _escape(event.tag), _escape(event.host)
    lines = [f"<b>{tag}</b> at {host} (own time {event.time})"]
    if event.tag in (GENERATE, RECEIVE):
        lines.append(_escape(message_note(event, partner)))
    else:
        body = body_text(event)
        if body not in ("", "{}"):
            lines.append("body: " + wrap(body))
    lines.append("clock: " + wrap(clock_text(event.clock)))
    lines.append(f"trace {event.trace_id} · event #{event.index}")
    return "<br>".join(lines)


def entry_hover(entry: Entry, server: str, committed: bool, differs: bool) -> str:
    """The hover box of one log cell."""
    state = "committed" if committed else "not committed yet"
    lines = [
        f"<b>{html.escape(entry.describe())}</b>",
        f"{server}, index {entry.index}, term {entry.term}, {state}",
    ]
    if entry.client_id:
        lines.append(f"client {html.escape(entry.client_id)}, op {entry.op_id}")
    if differs:
        lines.append("<b>differs from the leader's entry at this index</b>")
    return "<br>".join(lines)


def snapshot_hover(server: str, index: int, term: int) -> str:
    """The hover box of a compacted prefix (Raft §7): what the snapshot replaced."""
    first = "entry 1" if index == 1 else f"entries 1 to {index}"
    return "<br>".join(
        [
            f"<b>snapshot ≤ {index}</b> (last included term {term})",
            f"{server} compacted {first} into a snapshot",
            "of the key-value store and the duplicate table;",
            "a follower that needs them gets the snapshot (InstallSnapshot)",
        ]
    )


def short_entry(entry: Entry) -> str:
    """Two short lines for a log cell: ``Put<br>k13`` / ``Get<br>k13`` / ``No-Op``."""
    text = entry.describe()
    if "(" not in text:
        return text
    kind, _, rest = text.partition("(")
    key = rest.rstrip(")").split(",", 1)[0]
    if len(key) > 6:
        key = key[:5] + "…"
    return f"{kind}<br>{html.escape(key)}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty one (bodies from files can be anything)."""
    return value if isinstance(value, dict) else {}
