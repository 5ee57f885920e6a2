"""Causal delivery: records arriving in any order are written in happened-before order."""

from __future__ import annotations

import json
import random

import pytest
from conftest import REFERENCE_TRACES
from hypothesis import given, settings
from hypothesis import strategies as st

from teachraft.tracing.ordering import CausalOrderer
from teachraft.tracing.sinks import Record


def rec(host: str, **clock: int) -> Record:
    return Record(host, 1, "X", {}, dict(clock))


def keys(records: list[Record]) -> list[tuple[str, int]]:
    return [(r.identity, r.time) for r in records]


def assert_happened_before_order(records: list[Record]) -> None:
    """Each record comes after every event its clock knows (and after its own predecessor)."""
    position = {(r.identity, r.time): i for i, r in enumerate(records)}
    for i, record in enumerate(records):
        for host, value in record.clock.items():
            if host == record.identity:
                value -= 1
            if value > 0:
                assert position[(host, value)] < i, f"{record} before {host}:{value}"


def test_a_receive_waits_for_its_send() -> None:
    orderer = CausalOrderer()
    assert orderer.offer(rec("b", b=1, a=1)) == []
    assert orderer.held == 1
    out = orderer.offer(rec("a", a=1))
    assert keys(out) == [("a", 1), ("b", 1)]
    assert orderer.held == 0


def test_a_hosts_own_events_come_out_in_own_order() -> None:
    orderer = CausalOrderer()
    assert orderer.offer(rec("a", a=3)) == []
    assert orderer.offer(rec("a", a=2)) == []
    assert keys(orderer.offer(rec("a", a=1))) == [("a", 1), ("a", 2), ("a", 3)]


def test_a_chain_of_waits_is_released_at_once() -> None:
    orderer = CausalOrderer()
    orderer.offer(rec("c", c=1, b=1, a=1))
    orderer.offer(rec("b", b=1, a=1))
    assert keys(orderer.offer(rec("a", a=1))) == [("a", 1), ("b", 1), ("c", 1)]


def test_duplicates_are_dropped_whether_written_or_held() -> None:
    orderer = CausalOrderer()
    orderer.offer(rec("a", a=1))
    assert orderer.offer(rec("a", a=1)) == []
    orderer.offer(rec("a", a=3))
    assert orderer.offer(rec("a", a=3)) == []
    assert orderer.held == 1
    assert keys(orderer.offer(rec("a", a=2))) == [("a", 2), ("a", 3)]


def test_drain_gives_up_in_causal_order_and_later_resends_are_duplicates() -> None:
    orderer = CausalOrderer()
    orderer.offer(rec("c", c=1, b=2, a=5))
    orderer.offer(rec("b", b=2, a=5))
    assert keys(orderer.offer(rec("b", b=1))) == [("b", 1)]
    drained = orderer.drain()
    assert keys(drained) == [("b", 2), ("c", 1)]
    assert orderer.held == 0
    assert orderer.offer(rec("b", b=2, a=5)) == []
    assert keys(orderer.offer(rec("a", a=1))) == [("a", 1)]


def test_restore_and_last_clock() -> None:
    orderer = CausalOrderer()
    orderer.restore([rec("a", a=1), rec("a", a=2, b=1), rec("b", b=1)])
    assert orderer.offer(rec("a", a=2)) == []
    assert orderer.last_clock("a") == {"a": 2, "b": 1}
    assert orderer.last_clock("z") is None
    orderer.offer(rec("a", a=4))
    assert orderer.last_clock("a") == {"a": 4}, "held records count for a restarted tracer"


def _reference(name: str) -> list[Record]:
    lines = (REFERENCE_TRACES / name / "trace_output.log").read_text().splitlines()
    records = []
    for line in lines:
        obj = json.loads(line)
        records.append(
            Record(
                obj["TracerIdentity"], obj["TraceID"], obj["Tag"], obj["Body"], obj["VectorClock"]
            )
        )
    return records


def test_the_reference_file_order_is_itself_causal() -> None:
    assert_happened_before_order(_reference("3Server2ClientLeaderFailure"))


@pytest.mark.parametrize("run", ["3Server2ClientLeaderFailure", "3Server2ClientNormalOperation"])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_any_arrival_order_is_written_causally_and_completely(run: str, seed: int) -> None:
    records = _reference(run)
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    orderer = CausalOrderer()
    out = orderer.offer_many(shuffled[: len(shuffled) // 2])
    for record in shuffled[len(shuffled) // 2 :]:
        out += orderer.offer(record)
        out += orderer.offer(record)  # a resend changes nothing
    assert orderer.held == 0
    assert sorted(keys(out)) == sorted(keys(records))
    assert_happened_before_order(out)


def test_expire_writes_records_whose_past_never_came_and_releases_their_waiters() -> None:
    orderer = CausalOrderer()
    assert orderer.offer(rec("b", b=1, a=1), now=10.0) == []  # a:1 is lost
    assert orderer.offer(rec("c", c=1, b=1), now=12.0) == []  # waits for b:1 only
    assert orderer.offer(rec("b", b=2, a=1), now=13.0) == []  # also waits for a:1
    assert orderer.expire(now=14.0, timeout=5.0) == []
    assert keys(orderer.expire(now=15.0, timeout=5.0)) == [("b", 1), ("c", 1)]
    assert orderer.held == 1
    assert keys(orderer.expire(now=18.0, timeout=5.0)) == [("b", 2)]
    assert orderer.held == 0
    assert orderer.offer(rec("a", a=1)) == [rec("a", a=1)]
