"""The cluster secret and the HMACs that prove a node knows it.

Every teachraft cluster has a secret shared by its nodes: a random one per
in-process ``Cluster`` (or, for nodes built without one, per Python process),
and the ``Secret`` key of the configs in command-line mode. Nothing secret ever
travels: a node proves it knows the secret with an HMAC-SHA256 over a fresh
nonce chosen by the verifier, so a recorded proof is useless later.

The HMAC runs only where trust is decided (the connection handshake, each UDP
heartbeat and ack, the tracing handshake), never per frame on an authenticated
TCP connection, so the hot path costs nothing more. An attacker who can make
a node dial a port it controls could relay a handshake; a cluster that must
resist that needs TLS, which is beyond a teaching tool on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

NONCE_BYTES = 16
MAC_BYTES = 16
MAX_NAME = 64
"""Longest node name accepted in a handshake (KVRaft's names are a few characters)."""

_PROCESS_SECRET = secrets.token_bytes(32)


def process_secret() -> bytes:
    """The secret of nodes built without one: random, known only to this process."""
    return _PROCESS_SECRET


def new_secret() -> bytes:
    """A fresh random cluster secret."""
    return secrets.token_bytes(32)


def as_key(secret: str | bytes | None) -> bytes:
    """The HMAC key for ``secret`` (None means this process's secret)."""
    if secret is None:
        return _PROCESS_SECRET
    if isinstance(secret, str):
        return secret.encode("utf-8")
    return bytes(secret)


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def mac(key: bytes, *parts: str | bytes | int) -> bytes:
    """HMAC-SHA256 of the parts, each length-prefixed so no two part lists collide."""
    buf = bytearray()
    for part in parts:
        if isinstance(part, int):
            data = part.to_bytes(8, "big", signed=True)
        elif isinstance(part, str):
            data = part.encode("utf-8")
        else:
            data = part
        buf += len(data).to_bytes(4, "big")
        buf += data
    return hmac.digest(key, bytes(buf), hashlib.sha256)[:MAC_BYTES]


def check(expected: bytes, got: object) -> bool:
    """Constant-time comparison of a MAC with whatever the peer sent."""
    return type(got) is bytes and hmac.compare_digest(expected, got)


def hello_proof(
    key: bytes, role: str, sender: str, receiver: str, receiver_nonce: bytes, sender_nonce: bytes
) -> bytes:
    """What ``sender`` sends to prove it knows the key, bound to both names and nonces.

    ``role`` (``"dial"`` or ``"accept"``) is the sender's side of the connection,
    so a proof made by one side can never be reflected back as the other's.
    """
    return mac(key, "teachraft-hello", role, sender, receiver, receiver_nonce, sender_nonce)


def good_name(name: object) -> bool:
    """A node name a handshake may claim: a short printable string."""
    return type(name) is str and 0 < len(name) <= MAX_NAME and name.isprintable()
