"""``ClusterLike``: the typed surface of a cluster that the widgets and figures use.

The panels and figures act on a cluster only through these members (no
private ones; ``tests/test_layers.py`` checks that), so anything that offers
them (the in-process ``Cluster``, or a twin over another deployment) can be
driven and drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from teachraft.cluster.views import ClusterSnapshot
from teachraft.core.log import Entry

T = TypeVar("T")
Node = int | str


@runtime_checkable
class ClusterLike(Protocol):
    """What widgets and viz read and call on a cluster."""

    num_servers: int
    num_clients: int
    tracing: bool
    slow_motion: float

    @property
    def closed(self) -> bool: ...

    @property
    def trace_paths(self) -> tuple[Path, Path]: ...

    def status(self) -> dict[str, Any]: ...

    def snapshot(self) -> ClusterSnapshot: ...

    def node_names(self) -> list[str]: ...

    def links(self) -> dict[tuple[str, str], dict[str, Any]]: ...

    def log(self, server_id: int) -> list[Entry]: ...

    def events(self) -> Any: ...

    def flush_traces(self, timeout: float = 20.0) -> None: ...

    def call_in_loop(self, fn: Callable[[], T]) -> T: ...

    def put(self, key: str, value: str, client: int = 1, via: int | None = None) -> None: ...

    async def aput(self, key: str, value: str, client: int = 1, via: int | None = None) -> None: ...

    def get(self, key: str, client: int = 1, via: int | None = None) -> str | None: ...

    async def aget(self, key: str, client: int = 1, via: int | None = None) -> str | None: ...

    def fail(self, server_id: int) -> None: ...

    async def afail(self, server_id: int) -> None: ...

    def fail_leader(self) -> int: ...

    async def afail_leader(self) -> int: ...

    def restart(self, server_id: int) -> None: ...

    async def arestart(self, server_id: int) -> None: ...

    def partition(self, *groups: Iterable[Node]) -> None: ...

    def heal(self) -> None: ...

    def set_slow_motion(self, factor: float) -> None: ...
