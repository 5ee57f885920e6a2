"""An etcd client over the v3 JSON gateway, recording every op into a history.

etcd serves its gRPC API as JSON too (``POST /v3/kv/put``, ``/v3/kv/range``,
``/v3/kv/txn``, ...; keys and values in base64). httpx keeps one persistent
connection pool per client and offers the same calls sync and async. The
maintained Python etcd clients speak gRPC and pin old protobuf releases (the
classic ``etcd3`` package no longer imports with current protobuf), so the
gateway is the one path that works everywhere teachraft runs.

Outcomes follow the history's rule: an op is ``fail`` only when it surely did
not take effect (the connection was refused before anything was sent, or a
read failed), and ``unknown`` when the request may have reached the leader (a
timeout, a lost connection, an error from etcd about a write).
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import httpx

from teachraft.check.history import HistoryRecorder
from teachraft.errors import KVError, OpTimeoutError

DEFAULT_TIMEOUT = 2.0


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


class EtcdError(KVError):
    """etcd answered with an error (no leader, request timed out, ...)."""


class EtcdClient:
    """One client: a name, an endpoint it prefers, and a pool of persistent connections.

    ``endpoints`` is a function returning the members' client URLs; on a
    connection error the client moves to the next one for its *next* op (as
    etcd's own clients do), never retrying the op it is reporting.
    """

    def __init__(
        self,
        name: str,
        endpoints: Any,
        recorder: HistoryRecorder | None,
        timeout: float = DEFAULT_TIMEOUT,
        start: int = 0,
    ) -> None:
        self.name = name
        self.endpoints = endpoints
        self.recorder = recorder
        self.timeout = timeout
        self._turn = itertools.count(start)
        self.endpoint = self._next_endpoint()
        # Plain HTTP on loopback: no TLS, so no certificate store to load (that
        # costs ~60 ms per client). httpx's pool scans its connections on every
        # request, so a client meant for many ops in flight is best split in several.
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        transport = httpx.AsyncHTTPTransport(verify=False, limits=limits, trust_env=False)
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport, trust_env=False)

    def _next_endpoint(self) -> str:
        urls = self.endpoints()
        return urls[next(self._turn) % len(urls)]

    async def close(self) -> None:
        await self.http.aclose()

    # -- the ops ---------------------------------------------------------------

    async def put(self, key: str, value: str, lease: int = 0) -> None:
        """Write ``value`` under ``key`` (through Raft); with a ``lease``, the key dies with it."""
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        await self._op("put", key, value, "/v3/kv/put", body)

    async def grant_lease(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds (not recorded: it is no key-value op)."""
        data = await self.call("/v3/lease/grant", {"TTL": str(ttl)})
        return int(data["ID"])

    async def get(self, key: str, serializable: bool = False) -> str | None:
        """Read ``key``: linearizable (ReadIndex through the leader) unless ``serializable``.

        A serializable read answers from the member's own store, which may be
        behind the leader: fast, and possibly stale.
        """
        body: dict[str, Any] = {"key": b64(key)}
        if serializable:
            body["serializable"] = True
        f = "get" if not serializable else "sget"
        return await self._op(f, key, None, "/v3/kv/range", body, record=not serializable)

    async def cas(self, key: str, expect: str | None, new: str) -> bool:
        """Set ``key`` to ``new`` if it holds ``expect`` (None: if it is missing)."""
        if expect is None:
            compare = {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}
        else:
            compare = {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(expect)}
        body = {
            "compare": [compare],
            "success": [{"request_put": {"key": b64(key), "value": b64(new)}}],
        }
        return await self._op("cas", key, [expect, new], "/v3/kv/txn", body)

    async def read(self, key: str) -> str | None:
        """A register read (the cas model's name for a linearizable get)."""
        body = {"key": b64(key)}
        return await self._op("read", key, None, "/v3/kv/range", body)

    async def write(self, key: str, value: str) -> None:
        """A register write (the cas model's name for a put)."""
        await self._op("write", key, value, "/v3/kv/put", {"key": b64(key), "value": b64(value)})

    async def call(self, path: str, body: dict[str, Any], endpoint: str | None = None) -> dict:
        """One raw gateway call (status, member list), recorded nowhere."""
        response = await self.http.post((endpoint or self.endpoint) + path, json=body)
        return _json(response)

    # -- recording -------------------------------------------------------------

    async def _op(
        self, f: str, key: str, value: Any, path: str, body: dict, record: bool = True
    ) -> Any:
        recorder = self.recorder if record else None
        op_id = recorder.invoke(self.name, f, key, value) if recorder is not None else None
        reads = f in ("get", "sget", "read")
        try:
            response = await self.http.post(self.endpoint + path, json=body)
            data = _json(response)
        except httpx.ConnectError as exc:  # nothing was sent: surely not applied
            self.endpoint = self._next_endpoint()
            self._close(recorder, op_id, "fail")
            raise KVError(f"{self.name}: cannot connect to etcd: {exc}") from exc
        except httpx.TimeoutException as exc:
            self.endpoint = self._next_endpoint()
            self._close(recorder, op_id, "fail" if reads else "unknown")
            raise OpTimeoutError(f"{self.name}: {f}({key}) got no answer in time") from exc
        except (httpx.HTTPError, EtcdError) as exc:
            if isinstance(exc, httpx.TransportError):
                self.endpoint = self._next_endpoint()
            self._close(recorder, op_id, "fail" if reads else "unknown")
            if isinstance(exc, EtcdError):
                raise
            raise KVError(f"{self.name}: {f}({key}) lost its connection: {exc}") from exc
        result = _result(f, data)
        if recorder is not None and op_id is not None:
            if f == "cas" and not result:  # the compare failed: surely not applied
                recorder.fail(op_id)
            else:
                recorder.ok(op_id, result if reads else None)
        return result

    @staticmethod
    def _close(recorder: HistoryRecorder | None, op_id: int | None, outcome: str) -> None:
        if recorder is None or op_id is None:
            return
        if outcome == "fail":
            recorder.fail(op_id)
        else:
            recorder.unknown(op_id)


def _json(response: httpx.Response) -> dict:
    """The gateway's answer, or the error etcd gave (e.g. "etcdserver: no leader")."""
    try:
        data = response.json()
    except ValueError as exc:
        raise EtcdError(f"etcd answered {response.status_code} with no JSON") from exc
    if response.status_code != 200 or "error" in data:
        message = data.get("message") or data.get("error") or response.reason_phrase
        raise EtcdError(f"etcd: {message}")
    return data


def _result(f: str, data: dict) -> Any:
    if f in ("get", "sget", "read"):
        kvs = data.get("kvs") or []
        return unb64(kvs[0].get("value", "")) if kvs else None
    if f == "cas":
        return bool(data.get("succeeded", False))
    return None
