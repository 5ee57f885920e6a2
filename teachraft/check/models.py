"""Sequential specifications that a history must be explainable by.

A model is a tiny pure state machine: ``init()`` gives the starting state,
``step(state, op)`` says whether ``op`` (with its recorded outcome and output)
is legal in ``state`` and what the state becomes. States are small hashable
values (None, ints, strings, tuples, frozensets) because the checker caches
(ops linearized, state) pairs. The checker partitions a history by key and
checks each key on its own, which is sound because keys are independent
objects (linearizability is local); ops without a key form one object.

Two readings of a failed op exist, and the model decides which applies:

- **Jepsen's** (every model but ``etcd``): ``:fail`` means the op definitely
  did not happen, so it constrains nothing and is left out, as Knossos does.
- **The etcd register's** (``etcd``): a failed cas is a compare that failed,
  so it is legal only where the value differs from the expected one.

An op with unknown outcome (``:info``, or an invoke never completed) may take
effect at any time after its call, or never; the search handles the "never".

``relevant(op)`` lets the checker leave out ops that can neither change nor
constrain the state (a read with unknown result, a failed op under Jepsen's
reading). ``stepper(op)`` is ``step`` specialised to one op, the closure the
search calls millions of times; every model's steppers agree with ``step``.
``why(state, op)`` says in words why ``op`` is illegal in ``state``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, Protocol

from teachraft.check.history import History, Op

State = Any
"""A model's state: any frozen (hashable) value; each model freezes its own shape."""
Stepper = Callable[[State], tuple[bool, State]]
UNSET: Any = object()


class Model(Protocol):
    """What the checker needs from a sequential specification."""

    @property
    def name(self) -> str: ...

    def init(self) -> State: ...

    def step(self, state: State, op: Op) -> tuple[bool, State]: ...

    def relevant(self, op: Op) -> bool: ...

    def describe(self, op: Op) -> str: ...

    def describe_state(self, state: State) -> str: ...


def fmt(value: Any) -> str:
    """A value as a student reads it: strings quoted, None as nil, sets as #{...}."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, frozenset | set):
        return "#{" + " ".join(sorted(fmt(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{fmt(k)} {fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + " ".join(fmt(v) for v in value) + "]"
    return str(value)


def freeze(value: Any) -> Hashable:
    """A value made hashable so it can live in a state: lists become tuples, maps pairs."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((freeze(k), freeze(v)) for k, v in value.items()), key=repr))
    if isinstance(value, set):
        return frozenset(freeze(v) for v in value)
    return value


def _suffix(op: Op) -> str:
    return {"ok": "", "fail": " failed", "unknown": " ?"}[op.outcome]


def _always(s: State) -> tuple[bool, State]:
    return True, s


class _Base:
    """What every model shares: op checking, memoised steppers and a default ``why``."""

    name: ClassVar[str] = ""
    OPS: ClassVar[tuple[str, ...]] = ()
    initial: State = None

    def __init__(self, initial: Any = None) -> None:
        self.initial = initial

    def init(self) -> State:
        return self.initial

    def step(self, state: State, op: Op) -> tuple[bool, State]:
        """One op from one state. A model overrides ``step`` or ``stepper`` (or both)."""
        return self.stepper(op)(state)

    def _check_f(self, op: Op) -> None:
        if op.f not in self.OPS:
            raise ValueError(
                f"op {op.id}: the {self.name} model has no operation {op.f!r} "
                f"(it knows {', '.join(self.OPS)})"
            )

    def relevant(self, op: Op) -> bool:
        """Jepsen's reading: a failed op did not happen, so it is left out."""
        self._check_f(op)
        return op.outcome != "fail"

    def stepper(self, op: Op) -> Stepper:
        """``step`` for one op, memoised per state (models override it with closures)."""
        table: dict[State, tuple[bool, State]] = {}
        step = self.step

        def memoised(state: State) -> tuple[bool, State]:
            res = table.get(state)
            if res is None:
                res = table[state] = step(state, op)
            return res

        return memoised

    def describe(self, op: Op) -> str:
        shown = op.output if op.outcome == "ok" and op.output is not None else op.value
        return f"{op.f}({fmt(shown)}){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        return fmt(state)

    def why(self, state: State, op: Op) -> str:
        return f"{self.describe(op)} is not a legal step from {self.describe_state(state)}"


class KVModel(_Base):
    """One key of the store: get/put, plus append (concatenation).

    The initial value is configurable: teachraft's store starts with a
    missing key (None), Jepsen/Knossos kv histories with "". Appending to a
    missing key starts from the empty string. A failed op did not take effect.
    """

    name = "kv"
    OPS = ("get", "put", "append")

    def __init__(self, initial: str | None = None) -> None:
        self.initial = initial

    def stepper(self, op: Op) -> Stepper:
        if op.f == "get":
            out = op.output
            if op.outcome != "ok":
                return _always
            return lambda s: (s == out, s)
        if op.f == "put":
            res = (True, op.value)
            return lambda s: res
        if op.f == "append":
            v = op.value
            return lambda s: (True, ("" if s is None else s) + v)
        raise ValueError(f"the kv model has no operation {op.f!r}")

    def relevant(self, op: Op) -> bool:
        f, outcome = op.f, op.outcome
        if f not in self.OPS:
            self._check_f(op)
        return outcome != "fail" and (outcome == "ok" or f != "get")

    def describe(self, op: Op) -> str:
        key = "" if op.key is None else str(op.key)
        if op.f == "get":
            out = self.describe_state(op.output) if op.outcome == "ok" else "?"
            return f"get({key}) -> {out}{'' if op.outcome != 'fail' else ' failed'}"
        return f"{op.f}({key}, {fmt(op.value)}){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        return "missing" if state is None else fmt(state)

    def why(self, state: State, op: Op) -> str:
        return (
            f"a get must return the key's value, {self.describe_state(state)}, "
            f"not {self.describe_state(op.output)}"
        )


class RegisterModel(_Base):
    """A read/write register (Knossos's ``register``), ``initial`` (default nil).

    A read of v is legal iff v equals the value; a read that returned nil is
    an unknown read and constrains nothing, as in Knossos. A write sets it.
    """

    name = "register"
    OPS: ClassVar[tuple[str, ...]] = ("read", "write")

    def __init__(self, initial: Any = None) -> None:
        self.initial = freeze(initial)

    def stepper(self, op: Op) -> Stepper:
        if op.f == "read":
            out = freeze(op.output)
            if op.outcome != "ok" or out is None:
                return _always
            return lambda s: (s == out, s)
        if op.f == "write":
            res = (True, freeze(op.value))
            return lambda s: res
        return self._cas_stepper(op)

    def _cas_stepper(self, op: Op) -> Stepper:
        raise ValueError(f"the {self.name} model has no operation {op.f!r}")

    def relevant(self, op: Op) -> bool:
        self._check_f(op)
        if op.outcome == "fail":
            return False
        return not (op.f == "read" and (op.outcome != "ok" or op.output is None))

    def describe(self, op: Op) -> str:
        if op.f == "read":
            out = fmt(op.output) if op.outcome == "ok" else "?"
            return f"read() -> {out}{'' if op.outcome != 'fail' else ' failed'}"
        if op.f == "write":
            return f"write({fmt(op.value)}){_suffix(op)}"
        expect, new = op.value
        return f"cas({fmt(expect)}, {fmt(new)}){_suffix(op)}"

    def why(self, state: State, op: Op) -> str:
        if op.f == "read":
            return f"a read must return the value, {fmt(state)}, not {fmt(op.output)}"
        if op.f == "cas":
            expect = op.value[0]
            if op.outcome == "fail":
                return f"a failed cas needs the value to differ from {fmt(expect)}, and it is not"
            return f"cas needs the value to be {fmt(expect)}, but it is {fmt(state)}"
        return super().why(state, op)


class CasRegisterModel(RegisterModel):
    """Knossos's ``cas-register``: a register plus ``cas [A B]``, under Jepsen's reading.

    ``cas [A B]`` is legal iff the value is A, and then sets B. A failed op
    did not happen; a cas with unknown outcome applies only where legal.
    """

    name = "cas-register"
    OPS = ("read", "write", "cas")

    def _cas_stepper(self, op: Op) -> Stepper:
        if op.f != "cas":
            return super()._cas_stepper(op)
        expect, new = (freeze(v) for v in op.value)
        applied = (True, new)
        return lambda s: applied if s == expect else (False, s)


class EtcdModel(CasRegisterModel):
    """The compare-and-set register of Jepsen's etcd test; it starts at nil.

    Unlike ``cas-register``, a cas that ended ``fail`` is a compare that
    failed: it needs value != A. A cas with unknown outcome is always legal
    and applies only if value == A. A read with unknown result constrains
    nothing, and a failed read or write did not take effect.
    """

    name = "etcd"

    def __init__(self, initial: Any = None) -> None:
        super().__init__(initial)

    def _cas_stepper(self, op: Op) -> Stepper:
        if op.f != "cas":
            return super()._cas_stepper(op)
        expect, new = (freeze(v) for v in op.value)
        applied = (True, new)
        if op.outcome == "ok":
            return lambda s: applied if s == expect else (False, s)
        if op.outcome == "fail":
            return lambda s: (s != expect, s)
        return lambda s: applied if s == expect else (True, s)

    def stepper(self, op: Op) -> Stepper:
        if op.f == "read" and op.outcome == "ok" and op.output is None:
            return lambda s: (s is None, s)  # etcd reads nil from an unset key
        return super().stepper(op)

    def relevant(self, op: Op) -> bool:
        self._check_f(op)
        if op.f == "cas":
            return True
        return op.outcome == "ok" or (op.f == "write" and op.outcome == "unknown")


class MultiRegisterModel(_Base):
    """Knossos's ``multi-register``: named registers read and written in atomic txns.

    ``:txn [[:read :x 1] [:write :y 2]]`` applies its micro-ops in order, all
    at once; a read of nil constrains nothing. ``initial`` is a map (EDN
    ``{:x 0 :y 0}``); registers it does not name start at nil.
    """

    name = "multi-register"
    OPS = ("txn",)

    def __init__(self, initial: Any = None) -> None:
        if initial is None:
            initial = {}
        if not isinstance(initial, dict):
            raise ValueError("the multi-register model's initial value is a map, e.g. {:x 0 :y 0}")
        self.initial = freeze(initial)

    def step(self, state: State, op: Op) -> tuple[bool, State]:
        values = dict(state)  # type: ignore[arg-type]
        for f, k, v in self._micro(op):
            if f == "read":
                if v is not None and values.get(k) != v:
                    return False, state
            elif f == "write":
                values[k] = v
            else:
                raise ValueError(f"op {op.id}: unknown micro-op {f!r} (read or write)")
        return True, freeze(values)

    def _micro(self, op: Op) -> list[tuple[str, Hashable, Hashable]]:
        txn = op.output if op.outcome == "ok" and op.output is not None else op.value
        if not isinstance(txn, list | tuple):
            raise ValueError(f"op {op.id}: a txn is a vector of micro-ops, not {txn!r}")
        return [(str(f), freeze(k), freeze(v)) for f, k, v in txn]

    def describe(self, op: Op) -> str:
        parts = [f"{f} {fmt(k)} {fmt(v)}" for f, k, v in self._micro(op)]
        return f"txn({'; '.join(parts)}){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        return fmt(dict(state))  # type: ignore[arg-type]

    def why(self, state: State, op: Op) -> str:
        values = dict(state)  # type: ignore[arg-type]
        for f, k, v in self._micro(op):
            if f == "read" and v is not None and values.get(k) != v:
                return f"it reads {fmt(k)} = {fmt(v)}, but {fmt(k)} is {fmt(values.get(k))}"
            if f == "write":
                values[k] = v
        return super().why(state, op)


class MutexModel(_Base):
    """Knossos's ``mutex``: acquire is legal iff unlocked, release iff locked."""

    name = "mutex"
    OPS = ("acquire", "release")

    def __init__(self, initial: Any = None) -> None:
        self.initial = bool(initial)

    def stepper(self, op: Op) -> Stepper:
        if op.f == "acquire":
            return lambda s: (True, True) if not s else (False, s)
        if op.f == "release":
            return lambda s: (True, False) if s else (False, s)
        raise ValueError(f"the mutex model has no operation {op.f!r}")

    def describe(self, op: Op) -> str:
        return f"{op.f}(){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        return "locked" if state else "unlocked"

    def why(self, state: State, op: Op) -> str:
        if op.f == "acquire":
            return "acquire needs the lock free, but it is held"
        return "release needs the lock held, but it is free"


class SetModel(_Base):
    """A grow-only set: ``add`` v inserts it; a ``read`` must return the whole set."""

    name = "set"
    OPS = ("add", "read")

    def __init__(self, initial: Any = None) -> None:
        self.initial = frozenset(freeze(v) for v in (initial or ()))

    def stepper(self, op: Op) -> Stepper:
        if op.f == "add":
            v = freeze(op.value)
            return lambda s: (True, s | {v})  # type: ignore[operator]
        if op.f == "read":
            if op.outcome != "ok":
                return _always
            out = frozenset(freeze(v) for v in (op.output or ()))
            return lambda s: (s == out, s)
        raise ValueError(f"the set model has no operation {op.f!r}")

    def relevant(self, op: Op) -> bool:
        return super().relevant(op) and not (op.f == "read" and op.outcome != "ok")

    def describe(self, op: Op) -> str:
        if op.f == "read":
            out = fmt(frozenset(op.output or ())) if op.outcome == "ok" else "?"
            return f"read() -> {out}{_suffix(op) if op.outcome == 'fail' else ''}"
        return f"add({fmt(op.value)}){_suffix(op)}"

    def why(self, state: State, op: Op) -> str:
        out = frozenset(freeze(v) for v in (op.output or ()))
        missing = sorted(fmt(v) for v in state - out)  # type: ignore[operator]
        extra = sorted(fmt(v) for v in out - state)  # type: ignore[operator]
        parts = []
        if missing:
            parts.append(f"misses {' '.join(missing)}")
        if extra:
            parts.append(f"has {' '.join(extra)}, never added by then")
        return f"a read must return the set {fmt(state)}; this one {' and '.join(parts)}"


class UnorderedQueueModel(_Base):
    """A bag: ``enqueue`` v adds v; ``dequeue`` -> v is legal iff v is in it.

    A dequeue with unknown outcome (or that returned nothing) is left out:
    had it taken an element, that element would only be missing from the bag,
    which can make no later dequeue illegal.
    """

    name = "unordered-queue"
    OPS = ("enqueue", "dequeue")

    def __init__(self, initial: Any = None) -> None:
        self.initial = self._bag(Counter(freeze(v) for v in (initial or ())))

    @staticmethod
    def _bag(counts: Counter[Hashable]) -> State:
        return frozenset((v, n) for v, n in counts.items() if n > 0)

    def step(self, state: State, op: Op) -> tuple[bool, State]:
        counts = Counter(dict(state))  # type: ignore[arg-type]
        v = freeze(op.value if op.f == "enqueue" else op.output)
        if op.f == "enqueue":
            counts[v] += 1
            return True, self._bag(counts)
        if op.outcome != "ok" or op.output is None:
            return True, state
        if counts[v] <= 0:
            return False, state
        counts[v] -= 1
        return True, self._bag(counts)

    def relevant(self, op: Op) -> bool:
        return super().relevant(op) and not (
            op.f == "dequeue" and (op.outcome != "ok" or op.output is None)
        )

    def describe(self, op: Op) -> str:
        if op.f == "dequeue":
            out = fmt(op.output) if op.outcome == "ok" else "?"
            return f"dequeue() -> {out}{_suffix(op) if op.outcome == 'fail' else ''}"
        return f"enqueue({fmt(op.value)}){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        items = sorted((fmt(v) for v, n in state for _ in range(n)))  # type: ignore[union-attr]
        return "{" + " ".join(items) + "}"

    def why(self, state: State, op: Op) -> str:
        queue = self.describe_state(state)
        return f"dequeue returned {fmt(op.output)}, which is not in the queue {queue}"


class FifoQueueModel(_Base):
    """A FIFO queue: ``dequeue`` -> v is legal iff v is at the head.

    A dequeue with unknown outcome removes whatever is at the head (or
    nothing, if the queue is empty): a FIFO dequeue has one possible effect.
    """

    name = "fifo-queue"
    OPS = ("enqueue", "dequeue")

    def __init__(self, initial: Any = None) -> None:
        self.initial = tuple(freeze(v) for v in (initial or ()))

    def stepper(self, op: Op) -> Stepper:
        if op.f == "enqueue":
            v = freeze(op.value)
            return lambda s: (True, (*s, v))  # type: ignore[misc]
        if op.f != "dequeue":
            raise ValueError(f"the fifo-queue model has no operation {op.f!r}")
        if op.outcome != "ok" or op.output is None:
            return lambda s: (True, s[1:])  # type: ignore[index]
        out = freeze(op.output)
        return lambda s: (True, s[1:]) if s and s[0] == out else (False, s)  # type: ignore[index]

    def describe(self, op: Op) -> str:
        if op.f == "dequeue":
            out = fmt(op.output) if op.outcome == "ok" else "?"
            return f"dequeue() -> {out}{_suffix(op) if op.outcome == 'fail' else ''}"
        return f"enqueue({fmt(op.value)}){_suffix(op)}"

    def describe_state(self, state: State) -> str:
        return "[" + " ".join(fmt(v) for v in state) + "]"  # type: ignore[union-attr]

    def why(self, state: State, op: Op) -> str:
        if not state:
            return f"dequeue returned {fmt(op.output)}, but the queue is empty"
        return f"dequeue returned {fmt(op.output)}, but the head of the queue is {fmt(state[0])}"  # type: ignore[index]


MODEL_CLASSES: dict[str, type[_Base]] = {
    cls.name: cls
    for cls in (
        RegisterModel,
        CasRegisterModel,
        KVModel,
        EtcdModel,
        MultiRegisterModel,
        MutexModel,
        SetModel,
        UnorderedQueueModel,
        FifoQueueModel,
    )
}
MODELS = tuple(MODEL_CLASSES)
_SNIFF = {
    "get": "kv",
    "put": "kv",
    "append": "kv",
    "txn": "multi-register",
    "acquire": "mutex",
    "release": "mutex",
    "add": "set",
}


def sniff_model(history: History) -> str:
    """The model a history's ops call for, when none is named.

    A file's own format may say (``model_hint``: Jepsen EDN register ops get
    Jepsen's ``cas-register``, Jepsen etcd logs the ``etcd`` register); a
    history made in memory with register ops gets ``etcd``, as it always has.
    Queues must be named: whether FIFO or not is not in the ops.
    """
    if history.model_hint is not None:
        return history.model_hint
    fs = {op.f for op in history.ops}
    if "add" in fs:
        return "set"
    if fs & {"read", "write", "cas"}:
        return "etcd"
    if fs & {"enqueue", "dequeue"}:
        raise ValueError("a queue history: name the model (unordered-queue or fifo-queue)")
    for f in fs:
        if f in _SNIFF:
            return _SNIFF[f]
    return "kv"


def make_model(model: str | Model | None, history: History, initial: Any = UNSET) -> Model:
    """A model object from its name (None: sniffed from the ops).

    ``initial`` is the starting value where the model has one; unset, the kv
    model takes the history's own (teachraft: None, Jepsen/Knossos: "").
    """
    if model is None:
        model = sniff_model(history)
    if not isinstance(model, str):
        return model
    cls = MODEL_CLASSES.get(model)
    if cls is None:
        raise ValueError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    if initial is UNSET:
        initial = history.initial if cls is KVModel else None
    return cls(initial)


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

    def why(self, state: State, op: Op) -> str:
        assert isinstance(state, tuple)
        return why(self.inner, state[self.index[op.key]], op)


def why(model: Model, state: State, op: Op) -> str:
    """Why ``op`` is illegal in ``state``, in the model's words when it has them."""
    explain = getattr(model, "why", None)
    if explain is not None:
        return explain(state, op)
    return f"{model.describe(op)} is not a legal step from {model.describe_state(state)}"


def jepsen_model(ops: list[Op]) -> str | None:
    """The model Jepsen input with these ops implies: register ops get Jepsen's reading."""
    fs = {op.f for op in ops}
    if "add" in fs or not fs & {"read", "write", "cas"}:
        return None
    return "cas-register" if "cas" in fs else "register"
