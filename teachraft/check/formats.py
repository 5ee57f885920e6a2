"""Reading and writing history files in the three formats teachraft meets.

- Jepsen etcd logs: ``INFO  jepsen.util - 3  :invoke  :cas  [1 4]``, one
  event per line (the reference histories of the etcd compare-and-set bug).
- Knossos/Jepsen EDN: one event map per form, ``{:process 0, :type :invoke,
  :f :put, :key "k", :value "v"}``, optionally with ``:time`` and ``:id``.
- teachraft JSON lines: one object per :class:`Op` (``ret`` null for unknown).

The event formats share one rule set (:class:`_Pairing`): ``:invoke`` opens
an op for a process; ``:ok`` and ``:fail`` close it; ``:info`` does *not*
close it: its outcome is unknown and its return time stays infinite, as for
an invoke never completed. A ``:fail`` read with value ``:timed-out`` closes
the read with an unknown result. Jepsen process ids are kept as client names
(``"3"``). Events of processes that are not clients (``:nemesis``, any
keyword process) inject faults: they are skipped and counted. ``:time``
(Jepsen: nanoseconds since the test began), when present, gives the
real-time order; without it the order of the events is the order in time.
What a failed op means is left to the model (see :mod:`teachraft.check.models`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from teachraft.check import edn
from teachraft.check.history import OUTCOMES, History, Op, PathLike
from teachraft.check.models import jepsen_model

_JEPSEN_LINE = re.compile(r"\bINFO\s+jepsen\.util\s+-\s+(\d+)\s+:(\w+)\s+:(\w+)\s*(.*?)\s*$")
_JEPSEN_SNIFF = re.compile(r"\bINFO\s+jepsen\.util\s+-\s+\d+\s+:")
_JEPSEN_OTHER = re.compile(r"\bINFO\s+jepsen\.util\s+-\s+:?([A-Za-z][\w-]*)\s+:(\w+)\s+:")
_JEPSEN_VALUE = re.compile(
    r"^(?:(?P<nil>nil)|(?P<int>-?\d+)|\[\s*(?P<a>nil|-?\d+)\s+(?P<b>nil|-?\d+)\s*\]|:(?P<kw>[\w-]+))$"
)
_EDN_HEADER = re.compile(r"^;+\s*teachraft history\b(.*)$")
_OP_FIELDS = ("id", "client", "f", "key", "value", "output", "call", "ret", "outcome")


class _Pairing:
    """Turns invoke/complete events into ops.

    Events pair up by process (a Jepsen process runs one op at a time) or, in
    files teachraft wrote, by ``:id``, which also allows a client with several
    ops in flight.
    """

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.by_process: dict[str, Op] = {}
        self.by_id: dict[int, Op] = {}
        self.skipped: dict[str, int] = {}

    def skip(self, process: str) -> None:
        """Count an event of a non-client process (the nemesis): not an operation."""
        self.skipped[process] = self.skipped.get(process, 0) + 1

    def invoke(self, client: str, f: str, key: Any, value: Any, t: float, op_id: Any) -> None:
        if op_id is not None:
            if not isinstance(op_id, int) or isinstance(op_id, bool) or op_id in self.by_id:
                raise ValueError(f"bad or repeated op id {op_id!r}")
            op = Op(op_id, client, f, key, value, None, t, math.inf, "unknown")
            self.by_id[op_id] = op
        else:
            if client in self.by_process:
                raise ValueError(f"process {client} invokes {f} while its last op is still open")
            op = Op(len(self.ops), client, f, key, value, None, t, math.inf, "unknown")
            self.by_process[client] = op
        self.ops.append(op)

    def complete(
        self, client: str, kind: str, f: str, value: Any, t: float, op_id: Any = None
    ) -> None:
        if kind not in ("ok", "fail", "info"):
            raise ValueError(f"unknown event type :{kind}")
        op = self.by_process.pop(client, None) if op_id is None else self.by_id.pop(op_id, None)
        if op is None:
            raise ValueError(
                f"process {client} completes {f} (:{kind}) but has no matching :invoke"
            )
        if op.f != f:
            raise ValueError(f"process {client} invoked {op.f} but completed {f}")
        if kind == "info" or (kind == "fail" and f in ("read", "get") and value == "timed-out"):
            return  # outcome unknown: may take effect at any time, or never
        if t < op.call:
            raise ValueError(
                f"process {client} completes {f} at {t}, before its invoke ({op.call})"
            )
        op.outcome = kind  # type: ignore[assignment]  # checked above: ok, fail or info
        op.ret = t
        if kind == "ok" and (value != op.value or f in ("read", "get")):
            op.output = value  # what the op saw: a read's value, a txn with its reads filled

    def history(self, initial: Any, **meta: Any) -> History:
        return History(self.ops, initial=initial, skipped=self.skipped, **meta)


def load_history(path: PathLike) -> History:
    """Read ``path``, sniffing its format from the first meaningful line."""
    text = Path(path).read_text(encoding="utf-8")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not first:
        return History()
    if first.startswith('{"'):
        return parse_jsonl(text)
    if first[0] in "{[(;#":
        return parse_edn(text)
    if "jepsen" in first or _JEPSEN_SNIFF.search(text):
        return parse_jepsen_log(text)
    raise ValueError(f"unrecognised history format (first line: {first[:60]!r})")


def parse_jepsen_log(text: str) -> History:
    """A Jepsen etcd log: ``INFO jepsen.util - PROCESS TYPE F VALUE`` per event."""
    pairing = _Pairing()
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _JEPSEN_LINE.search(line.strip())
        if m is None:
            other = _JEPSEN_OTHER.search(line)
            if other is not None:  # a non-client process such as :nemesis
                pairing.skip(other.group(1))
            continue  # other log lines (setup, teardown) carry no ops
        proc, kind, f, raw = m.groups()
        try:
            value = _jepsen_value(raw)
            if kind == "invoke":
                pairing.invoke(proc, f, None, value, float(lineno), None)
            else:
                pairing.complete(proc, kind, f, value, float(lineno))
        except ValueError as exc:
            raise ValueError(f"line {lineno} ({line.strip()[:100]!r}): {exc}") from None
    if not pairing.ops and not pairing.skipped:
        raise ValueError("no Jepsen events (INFO jepsen.util - PROCESS TYPE F VALUE) found")
    return pairing.history(initial=None, model_hint="etcd", clock="events")


def _jepsen_value(raw: str) -> Any:
    m = _JEPSEN_VALUE.match(raw)
    if m is None:
        raise ValueError(f"cannot read value {raw!r}")
    if m["int"] is not None:
        return int(m["int"])
    if m["a"] is not None:
        return [_jepsen_atom(m["a"]), _jepsen_atom(m["b"])]
    if m["kw"] is not None:
        return m["kw"]
    return None


def _jepsen_atom(raw: str) -> int | None:
    return None if raw == "nil" else int(raw)


def parse_edn(text: str) -> History:
    """Knossos/Jepsen EDN events, as top-level maps or one vector of maps."""
    try:
        forms = edn.loads_all(text)
    except edn.EdnError as exc:
        raise ValueError(str(exc)) from None
    if len(forms) == 1 and isinstance(forms[0], list):
        forms = forms[0]
    pairing = _Pairing()
    timed = any(isinstance(e, dict) and edn.Keyword("time") in e for e in forms)
    for index, event in enumerate(forms):
        if not isinstance(event, dict):
            raise ValueError(f"event {index}: expected a map, got {event!r}")
        try:
            _edn_event(pairing, event, float(index), timed)
        except (KeyError, TypeError, ValueError) as exc:
            shown = _clip(edn.dumps(event) if isinstance(event, dict) else repr(event))
            reason = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"event {index} {shown}: {reason}") from None
    header = {str(k): v for k, v in _edn_header(text).items()}
    return pairing.history(
        initial=_edn_initial(header, pairing.ops),
        model_hint=header.get("model") if header else jepsen_model(pairing.ops),
        origin=header.get("origin") if header else (0.0 if timed else None),
        clock=header.get("clock", "seconds") if header else ("seconds" if timed else "events"),
    )


def _clip(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _edn_event(pairing: _Pairing, event: dict[Any, Any], index: float, timed: bool) -> None:
    process = event[edn.Keyword("process")]
    if not _is_client(process):
        pairing.skip(str(process))
        return
    client = _name(process)
    kind = str(event[edn.Keyword("type")])
    f = str(event[edn.Keyword("f")])
    value = plain(event.get(edn.Keyword("value")))
    raw_time = event.get(edn.Keyword("time"))
    if timed and raw_time is None and kind != "info":
        raise ValueError("has no :time, but other events do")
    t = _edn_time(raw_time, index)
    op_id = event.get(edn.Keyword("id"))
    if kind == "invoke":
        key = event.get(edn.Keyword("key"))
        key = None if key is None else _name(key)
        pairing.invoke(client, f, key, value, t, op_id)
    else:
        pairing.complete(client, kind, f, value, t, op_id)


def _is_client(process: Any) -> bool:
    """Jepsen's clients are integers (teachraft also writes names as strings);
    a keyword such as ``:nemesis``, or anything else, is not a client."""
    if isinstance(process, edn.Keyword | bool):
        return False
    return isinstance(process, int | str)


def _name(value: Any) -> str:
    return str(value)


def plain(value: Any) -> Any:
    """EDN values as plain Python: keywords become strings, vectors lists."""
    if isinstance(value, edn.Keyword):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, frozenset):
        return frozenset(plain(v) for v in value)
    return value


def _edn_time(raw: Any, index: float) -> float:
    """Jepsen's ``:time`` is integer nanoseconds; teachraft writes float seconds."""
    if raw is None:
        return index
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f":time must be a number, not {raw!r}")
    return raw / 1e9 if isinstance(raw, int) else float(raw)


def _edn_header(text: str) -> dict[Any, Any]:
    """teachraft's header comment (``;; teachraft history {:initial nil}``), if any."""
    for line in text.splitlines():
        m = _EDN_HEADER.match(line.strip())
        if m:
            header = edn.loads_all(m.group(1))
            if len(header) == 1 and isinstance(header[0], dict):
                return header[0]
    return {}


def _edn_initial(header: dict[str, Any], ops: list[Op]) -> Any:
    """The kv initial value: from teachraft's header comment, else Knossos's ""."""
    if "initial" in header:
        return header["initial"]
    registers = {"read", "write", "cas"}
    return None if any(op.f in registers for op in ops) else ""


def parse_jsonl(text: str) -> History:
    """teachraft JSON lines: one op object per line, plus an optional meta line."""
    ops: list[Op] = []
    meta: dict[str, Any] = {}
    # only "\n" ends a line: str.splitlines would also split inside strings at U+0085 etc.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if "f" not in obj and set(obj) <= set(_META):
                meta = obj
                continue
            ops.append(_op_from_json(obj))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {lineno}: {exc!s}") from None
    return History(
        ops,
        initial=meta.get("initial"),
        origin=meta.get("origin"),
        model_hint=meta.get("model"),
        clock=meta.get("clock", "seconds"),
    )


_META = ("initial", "origin", "model", "clock")


def _meta(history: History) -> dict[str, Any]:
    """What a history knows besides its ops, where it differs from the defaults."""
    meta = {
        "initial": history.initial,
        "origin": history.origin,
        "model": history.model_hint,
        "clock": None if history.clock == "seconds" else history.clock,
    }
    return {k: v for k, v in meta.items() if v is not None}


def _op_from_json(obj: dict[str, Any]) -> Op:
    outcome = obj["outcome"]
    if outcome not in OUTCOMES:
        raise ValueError(f"bad outcome {outcome!r}")
    ret = math.inf if obj["ret"] is None else float(obj["ret"])
    key = obj["key"]
    return Op(
        int(obj["id"]),
        str(obj["client"]),
        str(obj["f"]),
        None if key is None else str(key),
        obj.get("value"),
        obj.get("output"),
        float(obj["call"]),
        ret,
        outcome,
    )


def write_jsonl(history: History, path: PathLike) -> None:
    """One JSON object per op, after a meta line (initial, origin, model, clock) if any is set."""
    lines = []
    meta = _meta(history)
    if meta:
        lines.append(json.dumps(meta))
    for op in history.ops:
        obj = {name: getattr(op, name) for name in _OP_FIELDS}
        obj["ret"] = None if math.isinf(op.ret) else op.ret
        lines.append(json.dumps(obj, ensure_ascii=False, allow_nan=False))
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_edn(history: History, path: PathLike) -> None:
    """Knossos-style event maps in time order, each carrying its op's ``:id``.

    An unknown op ends with ``:info`` just before its client's next invoke (or
    at the end), where Jepsen would log it; re-reading keeps it unknown.
    """
    header = {edn.Keyword("initial"): history.initial}
    header.update({edn.Keyword(k): v for k, v in _meta(history).items()})
    lines = [f";; teachraft history {edn.dumps(header)}"]
    events = sorted(_edn_events(history), key=lambda item: item[0])
    lines += [edn.dumps(event) for _, event in events]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


_EventKey = tuple[float, float, int, int]


def _edn_events(history: History) -> list[tuple[_EventKey, dict[Any, Any]]]:
    """Each op's invoke and completion with a sort key (time, call, position, kind)
    that keeps invoke before completion for zero-length ops at equal times."""
    kw = edn.Keyword
    events: list[tuple[_EventKey, dict[Any, Any]]] = []
    following = _next_of_client(history)
    for pos, op in enumerate(history.ops):
        base: dict[Any, Any] = {kw("process"): _process(op.client), kw("f"): kw(op.f)}
        if op.key is not None:
            base[kw("key")] = op.key
        invoke = {**base, kw("type"): kw("invoke"), kw("value"): op.value}
        invoke.update({kw("time"): float(op.call), kw("id"): op.id})
        events.append(((op.call, op.call, pos, 0), invoke))
        done = {**base, kw("type"): kw(_edn_type(op)), kw("value"): _edn_done_value(op)}
        done[kw("id")] = op.id
        if not math.isinf(op.ret):
            done[kw("time")] = float(op.ret)
            events.append(((op.ret, op.call, pos, 1), done))
        elif pos in following:
            nxt = history.ops[following[pos]]
            events.append(((nxt.call, nxt.call, following[pos], -1), done))
        else:
            events.append(((math.inf, op.call, pos, 1), done))
    return events


def _next_of_client(history: History) -> dict[int, int]:
    """Position of each op -> position of the same client's next op."""
    last: dict[str, int] = {}
    following: dict[int, int] = {}
    for pos, op in enumerate(history.ops):
        if op.client in last:
            following[last[op.client]] = pos
        last[op.client] = pos
    return following


def _process(client: str) -> Any:
    """Jepsen processes are integers: write a client named like one as an integer."""
    return int(client) if re.fullmatch(r"0|[1-9][0-9]*", client) else client


def _edn_type(op: Op) -> str:
    return "info" if op.outcome == "unknown" else op.outcome


def _edn_done_value(op: Op) -> Any:
    """What the completion carries: the output when ok (a read's value), else the input."""
    if op.outcome == "ok" and (op.output is not None or op.f in ("read", "get")):
        return op.output
    return None if op.f in ("read", "get") else op.value
