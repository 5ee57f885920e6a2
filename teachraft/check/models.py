"""Sequential specifications that a history must be explainable by.

A model is a tiny pure state machine: ``init()`` gives the starting state,
``step(state, op)`` says whether ``op`` (with its recorded outcome and output)
is legal in ``state`` and what the state becomes. States are small hashable
values (None, ints, strings) because the checker caches (ops linearized,
state) pairs. Both models act on one key: the checker partitions a history by
key and checks each key on its own, which is sound because keys are
independent objects (linearizability is local).

A model may also offer ``stepper(op)``: ``step`` specialised to one op, a
closure the search calls millions of times; it must agree with ``step``.

``relevant(op)`` lets the checker leave out ops that can neither change nor
constrain the state: a read whose result is unknown, or an op that definitely
did not take effect. Leaving them out changes no verdict; it only shrinks the
search.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from teachraft.check.history import History, Op

State = Hashable
Stepper = Callable[[State], tuple[bool, State]]


class Model(Protocol):
    """What the checker needs from a sequential specification."""

    name: str

    def init(self) -> State: ...

    def step(self, state: State, op: Op) -> tuple[bool, State]: ...

    def relevant(self, op: Op) -> bool: ...

    def describe(self, op: Op) -> str: ...

    def describe_state(self, state: State) -> str: ...


def fmt(value: Any) -> str:
    """A value as a student reads it: strings quoted, None as nil."""
    if value is None:
        return "nil"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + " ".join(fmt(v) for v in value) + "]"
    return str(value)


def _suffix(op: Op) -> str:
    return {"ok": "", "fail": " failed", "unknown": " ?"}[op.outcome]


class KVModel:
    """One key of the store: get/put, plus append (concatenation).

    The initial value is configurable: teachraft's store starts with a
    missing key (None), Jepsen/Knossos kv histories with "". Appending to a
    missing key starts from the empty string. A failed op did not take effect.
    """

    name = "kv"
    OPS = ("get", "put", "append")

    def __init__(self, initial: str | None = None) -> None:
        self.initial = initial

    def init(self) -> State:
        return self.initial

    def step(self, state: State, op: Op) -> tuple[bool, State]:
        f = op.f
        if f == "get":
            return (op.outcome != "ok" or op.output == state), state
        if f == "put":
            return True, op.value
        if f == "append":
            return True, ("" if state is None else state) + op.value
        raise ValueError(f"the kv model has no operation {f!r}")

    def stepper(self, op: Op) -> Stepper:
        """``step`` specialised to one op: the checker's hot loop calls this."""
        if op.f == "get":
            out = op.output
            if op.outcome != "ok":
                return lambda s: (True, s)
            return lambda s: (s == out, s)
        if op.f == "put":
            res = (True, op.value)
            return lambda s: res
        if op.f == "append":
            v = op.value
            return lambda s: (True, ("" if s is None else s) + v)
        raise ValueError(f"the kv model has no operation {op.f!r}")

    def relevant(self, op: Op) -> bool:
        if op.f not in self.OPS:
            raise ValueError(f"op {op.id}: the kv model has no operation {op.f!r}")
        return op.outcome != "fail" and not (op.f == "get" and op.outcome != "ok")

    def describe(self, op: Op) -> str:
        key = "" if op.key is None else str(op.key)
        if op.f == "get":
            out = self.describe_state(op.output) if op.outcome == "ok" else "?"
            return f"get({key}) -> {out}{'' if op.outcome != 'fail' else ' failed'}"
        return f"{op.f}({key}, {fmt(op.value)}){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        return "missing" if state is None else fmt(state)


class EtcdModel:
    """The compare-and-set register of Jepsen's etcd test; it starts at nil.

    A read of r is legal iff r equals the value; a write sets it; a cas that
    ended ok needs value == A and sets B; a cas that ended fail needs value
    != A; a cas with unknown outcome is always legal and applies only if
    value == A. A read with unknown result constrains nothing, and a failed
    read or write did not take effect.
    """

    name = "etcd"
    OPS = ("read", "write", "cas")

    def init(self) -> State:
        return None

    def step(self, state: State, op: Op) -> tuple[bool, State]:
        f = op.f
        if f == "read":
            return (op.outcome != "ok" or op.output == state), state
        if f == "write":
            return True, op.value
        if f == "cas":
            expect, new = op.value
            if op.outcome == "ok":
                return (True, new) if state == expect else (False, state)
            if op.outcome == "fail":
                return state != expect, state
            return True, (new if state == expect else state)
        raise ValueError(f"the etcd model has no operation {f!r}")

    def stepper(self, op: Op) -> Stepper:
        """``step`` specialised to one op: the checker's hot loop calls this."""
        if op.f == "read":
            out = op.output
            if op.outcome != "ok":
                return lambda s: (True, s)
            return lambda s: (s == out, s)
        if op.f == "write":
            res = (True, op.value)
            return lambda s: res
        if op.f != "cas":
            raise ValueError(f"the etcd model has no operation {op.f!r}")
        expect, new = op.value
        applied = (True, new)
        if op.outcome == "ok":
            return lambda s: applied if s == expect else (False, s)
        if op.outcome == "fail":
            return lambda s: (s != expect, s)
        return lambda s: applied if s == expect else (True, s)

    def relevant(self, op: Op) -> bool:
        if op.f not in self.OPS:
            raise ValueError(f"op {op.id}: the etcd model has no operation {op.f!r}")
        if op.f == "cas":
            return True
        return op.outcome == "ok" or (op.f == "write" and op.outcome == "unknown")

    def describe(self, op: Op) -> str:
        if op.f == "read":
            out = fmt(op.output) if op.outcome == "ok" else "?"
            return f"read() -> {out}{'' if op.outcome != 'fail' else ' failed'}"
        if op.f == "write":
            return f"write({fmt(op.value)}){_suffix(op)}"
        expect, new = op.value
        return f"cas({fmt(expect)}, {fmt(new)}){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        return fmt(state)


MODELS = ("kv", "etcd")


def sniff_model(history: History) -> str:
    """ "etcd" when the history uses register ops (read/write/cas), else "kv"."""
    return "etcd" if any(op.f in EtcdModel.OPS for op in history.ops) else "kv"


def make_model(model: str | Model | None, history: History) -> Model:
    """A model object from its name (None: sniffed from the ops)."""
    if model is None:
        model = sniff_model(history)
    if not isinstance(model, str):
        return model
    if model == "kv":
        return KVModel(initial=history.initial)
    if model == "etcd":
        return EtcdModel()
    raise ValueError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")


class AllKeys:
    """Checks every key as one object: the state holds one value per key.

    Partitioning by key is sound and much faster; this wrapper exists to
    check that claim on small histories and for models that are not keyed.
    """

    def __init__(self, inner: Model, keys: list[str | None]) -> None:
        self.inner = inner
        self.name = inner.name
        self.keys = keys
        self.index = {key: n for n, key in enumerate(keys)}

    def init(self) -> State:
        return tuple(self.inner.init() for _ in self.keys)

    def step(self, state: State, op: Op) -> tuple[bool, State]:
        assert isinstance(state, tuple)
        n = self.index[op.key]
        ok, value = self.inner.step(state[n], op)
        return ok, (*state[:n], value, *state[n + 1 :]) if ok else state

    def relevant(self, op: Op) -> bool:
        return self.inner.relevant(op)

    def describe(self, op: Op) -> str:
        return self.inner.describe(op)

    def describe_state(self, state: State) -> str:
        assert isinstance(state, tuple)
        parts = [
            f"{k}: {self.inner.describe_state(v)}" for k, v in zip(self.keys, state, strict=True)
        ]
        return "{" + ", ".join(parts) + "}"
