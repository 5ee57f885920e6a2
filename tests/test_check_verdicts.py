"""The checker reproduces every verdict of the shared reference histories (VERDICTS.tsv)."""

from __future__ import annotations

import math

import pytest
from conftest import REPO

REFERENCE_HISTORIES = REPO / "tests" / "data" / "reference-histories"

from teachraft.check import History, check, load_history
from teachraft.check.models import Model, make_model

GENEROUS = 300.0  # seconds; the checks take well under one on an idle machine


def verdict_rows() -> list[tuple[str, str]]:
    lines = (REFERENCE_HISTORIES / "VERDICTS.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    return [(row[0], row[1].replace("-", " ")) for row in rows]


ROWS = verdict_rows()
SLOW = {"kv/c50-ok.txt", "kv/c50-bad.txt", "jepsen-etcd/etcd_002.log", "jepsen-etcd/etcd_007.log"}


def assert_valid_linearization(
    history: History, model: Model, order: list[int], complete: bool = True
) -> None:
    """An independent check of a claimed linearization: complete, real-time ordered, legal."""
    ops = {op.id: op for op in history.ops}
    assert len(order) == len(set(order))
    must = {op.id for op in history.ops if model.relevant(op) and op.outcome != "unknown"}
    if complete:
        assert must <= set(order), f"ops left out: {sorted(must - set(order))[:10]}"
    latest_call = -math.inf
    for op_id in order:
        op = ops[op_id]
        assert op.ret >= latest_call, f"op {op_id} returned before an op ordered earlier began"
        latest_call = max(latest_call, op.call)
    states: dict[str | None, object] = {}
    for op_id in order:
        op = ops[op_id]
        ok, states[op.key] = model.step(states.get(op.key, model.init()), op)
        assert ok, f"op {op_id} is illegal at its place in the order"


def test_every_reference_history_is_listed() -> None:
    listed = {name for name, _ in ROWS}
    on_disk = {
        p.relative_to(REFERENCE_HISTORIES).as_posix()
        for p in REFERENCE_HISTORIES.glob("*/*")
        if p.suffix in (".log", ".txt")
    }
    assert listed == on_disk
    assert len(ROWS) == 26


@pytest.mark.parametrize(
    ("name", "expected"),
    [pytest.param(n, v, marks=[pytest.mark.slow] if n in SLOW else []) for n, v in ROWS],
)
def test_reference_verdict(name: str, expected: str) -> None:
    history = load_history(REFERENCE_HISTORIES / name)
    result = check(history, timeout=GENEROUS)
    assert result.verdict == expected, result.explain()
    model = make_model(None, history)
    assert model.name == ("etcd" if name.startswith("jepsen-etcd") else "kv")
    if expected == "linearizable":
        assert result.failed_op is None
        assert_valid_linearization(history, model, result.linearization)
    else:
        assert result.failed_op is not None
        assert result.failed_op.outcome != "unknown"
        bad = result.failed_op
        same_key = History([op for op in history.ops if op.key == result.key])
        assert_valid_linearization(same_key, model, result.linearization, complete=False)
        before = {
            op.id
            for op in same_key
            if model.relevant(op) and op.outcome != "unknown" and op.ret < bad.ret
        }
        assert before <= set(result.linearization)
        assert bad.id not in result.linearization
        assert str(result.failed_op.id) in result.explain()


@pytest.mark.parametrize(
    ("name", "expected"),
    [(n, v) for n, v in ROWS if n.startswith(("kv/c01", "kv/c10"))],
)
@pytest.mark.slow
def test_small_kv_histories_unpartitioned(name: str, expected: str) -> None:
    history = load_history(REFERENCE_HISTORIES / name)
    result = check(history, model="kv", timeout=GENEROUS, partition=False)
    assert result.verdict == expected, result.explain()


def test_explicit_model_names_agree_with_sniffing() -> None:
    history = load_history(REFERENCE_HISTORIES / "jepsen-etcd" / "etcd_000.log")
    assert check(history, "etcd", timeout=GENEROUS).verdict == "not linearizable"
    kv = load_history(REFERENCE_HISTORIES / "kv" / "c01-ok.txt")
    assert check(kv, "kv", timeout=GENEROUS).verdict == "linearizable"


def test_the_kv_reference_needs_its_empty_string_initial_value() -> None:
    history = load_history(REFERENCE_HISTORIES / "kv" / "c01-ok.txt")
    assert any(op.f == "get" and op.output == "" for op in history)
    history.initial = None  # teachraft's convention: a missing key is None
    assert check(history, timeout=GENEROUS).verdict == "not linearizable"
