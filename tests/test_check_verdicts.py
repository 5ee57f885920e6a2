"""The checker reproduces every verdict of the reference histories (VERDICTS.tsv),
through ``teachraft lincheck`` with the model (and initial value) each row names."""

from __future__ import annotations

import math
import re

import pytest
from conftest import REPO

from teachraft.check import History, check, load_history
from teachraft.check.cli import main, parse_init
from teachraft.check.models import Model, make_model

REFERENCE_HISTORIES = REPO / "tests" / "data" / "reference-histories"
GENEROUS = 300.0  # seconds; the checks take well under one on an idle machine


def verdict_rows() -> list[tuple[str, str]]:
    lines = (REFERENCE_HISTORIES / "VERDICTS.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    return [(row[0], row[1].replace("-", " ")) for row in rows]


def model_rows() -> dict[str, str]:
    lines = (REFERENCE_HISTORIES / "VERDICTS.tsv").read_text().splitlines()
    return {row[0]: row[2] for row in (ln.split("\t") for ln in lines if ln[:1] not in "#")}


def cli_model(named: str) -> list[str]:
    """VERDICTS.tsv's model column as lincheck arguments: "cas-register(init 0)" ->
    --model cas-register --init 0; "multi-register(init x=0,y=0)" -> --init {:x 0 :y 0}."""
    if named.startswith("etcd-cas-register"):
        return ["--model", "etcd"]
    if named.startswith("kv-get-put-append"):
        return ["--model", "kv"]
    m = re.fullmatch(r"([\w-]+)\(init (.+)\)", named)
    assert m is not None, f"VERDICTS.tsv names a model this test does not know: {named}"
    name, init = m.groups()
    if "=" in init:
        init = "{" + " ".join(f":{k} {v}" for k, v in (p.split("=") for p in init.split(","))) + "}"
    return ["--model", name, "--init", init]


ROWS = verdict_rows()
MODELS = model_rows()
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
        for p in REFERENCE_HISTORIES.rglob("*")
        if p.suffix in (".log", ".txt", ".edn")
    }
    assert listed == on_disk
    assert len(ROWS) == 30


@pytest.mark.parametrize(
    ("name", "expected"),
    [pytest.param(n, v, marks=[pytest.mark.slow] if n in SLOW else []) for n, v in ROWS],
)
def test_reference_verdict_through_the_cli(
    capsys: pytest.CaptureFixture[str], name: str, expected: str
) -> None:
    args = [str(REFERENCE_HISTORIES / name), *cli_model(MODELS[name]), "--timeout", "300"]
    code = main(args)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == expected
    assert code == (0 if expected == "linearizable" else 1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [pytest.param(n, v, marks=[pytest.mark.slow] if n in SLOW else []) for n, v in ROWS],
)
def test_reference_verdict(name: str, expected: str) -> None:
    history = load_history(REFERENCE_HISTORIES / name)
    args = cli_model(MODELS[name])
    initial = parse_init(args[3]) if len(args) > 2 else None
    model = make_model(args[1], history, initial) if len(args) > 2 else make_model(None, history)
    assert model.name == args[1]
    result = check(history, model, timeout=GENEROUS)
    assert result.verdict == expected, result.explain()
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
