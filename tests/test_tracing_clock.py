"""The GoVector clock rules, checked against every event of KVRaft's traces, and the tracer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import REFERENCE_TRACES

from teachraft.tracing.actions import AppendEntriesRequestSent, ClientInfo, Command, LogEntry, Put
from teachraft.tracing.clock import compare, concurrent, happened_before, next_clock
from teachraft.tracing.sinks import MemorySink
from teachraft.tracing.tokens import decode_token
from teachraft.tracing.tracer import NULL_TRACE, NullTracer, Tracer

RUNS = sorted(p.name for p in REFERENCE_TRACES.iterdir())


def test_all_four_reference_runs_are_present() -> None:
    assert len(RUNS) == 4


@pytest.mark.parametrize("run", RUNS)
def test_clock_rules_replay_every_reference_event(run: str) -> None:
    """Per host in file order: local +1; receive +1 first then max-merge with the token."""
    previous: dict[str, dict[str, int]] = {}
    count = 0
    for line in (REFERENCE_TRACES / run / "trace_output.log").read_text().splitlines():
        record = json.loads(line)
        host = record["TracerIdentity"]
        received = None
        if record["Tag"] == "ReceiveTokenTrace":
            _, trace_id, received = decode_token(record["Body"]["Token"])
            assert trace_id == record["TraceID"], "a receive joins the token's trace"
        expected = next_clock(previous.get(host, {}), host, received)
        assert record["VectorClock"] == expected, f"{run}: {line}"
        if record["Tag"] == "GenerateTokenTrace":
            identity, trace_id, token_clock = decode_token(record["Body"]["Token"])
            assert (identity, trace_id, token_clock) == (host, record["TraceID"], expected)
        previous[host] = expected
        count += 1
    assert count > 200


def test_comparisons() -> None:
    assert compare({"a": 1}, {"a": 1}) == "equal"
    assert happened_before({"a": 1}, {"a": 2, "b": 1})
    assert not happened_before({"a": 2, "b": 1}, {"a": 1})
    assert compare({"a": 2, "b": 1}, {"a": 1}) == "after"
    assert concurrent({"a": 2}, {"a": 1, "b": 1})


def _tracer(identity: str = "n1", seed: int = 7) -> tuple[Tracer, MemorySink]:
    sink = MemorySink()
    return Tracer(identity, sink, rng=random.Random(seed)), sink


def test_each_call_is_one_event_with_the_clock_after_the_tick() -> None:
    tracer, sink = _tracer()
    trace = tracer.create_trace()
    trace.record_action(Put("1", 1, "k", "v"))
    token = trace.generate_token()
    assert [(r.tag, r.clock) for r in sink] == [
        ("CreateTrace", {"n1": 1}),
        ("Put", {"n1": 2}),
        ("GenerateTokenTrace", {"n1": 3}),
    ]
    assert sink.records[0].body == {}
    assert sink.records[1].body == {"ClientId": "1", "OpId": 1, "Key": "k", "Value": "v"}
    assert sink.records[2].body == {"Token": token}
    assert decode_token(token) == ("n1", trace.trace_id, {"n1": 3})
    assert {r.trace_id for r in sink} == {trace.trace_id}
    assert tracer.own_time == 3


def test_receive_ticks_first_then_merges_and_joins_the_senders_trace() -> None:
    a, _ = _tracer("a")
    b, sink_b = _tracer("b")
    b.create_trace()
    b.create_trace()
    trace_a = a.create_trace()
    token = trace_a.generate_token()
    trace_b = b.receive_token(token)
    assert trace_b.trace_id == trace_a.trace_id
    last = sink_b.records[-1]
    assert (last.tag, last.clock, last.body) == (
        "ReceiveTokenTrace",
        {"b": 3, "a": 2},
        {"Token": token},
    )
    assert b.clock == {"b": 3, "a": 2}


def test_record_copies_the_clock() -> None:
    tracer, sink = _tracer()
    tracer.create_trace()
    sink.records[0].clock["n1"] = 99
    assert tracer.own_time == 1


def test_seeded_rng_gives_the_same_63_bit_trace_ids() -> None:
    ids_1 = [_tracer(seed=3)[0].create_trace().trace_id for _ in range(3)]
    ids_2 = [_tracer(seed=3)[0].create_trace().trace_id for _ in range(3)]
    assert ids_1 == ids_2
    tracer, _ = _tracer(seed=3)
    many = [tracer.create_trace().trace_id for _ in range(200)]
    assert all(0 <= i < 1 << 63 for i in many) and len(set(many)) == 200


def test_restart_continues_from_a_previous_clock() -> None:
    sink = MemorySink()
    tracer = Tracer("s1", sink, clock={"s1": 41, "coord": 7})
    tracer.create_trace()
    assert sink.records[0].clock == {"s1": 42, "coord": 7}


def test_nested_bodies_become_plain_dicts_in_declaration_order() -> None:
    tracer, sink = _tracer()
    entry = LogEntry(1, Command(1, "k0", "val0", ClientInfo("1", 1)), 1)
    tracer.create_trace().record_action(AppendEntriesRequestSent(1, 1, 0, 0, [entry], 0, b""))
    body = sink.records[-1].body
    assert list(body) == [
        "Term",
        "LeaderId",
        "PrevLogIndex",
        "PrevLogTerm",
        "Entries",
        "LeaderCommit",
        "Token",
    ]
    assert body["Entries"] == [
        {
            "Term": 1,
            "Command": {
                "Kind": 1,
                "Key": "k0",
                "Val": "val0",
                "ClientInfo": {"ClientId": "1", "OpId": 1},
            },
            "Index": 1,
        }
    ]


@pytest.mark.parametrize("identity", ["", "a b", 'a"b', "a\\b", "a\tb"])
def test_identities_shiviz_cannot_show_are_refused(identity: str) -> None:
    with pytest.raises(ValueError):
        Tracer(identity, MemorySink())


def test_null_tracer_records_nothing_and_makes_empty_tokens() -> None:
    tracer = NullTracer("n1")
    trace = tracer.create_trace()
    trace.record_action(Put("1", 1, "k", "v"))
    assert trace.generate_token() == b""
    assert tracer.receive_token(b"") is NULL_TRACE
    assert tracer.receive_token(None) is NULL_TRACE
    tracer.close()


def test_a_real_tracer_treats_an_empty_token_as_a_new_trace() -> None:
    tracer, sink = _tracer()
    tracer.receive_token(b"")
    assert [r.tag for r in sink] == ["CreateTrace"]


def test_reference_traces_folder_is_beside_the_repo() -> None:
    assert Path(REFERENCE_TRACES).is_dir()


def test_a_malformed_token_starts_a_new_trace_instead_of_crashing_the_node() -> None:
    tracer, sink = _tracer()
    tracer.receive_token(b"\x01\x02garbage")
    assert [r.tag for r in sink] == ["CreateTrace"]


def test_record_event_checks_the_tag_and_makes_the_body_plain() -> None:
    tracer, sink = _tracer()
    tracer.record_event(5, "Custom", {1: (b"x", 2)})
    assert (sink.records[0].tag, sink.records[0].body) == ("Custom", {"1": [b"x", 2]})
    with pytest.raises(ValueError):
        tracer.record_event(5, "two words", {})
