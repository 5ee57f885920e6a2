"""Every named model: hand-made good and bad histories, and a brute-force cross-check."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teachraft.check import CheckResult, History, Op, check
from teachraft.check.models import MODELS, Model, make_model

INF = math.inf
GENEROUS = 120.0


def o(
    id: int, f: str, value: Any, call: float, ret: float, outcome: str = "ok", out: Any = None
) -> Op:
    """One op by its own client (so any two ops may overlap)."""
    return Op(id, f"c{id}", f, None, value, out, call, ret, outcome)  # type: ignore[arg-type]


def run(model: str, *ops: Op, initial: Any = None) -> CheckResult:
    return check(History(list(ops)), model=model, timeout=GENEROUS, initial=initial)


def bad(result: CheckResult, failed: int) -> None:
    assert result.verdict == "not linearizable"
    assert result.failed_op is not None and result.failed_op.id == failed
    assert f"op {failed}" in result.explain()


# --- hand-made good and bad histories, one pair (or more) per model ---------------------------


def test_register() -> None:
    good = [o(0, "write", 1, 0, 1), o(1, "read", None, 2, 3, out=1), o(2, "read", None, 4, 5)]
    assert run("register", *good).ok  # a nil read is an unknown read, as in Knossos
    bad(run("register", o(0, "write", 1, 0, 1), o(1, "read", None, 2, 3, out=2)), 1)
    assert run("register", o(0, "read", None, 0, 1, out=5), initial=5).ok
    bad(run("register", o(0, "write", 1, 0, 1, "fail"), o(1, "read", None, 2, 3, out=1)), 1)


def test_cas_register_follows_jepsen_a_failed_cas_did_not_happen() -> None:
    good = [
        o(0, "cas", [0, 4], 0, 1),
        o(1, "cas", [4, 4], 2, 3, "fail"),
        o(2, "read", None, 4, 5, out=4),
    ]
    assert run("cas-register", *good, initial=0).ok
    # the etcd register reads the failed cas(4, 4) as a compare that failed: a violation there
    bad(run("etcd", o(0, "write", 4, 0, 1), o(1, "cas", [4, 4], 2, 3, "fail")), 1)
    bad(run("cas-register", o(0, "cas", [1, 2], 0, 1), initial=0), 0)
    unknown = [o(0, "cas", [0, 2], 0, INF, "unknown"), o(1, "read", None, 5, 6, out=2)]
    assert run("cas-register", *unknown, initial=0).ok


def test_kv_keys_are_separate() -> None:
    ops = [
        Op(0, "a", "put", "x", "1", None, 0, 1, "ok"),
        Op(1, "b", "append", "y", "2", None, 0, 1, "ok"),
        Op(2, "a", "get", "x", None, "1", 2, 3, "ok"),
    ]
    assert check(History(ops), "kv").ok
    ops.append(Op(3, "b", "get", "y", None, "12", 4, 5, "ok"))
    bad(check(History(ops), "kv"), 3)


def test_multi_register() -> None:
    init = {"x": 0, "y": 0}
    good = [
        o(0, "txn", [["write", "x", 1], ["write", "y", 2]], 0, 1),
        o(
            1,
            "txn",
            [["read", "x", None], ["read", "y", None]],
            2,
            3,
            out=[["read", "x", 1], ["read", "y", 2]],
        ),
    ]
    assert run("multi-register", *good, initial=init).ok
    torn = [
        o(0, "txn", [["write", "x", 1], ["write", "y", 2]], 0, 1),
        o(
            1,
            "txn",
            [["read", "x", None], ["read", "y", None]],
            2,
            3,
            out=[["read", "x", 1], ["read", "y", 0]],
        ),
    ]
    r = run("multi-register", *torn, initial=init)
    bad(r, 1)
    assert '"y" = 0, but "y" is 2' in r.explain()
    assert run("multi-register", o(0, "txn", [["read", "x", 0]], 0, 1), initial=init).ok
    bad(run("multi-register", o(0, "txn", [["read", "x", 0]], 0, 1)), 0)  # starts at nil


def test_mutex() -> None:
    good = [o(0, "acquire", None, 0, 1), o(1, "release", None, 2, 3), o(2, "acquire", None, 4, 5)]
    assert run("mutex", *good).ok
    r = run("mutex", o(0, "acquire", None, 0, 1), o(1, "acquire", None, 2, 3))
    bad(r, 1)
    assert "acquire needs the lock free, but it is held" in r.explain()
    bad(run("mutex", o(0, "release", None, 0, 1)), 0)
    overlapping = [o(0, "acquire", None, 0, 10), o(1, "release", None, 1, 2)]
    assert run("mutex", *overlapping, initial=False).ok


def test_set() -> None:
    good = [
        o(0, "add", 1, 0, 1),
        o(1, "add", 2, 0, 5),
        o(2, "read", None, 2, 3, out=frozenset({1})),
    ]
    assert run("set", *good).ok
    lost = [
        o(0, "add", 1, 0, 1),
        o(1, "add", 2, 2, 3),
        o(2, "read", None, 4, 5, out=frozenset({2})),
    ]
    r = run("set", *lost)
    bad(r, 2)
    assert "misses 1" in r.explain()


def test_unordered_queue() -> None:
    good = [
        o(0, "enqueue", 1, 0, 1),
        o(1, "enqueue", 2, 2, 3),
        o(2, "dequeue", None, 4, 5, out=2),
        o(3, "dequeue", None, 6, 7, out=1),
    ]
    assert run("unordered-queue", *good).ok
    twice = [
        o(0, "enqueue", 1, 0, 1),
        o(1, "dequeue", None, 2, 3, out=1),
        o(2, "dequeue", None, 4, 5, out=1),
    ]
    bad(run("unordered-queue", *twice), 2)
    bad(run("unordered-queue", o(0, "dequeue", None, 0, 1, out=7)), 0)


def test_fifo_queue() -> None:
    in_order = [
        o(0, "enqueue", 1, 0, 1),
        o(1, "enqueue", 2, 2, 3),
        o(2, "dequeue", None, 4, 5, out=1),
        o(3, "dequeue", None, 6, 7, out=2),
    ]
    assert run("fifo-queue", *in_order).ok
    swapped = [*in_order[:2], o(2, "dequeue", None, 4, 5, out=2)]
    r = run("fifo-queue", *swapped)
    bad(r, 2)
    assert "the head of the queue is 1" in r.explain()
    # an unknown dequeue may have taken the head
    lost_head = [
        *in_order[:2],
        o(2, "dequeue", None, 4, INF, "unknown"),
        o(3, "dequeue", None, 6, 7, out=2),
    ]
    assert run("fifo-queue", *lost_head).ok


def test_every_model_is_named_and_rejects_foreign_ops() -> None:
    assert set(MODELS) == {
        "register",
        "cas-register",
        "kv",
        "etcd",
        "multi-register",
        "mutex",
        "set",
        "unordered-queue",
        "fifo-queue",
    }
    for name in MODELS:
        with pytest.raises(ValueError, match=f"the {name} model has no operation 'frobnicate'"):
            run(
                name,
                o(0, "frobnicate", None, 0, 1),
                initial={} if name == "multi-register" else None,
            )


def test_queues_must_be_named() -> None:
    with pytest.raises(ValueError, match="unordered-queue or fifo-queue"):
        check(History([o(0, "enqueue", 1, 0, 1)]))


# --- brute force ------------------------------------------------------------------------------


def brute_force(history: History, model: Model) -> bool:
    """Try every order of every subset of unknown ops (tiny histories only).

    Ground truth by Jepsen's reading (the etcd model keeps its own): a failed
    op did not happen, an unknown one happened at most once, after its call.
    """
    if model.name == "etcd":
        ops = [x for x in history.ops if model.relevant(x)]
    else:
        ops = [x for x in history.ops if x.outcome != "fail"]
    must = [x for x in ops if x.outcome != "unknown"]
    maybe = [x for x in ops if x.outcome == "unknown"]
    for r in range(len(maybe) + 1):
        for chosen in itertools.combinations(maybe, r):
            for order in itertools.permutations(must + list(chosen)):
                if _legal(order, model):
                    return True
    return False


def _legal(order: tuple[Op, ...], model: Model) -> bool:
    for i, a in enumerate(order):
        if any(b.ret < a.call for b in order[i + 1 :]):
            return False
    state = model.init()
    for x in order:
        ok, state = model.step(state, x)
        if not ok:
            return False
    return True


VALUES = st.integers(0, 2)


def _op_for(draw: st.DrawFn, model: str) -> tuple[str, Any, Any]:
    """(f, value, output) of a random op of ``model``."""
    if model in ("register", "cas-register", "etcd"):
        f = draw(
            st.sampled_from(["read", "write", "cas"] if model != "register" else ["read", "write"])
        )
        if f == "cas":
            return f, [draw(VALUES), draw(VALUES)], None
        return f, (None if f == "read" else draw(VALUES)), draw(st.sampled_from([None, 0, 1, 2]))
    if model == "multi-register":
        micro = [
            [
                draw(st.sampled_from(["read", "write"])),
                draw(st.sampled_from(["x", "y"])),
                draw(VALUES),
            ]
            for _ in range(draw(st.integers(1, 2)))
        ]
        asked = [[f, k, None if f == "read" else v] for f, k, v in micro]
        return "txn", asked, micro
    if model == "mutex":
        return draw(st.sampled_from(["acquire", "release"])), None, None
    if model == "set":
        f = draw(st.sampled_from(["add", "read"]))
        subset = frozenset(draw(st.sets(VALUES, max_size=3)))
        return f, (draw(VALUES) if f == "add" else None), subset
    f = draw(st.sampled_from(["enqueue", "dequeue"]))
    return f, (draw(VALUES) if f == "enqueue" else None), draw(st.one_of(st.none(), VALUES))


@st.composite
def small_histories(draw: st.DrawFn, model: str) -> History:
    ops = []
    for i in range(draw(st.integers(1, 6))):
        call = draw(st.integers(0, 8))
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "fail", "unknown"]))
        ret = INF if outcome == "unknown" else call + draw(st.integers(0, 4))
        f, value, out = _op_for(draw, model)
        output = out if outcome == "ok" and f in ("read", "txn", "dequeue") else None
        ops.append(Op(i, f"c{i}", f, None, value, output, call, ret, outcome))  # type: ignore[arg-type]
    ops.sort(key=lambda x: x.call)
    return History(ops)


INITIAL = {"cas-register": 0, "multi-register": {"x": 0, "y": 0}}


@pytest.mark.parametrize("name", [m for m in MODELS if m != "kv"])
def test_verdicts_match_brute_force(name: str) -> None:
    @settings(max_examples=150, deadline=None)
    @given(h=small_histories(name))
    def agree(h: History) -> None:
        model = make_model(name, h, INITIAL.get(name))
        expected = brute_force(h, model)
        assert check(h, model=model, timeout=GENEROUS).ok == expected

    agree()


@pytest.mark.parametrize("name", [m for m in MODELS if m != "kv"])
def test_each_models_fast_stepper_agrees_with_its_step(name: str) -> None:
    @settings(max_examples=100, deadline=None)
    @given(h=small_histories(name), data=st.data())
    def agree(h: History, data: st.DataObject) -> None:
        model = make_model(name, h, INITIAL.get(name))
        states = [model.init()]
        for x in h.ops:  # states reachable by stepping the ops in call order
            ok, state = model.step(states[-1], x)
            if ok:
                states.append(state)
        state = data.draw(st.sampled_from(states))
        for x in h.ops:
            assert model.stepper(x)(state) == model.step(state, x)  # type: ignore[attr-defined]

    agree()
