"""The history recorder and the history file formats (Jepsen log, Knossos EDN, JSON lines)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from teachraft.check import History, HistoryRecorder, Op, load_history, write_edn, write_jsonl
from teachraft.check.formats import parse_edn, parse_jepsen_log

REFERENCE_HISTORIES = REPO / "tests" / "data" / "reference-histories"
DATA = Path(__file__).parent / "data" / "histories"
REFERENCE_FILES = sorted(
    p.relative_to(REFERENCE_HISTORIES).as_posix()
    for p in REFERENCE_HISTORIES.glob("*/*")
    if p.suffix in (".log", ".txt")
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


# --- recorder -----------------------------------------------------------------------------


def test_recorder_records_calls_returns_and_outcomes() -> None:
    rec = HistoryRecorder(clock=FakeClock())
    a = rec.invoke("c1", "put", "k", "v")
    b = rec.invoke("c2", "get", "k")
    c = rec.invoke("c3", "put", "k", "w")
    rec.ok(a)
    rec.ok(b, "v")
    rec.fail(c)
    h = rec.history()
    assert [op.id for op in h] == [a, b, c] == [0, 1, 2]
    assert h.ops[0] == Op(0, "c1", "put", "k", "v", None, 1.0, 4.0, "ok")
    assert h.ops[1] == Op(1, "c2", "get", "k", None, "v", 2.0, 5.0, "ok")
    assert h.ops[2] == Op(2, "c3", "put", "k", "w", None, 3.0, 6.0, "fail")


def test_recorder_marks_unknown_and_still_open_ops_unknown_with_infinite_return() -> None:
    rec = HistoryRecorder(clock=FakeClock())
    timed_out = rec.invoke("c1", "put", "k", "v")
    still_open = rec.invoke("c2", "append", "k", "x")
    rec.unknown(timed_out)
    h = rec.history()
    for op in h:
        assert op.outcome == "unknown"
        assert op.ret == math.inf
    assert [op.id for op in h] == [timed_out, still_open]


def test_recorder_snapshot_is_independent_and_recording_continues() -> None:
    rec = HistoryRecorder(clock=FakeClock())
    op = rec.invoke("c1", "get", "k")
    before = rec.history()
    rec.ok(op, None)
    assert before.ops[0].outcome == "unknown"
    assert rec.history().ops[0].outcome == "ok"
    assert len(rec) == 1


def test_recorder_rejects_completing_twice_or_unknown_ids() -> None:
    rec = HistoryRecorder()
    op = rec.invoke("c1", "put", "k", "v")
    rec.ok(op)
    with pytest.raises(ValueError):
        rec.fail(op)
    with pytest.raises(ValueError):
        rec.ok(99)


def test_history_groups_by_key_and_iterates() -> None:
    rec = HistoryRecorder(clock=FakeClock())
    for client, key in [("a", "k1"), ("b", "k2"), ("a", "k1")]:
        rec.ok(rec.invoke(client, "put", key, "v"))
    h = rec.history()
    assert len(h) == 3
    assert {k: [op.id for op in ops] for k, ops in h.by_key().items()} == {"k1": [0, 2], "k2": [1]}
    assert [op.id for op in h] == [0, 1, 2]
    assert h.clients() == ["a", "b"]


# --- Jepsen etcd logs ---------------------------------------------------------------------


def test_jepsen_info_does_not_close_the_op() -> None:
    h = load_history(DATA / "unknown-write-seen.log")
    write = h.ops[0]
    assert (write.f, write.value, write.outcome, write.ret) == ("write", 1, "unknown", math.inf)
    assert write.client == "0"
    assert all(op.outcome == "ok" for op in h.ops[1:])


def test_jepsen_timed_out_read_closes_with_unknown_result_and_frees_the_process() -> None:
    h = load_history(DATA / "timed-out-read.log")
    assert [(op.client, op.f, op.outcome) for op in h] == [
        ("0", "write", "ok"),
        ("1", "read", "unknown"),
        ("1", "read", "ok"),
    ]
    assert h.ops[1].output is None
    assert h.ops[2].output == 5


def test_jepsen_cas_values_are_read_with_their_space() -> None:
    text = (
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\n"
    )
    (op,) = parse_jepsen_log(text).ops
    assert (op.f, op.value, op.outcome, op.call, op.ret) == ("cas", [3, 0], "fail", 1.0, 2.0)


def test_jepsen_reference_log_is_read_completely() -> None:
    path = REFERENCE_HISTORIES / "jepsen-etcd" / "etcd_000.log"
    lines = path.read_text().splitlines()
    h = load_history(path)
    invokes = sum(":invoke" in line for line in lines)
    infos = sum(":info" in line for line in lines)
    assert len(h) == invokes
    assert sum(op.outcome == "unknown" for op in h) == infos
    assert all(op.ret == math.inf for op in h if op.outcome == "unknown")
    assert h.initial is None


@pytest.mark.parametrize(
    "text",
    [
        "INFO  jepsen.util - 0\t:ok\t:read\t1\n",  # completes nothing
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
        "INFO  jepsen.util - 0\t:invoke\t:write\t[1\n",
    ],
)
def test_malformed_jepsen_logs_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_jepsen_log(text)


# --- Knossos EDN ----------------------------------------------------------------------------


def test_knossos_kv_lines_start_keys_at_the_empty_string() -> None:
    h = load_history(REFERENCE_HISTORIES / "kv" / "c01-ok.txt")
    assert h.initial == ""
    first = h.ops[0]
    assert first.client == "0" and first.f in ("get", "put", "append") and first.key is not None
    assert all(op.outcome == "ok" and op.ret > op.call for op in h)


def test_edn_info_and_fail_events() -> None:
    text = """
    [{:process 0, :type :invoke, :f :put, :key "a", :value "x\\"y"}
     {:process 1, :type :invoke, :f :get, :key "a", :value nil}
     {:process 1, :type :fail, :f :get, :key "a", :value nil}
     {:process 0, :type :info, :f :put, :key "a", :value "x\\"y"}]
    """
    put, get = parse_edn(text).ops
    assert (put.value, put.outcome, put.ret) == ('x"y', "unknown", math.inf)
    assert (get.outcome, get.ret) == ("fail", 2.0)


def test_edn_nanosecond_times_are_seconds() -> None:
    text = (
        "{:process 0, :type :invoke, :f :read, :value nil, :time 1500000000}\n"
        "{:process 0, :type :ok, :f :read, :value 3, :time 2000000000}\n"
    )
    (op,) = parse_edn(text).ops
    assert (op.call, op.ret, op.output) == (1.5, 2.0, 3)


@pytest.mark.parametrize(
    "text", ["{:process 0 :type}", "[1 2 3]", "{:process 0, :type :ok, :f :get}"]
)
def test_malformed_edn_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_edn(text)


def test_unrecognised_files_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello world\n")
    with pytest.raises(ValueError, match="unrecognised"):
        load_history(path)


# --- round trips ------------------------------------------------------------------------------


def hand_made() -> History:
    ops = [
        Op(0, "client1", "put", "k1", 'quote " back \\ tab \t é', None, 0.5, 1.25, "ok"),
        Op(1, "client2", "get", "k1", None, 'quote " back \\ tab \t é', 0.75, 2.0, "ok"),
        Op(2, "client1", "append", "k2", "x", None, 1.25, math.inf, "unknown"),
        Op(3, "client3", "put", "k1", "v", None, 1.5, 1.75, "fail"),
        Op(4, "client2", "get", "k2", None, None, 2.0, 2.0, "ok"),
        Op(5, "7", "get", "k1", None, None, 2.5, math.inf, "unknown"),
    ]
    return History(ops, initial=None)


@pytest.mark.parametrize("writer", [write_jsonl, write_edn])
def test_hand_made_history_round_trips(tmp_path: Path, writer) -> None:  # type: ignore[no-untyped-def]
    h = hand_made()
    path = tmp_path / "h.out"
    writer(h, path)
    assert load_history(path) == h


@pytest.mark.parametrize("writer", [write_jsonl, write_edn])
@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_reference_histories_round_trip(tmp_path: Path, writer, name: str) -> None:  # type: ignore[no-untyped-def]
    h = load_history(REFERENCE_HISTORIES / name)
    path = tmp_path / "h.out"
    writer(h, path)
    again = load_history(path)
    assert again == h
    assert again.initial == h.initial


def test_jsonl_has_one_object_per_op_with_null_for_infinite_returns(tmp_path: Path) -> None:
    import json

    path = tmp_path / "h.jsonl"
    write_jsonl(hand_made(), path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == len(hand_made())
    assert rows[2]["ret"] is None and rows[2]["outcome"] == "unknown"
    assert set(rows[0]) == {"id", "client", "f", "key", "value", "output", "call", "ret", "outcome"}


values = st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 5))


@st.composite
def histories(draw: st.DrawFn) -> History:
    calls = sorted(draw(st.lists(st.floats(0, 100), max_size=8)))
    ops = []
    for i, call in enumerate(calls):
        outcome = draw(st.sampled_from(["ok", "fail", "unknown"]))
        ret = math.inf if outcome == "unknown" else call + draw(st.floats(0, 10))
        f = draw(st.sampled_from(["get", "put", "append", "read", "write", "cas"]))
        value = [draw(values), draw(values)] if f == "cas" else draw(values)
        if f in ("get", "read"):
            value = None
        output = draw(values) if f in ("get", "read") and outcome == "ok" else None
        client = draw(st.sampled_from(["0", "12", "client1", "c:2"]))
        key = draw(st.one_of(st.none(), st.sampled_from(["k", "k 2", '"q"'])))
        ops.append(Op(i, client, f, key, value, output, call, ret, outcome))
    initial = draw(st.sampled_from([None, "", "x"]))
    return History(ops, initial=initial)


@settings(max_examples=60, deadline=None)
@given(h=histories())
def test_any_history_round_trips_through_both_formats(tmp_path_factory, h: History) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("rt")
    for writer in (write_jsonl, write_edn):
        path = folder / f"h.{writer.__name__}"
        writer(h, path)
        assert load_history(path) == h


def test_times_are_shown_as_milliseconds_since_the_recorder_started(tmp_path: Path) -> None:
    rec = HistoryRecorder()  # the runtime's recorder: real clock, origin when it was made
    op = rec.invoke("client1", "put", "k", "v")
    rec.ok(op)
    h = rec.history()
    assert h.origin is not None and h.origin <= h.ops[0].call
    assert h.fmt_time(h.origin + 0.0123) == "12.30 ms"
    assert h.fmt_time(math.inf) == "never"
    path = tmp_path / "h.jsonl"
    write_jsonl(h, path)
    assert load_history(path).origin == h.origin
    fake = HistoryRecorder(clock=FakeClock())  # an injected clock names its own origin
    fake.invoke("c", "get", "k")
    assert fake.history().origin is None and fake.history().start() == 1.0
