"""The checker's rules, one small hand-made history each, and a brute-force cross-check."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teachraft.check import CheckResult, History, Op, check, load_history
from teachraft.check.models import EtcdModel, KVModel, Model

DATA = Path(__file__).parent / "data" / "histories"
INF = math.inf
GENEROUS = 120.0


def op(
    id: int,
    client: str,
    f: str,
    key: str | None,
    value: Any,
    call: float,
    ret: float,
    outcome: str = "ok",
    output: Any = None,
) -> Op:
    return Op(id, client, f, key, value, output, call, ret, outcome)  # type: ignore[arg-type]


def put(id: int, c: str, v: str, call: float, ret: float, outcome: str = "ok", k: str = "x") -> Op:
    return op(id, c, "put", k, v, call, ret, outcome)


def get(
    id: int, c: str, out: Any, call: float, ret: float, outcome: str = "ok", k: str = "x"
) -> Op:
    return op(id, c, "get", k, None, call, ret, outcome, out if outcome == "ok" else None)


def run(*ops: Op, model: str = "kv", initial: Any = None) -> CheckResult:
    return check(History(list(ops), initial=initial), model=model, timeout=GENEROUS)


def assert_violation(result: CheckResult, failed_id: int) -> None:
    assert result.verdict == "not linearizable"
    assert result.failed_op is not None and result.failed_op.id == failed_id
    text = result.explain()
    assert text.startswith("not linearizable")
    assert f"op {failed_id}" in text


# --- unknown outcomes -------------------------------------------------------------------------


def test_an_unknown_write_that_took_effect_is_linearizable() -> None:
    r = run(put(0, "a", "1", 0, INF, "unknown"), get(1, "b", None, 1, 2), get(2, "b", "1", 5, 6))
    assert r.verdict == "linearizable"
    assert r.linearization == [1, 0, 2]


def test_an_unknown_write_that_never_took_effect_is_linearizable() -> None:
    r = run(
        put(0, "a", "1", 0, INF, "unknown"), get(1, "b", None, 10, 11), get(2, "b", None, 20, 21)
    )
    assert r.verdict == "linearizable"
    assert r.linearization == [1, 2]


def test_an_unknown_write_cannot_be_undone() -> None:
    r = run(
        put(0, "a", "1", 0, INF, "unknown"), get(1, "b", "1", 10, 11), get(2, "b", None, 20, 21)
    )
    assert_violation(r, 2)


def test_an_unknown_write_cannot_take_effect_before_it_was_called() -> None:
    r = run(get(0, "b", "1", 0, 1), put(1, "a", "1", 2, INF, "unknown"))
    assert_violation(r, 0)


def test_an_unknown_read_constrains_nothing() -> None:
    r = run(put(0, "a", "1", 0, 1), get(1, "b", None, 2, INF, "unknown"))
    assert r.verdict == "linearizable"


def test_a_failed_write_did_not_take_effect() -> None:
    assert run(put(0, "a", "1", 0, 1, "fail"), get(1, "b", None, 2, 3)).verdict == "linearizable"
    assert_violation(run(put(0, "a", "1", 0, 1, "fail"), get(1, "b", "1", 2, 3)), 1)


# --- stale reads, lost writes, concurrency ----------------------------------------------------


def test_a_stale_read_is_caught() -> None:
    r = run(put(0, "a", "1", 0, 1), put(1, "a", "2", 2, 3), get(2, "b", "1", 4, 5))
    assert_violation(r, 2)
    assert r.key == "x"
    assert r.linearization == [0, 1]


def test_a_lost_write_is_caught() -> None:
    r = run(put(0, "a", "1", 0, 1), get(1, "b", None, 2, 3))
    assert_violation(r, 1)
    assert "missing" in r.explain()


@pytest.mark.parametrize("seen", [None, "1"])
def test_a_read_concurrent_with_a_write_may_see_either_value(seen: str | None) -> None:
    r = run(put(0, "a", "1", 0, 10), get(1, "b", seen, 2, 3))
    assert r.verdict == "linearizable"
    assert r.linearization == ([1, 0] if seen is None else [0, 1])


def test_concurrent_writes_may_take_effect_in_either_order() -> None:
    for last in ("1", "2"):
        r = run(put(0, "a", "1", 0, 10), put(1, "b", "2", 1, 9), get(2, "c", last, 11, 12))
        assert r.verdict == "linearizable"
        assert r.linearization[-2] == (0 if last == "1" else 1)


def test_once_a_new_value_is_read_a_later_read_cannot_see_the_old_one() -> None:
    r = run(put(0, "a", "1", 0, 10), get(1, "b", "1", 1, 2), get(2, "c", None, 3, 4))
    assert_violation(r, 2)


def test_ops_that_touch_count_as_concurrent() -> None:
    r = run(put(0, "a", "1", 0, 5), get(1, "b", None, 5, 6))
    assert r.verdict == "linearizable"


def test_keys_are_independent_and_the_failing_key_is_named() -> None:
    r = run(
        put(0, "a", "1", 0, 1, k="good"),
        put(1, "a", "1", 0, 1, k="bad"),
        get(2, "b", "1", 2, 3, k="good"),
        get(3, "b", "2", 2, 3, k="bad"),
    )
    assert_violation(r, 3)
    assert r.key == "bad"


def test_a_linearizable_multi_key_history_gets_one_global_order() -> None:
    r = run(
        put(0, "a", "1", 0, 2, k="p"),
        put(1, "b", "1", 1, 3, k="q"),
        get(2, "a", "1", 4, 5, k="q"),
        get(3, "b", "1", 4, 5, k="p"),
    )
    assert r.verdict == "linearizable"
    assert sorted(r.linearization) == [0, 1, 2, 3]
    assert set(r.linearization[:2]) == {0, 1}
    for op_id, t in r.points.items():
        o = r.ops[op_id]
        assert o.call <= t <= o.ret
    ordered = [r.points[i] for i in r.linearization]
    assert ordered == sorted(ordered)


# --- append ------------------------------------------------------------------------------------


def append(id: int, c: str, v: str, call: float, ret: float, outcome: str = "ok") -> Op:
    return op(id, c, "append", "x", v, call, ret, outcome)


@pytest.mark.parametrize("seen", ["ab", "ba"])
def test_concurrent_appends_land_in_some_order(seen: str) -> None:
    r = run(append(0, "a", "a", 0, 10), append(1, "b", "b", 1, 9), get(2, "c", seen, 11, 12))
    assert r.verdict == "linearizable"


def test_an_append_cannot_be_lost() -> None:
    r = run(append(0, "a", "a", 0, 1), append(1, "b", "b", 2, 3), get(2, "c", "a", 4, 5))
    assert_violation(r, 2)


def test_append_to_a_missing_key_starts_from_the_empty_string() -> None:
    assert run(append(0, "a", "a", 0, 1), get(1, "b", "a", 2, 3)).verdict == "linearizable"
    r = run(append(0, "a", "a", 0, 1), get(1, "b", "xa", 2, 3), initial="x")
    assert r.verdict == "linearizable"


# --- the etcd compare-and-set register --------------------------------------------------------


def reg(
    id: int,
    c: str,
    f: str,
    value: Any,
    call: float,
    ret: float,
    outcome: str = "ok",
    out: Any = None,
) -> Op:
    return op(id, c, f, None, value, call, ret, outcome, out)


def test_a_failed_cas_needs_a_different_value() -> None:
    ok = History(
        [
            reg(0, "0", "write", 1, 0, 1),
            reg(1, "1", "cas", [2, 3], 2, 3, "fail"),
            reg(2, "0", "read", None, 4, 5, out=1),
        ]
    )
    assert check(ok, timeout=GENEROUS).verdict == "linearizable"
    r = check(load_history(DATA / "cas-fail-violation.log"), timeout=GENEROUS)
    assert_violation(r, 2)
    assert "cas(1, 4) failed" in r.explain()


def test_a_successful_cas_needs_the_expected_value_and_sets_the_new_one() -> None:
    ops = [reg(0, "0", "write", 1, 0, 1), reg(1, "1", "cas", [1, 2], 2, 3)]
    assert check(History([*ops, reg(2, "0", "read", None, 4, 5, out=2)])).ok
    wrong = [reg(0, "0", "write", 1, 0, 1), reg(1, "1", "cas", [5, 2], 2, 3)]
    assert_violation(check(History(wrong), timeout=GENEROUS), 1)


def test_an_unknown_cas_applies_only_if_the_value_matched() -> None:
    base = [reg(0, "0", "write", 1, 0, 1), reg(1, "1", "cas", [1, 2], 2, INF, "unknown")]
    assert check(History([*base, reg(2, "0", "read", None, 4, 5, out=2)])).ok
    assert check(History([*base, reg(2, "0", "read", None, 4, 5, out=1)])).ok
    mismatched = [reg(0, "0", "write", 1, 0, 1), reg(1, "1", "cas", [7, 2], 2, INF, "unknown")]
    r = check(History([*mismatched, reg(2, "0", "read", None, 4, 5, out=2)]), timeout=GENEROUS)
    assert_violation(r, 2)


def test_the_register_starts_at_nil() -> None:
    assert check(History([reg(0, "0", "read", None, 0, 1, out=None)])).ok
    assert_violation(check(History([reg(0, "0", "read", None, 0, 1, out=0)])), 0)


def test_jepsen_info_write_seen_later_is_linearizable() -> None:
    assert check(load_history(DATA / "unknown-write-seen.log")).ok


def test_jepsen_timed_out_read_constrains_nothing() -> None:
    assert check(load_history(DATA / "timed-out-read.log")).ok


# --- files in tests/data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "verdict", "failed"),
    [
        ("stale-read.edn", "not linearizable", 2),
        ("lost-write.jsonl", "not linearizable", 3),
        ("partition-ok.jsonl", "linearizable", None),
        ("unknown-write-seen.log", "linearizable", None),
        ("cas-fail-violation.log", "not linearizable", 2),
        ("timed-out-read.log", "linearizable", None),
    ],
)
def test_hand_made_history_files(name: str, verdict: str, failed: int | None) -> None:
    r = check(load_history(DATA / name), timeout=GENEROUS)
    assert r.verdict == verdict
    assert (r.failed_op.id if r.failed_op else None) == failed


# --- time limit and fairness -------------------------------------------------------------------


def hard_key(n: int, key: str = "hard") -> list[Op]:
    """n concurrent puts and a read of a value never written: the search must try every subset."""
    ops = [put(i, f"w{i}", str(i), 0, 100 + i, k=key) for i in range(n)]
    return [*ops, get(n, "r", "never written", 200, 201, k=key)]


def test_a_tiny_time_limit_yields_unknown() -> None:
    h = History(hard_key(24))
    for timeout in (0.0, 0.3):
        r = check(h, timeout=timeout)
        assert r.verdict == "unknown"
        assert r.failed_op is None and r.linearization == []
        assert r.explain().startswith("unknown")


def test_one_hard_key_does_not_starve_a_bad_easy_key() -> None:
    easy = [put(100, "a", "1", 300, 301, k="easy"), get(101, "b", "2", 302, 303, k="easy")]
    r = check(History(hard_key(24) + easy), timeout=60.0)
    assert_violation(r, 101)
    assert r.key == "easy"


def test_the_same_history_and_model_objects_can_be_passed_directly() -> None:
    h = History([put(0, "a", "1", 0, 1), get(1, "b", "1", 2, 3)])
    assert check(h, model=KVModel(initial=None)).ok
    with pytest.raises(ValueError):
        check(h, model="bank")
    with pytest.raises(ValueError):
        check(h, model=EtcdModel())


def test_malformed_histories_are_rejected() -> None:
    with pytest.raises(ValueError):
        check(History([put(0, "a", "1", 5, 1)]))
    with pytest.raises(ValueError):
        check(History([put(0, "a", "1", 0, 1), put(0, "b", "2", 0, 1)]))


# --- brute force cross-check ----------------------------------------------------------------


def brute_force(history: History, model: Model) -> bool:
    """Try every order of every subset of unknown ops (tiny histories only)."""
    ops = [o for o in history.ops if model.relevant(o)]
    must = [o for o in ops if o.outcome != "unknown"]
    maybe = [o for o in ops if o.outcome == "unknown"]
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
    for o in order:
        ok, state = model.step(state, o)
        if not ok:
            return False
    return True


@st.composite
def small_histories(draw: st.DrawFn, model: str) -> History:
    n = draw(st.integers(1, 6))
    ops = []
    for i in range(n):
        call = draw(st.integers(0, 8))
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "fail", "unknown"]))
        ret = INF if outcome == "unknown" else call + draw(st.integers(0, 4))
        val = draw(st.integers(0, 2))
        if model == "kv":
            f = draw(st.sampled_from(["get", "put", "append"]))
            value = None if f == "get" else str(val)
            out = draw(st.sampled_from([None, "", "0", "1", "01", "10"])) if f == "get" else None
        else:
            f = draw(st.sampled_from(["read", "write", "cas"]))
            value = [val, draw(st.integers(0, 2))] if f == "cas" else (None if f == "read" else val)
            out = draw(st.sampled_from([None, 0, 1, 2])) if f == "read" else None
        ops.append(
            op(
                i,
                f"c{i}",
                f,
                "k" if model == "kv" else None,
                value,
                call,
                ret,
                outcome,
                out if outcome == "ok" else None,
            )
        )
    ops.sort(key=lambda o: o.call)
    return History(ops, initial=None)


@settings(max_examples=300, deadline=None)
@given(h=small_histories("kv"))
def test_kv_verdicts_match_brute_force(h: History) -> None:
    expected = brute_force(h, KVModel(initial=None))
    assert check(h, model="kv", timeout=GENEROUS).ok == expected


@settings(max_examples=300, deadline=None)
@given(h=small_histories("etcd"))
def test_etcd_verdicts_match_brute_force(h: History) -> None:
    expected = brute_force(h, EtcdModel())
    assert check(h, model="etcd", timeout=GENEROUS).ok == expected


states = st.one_of(st.none(), st.sampled_from(["", "0", "1", "01"]), st.integers(0, 2))


@settings(max_examples=300, deadline=None)
@given(h=st.one_of(small_histories("kv"), small_histories("etcd")), state=states)
def test_each_models_fast_stepper_agrees_with_its_step(h: History, state: Any) -> None:
    model: Model = EtcdModel() if h.ops[0].f in EtcdModel.OPS else KVModel()
    for o in h.ops:
        if isinstance(model, KVModel) and o.f == "append" and not isinstance(state, str | None):
            continue  # appending to an integer is not a kv state
        assert model.stepper(o)(state) == model.step(state, o)
