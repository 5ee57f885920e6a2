"""Addresses as teachraft writes them: ``"host:port"`` strings, e.g. ``"127.0.0.1:21001"``.

Configuration files, the coord's cluster view and traces all carry addresses
as strings; sockets want ``(host, port)`` tuples. This is the one conversion.
"""

from __future__ import annotations


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:21001"`` -> ``("127.0.0.1", 21001)``; ValueError if malformed.

    ``[::1]:21001`` gives ``("::1", 21001)``.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad address {address!r}; expected 'host:port'")
    return host.strip("[]"), int(port)


def join_address(host: str, port: int) -> str:
    """``("127.0.0.1", 21001)`` -> ``"127.0.0.1:21001"``."""
    return f"{host}:{port}"
