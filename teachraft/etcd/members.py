"""etcd member processes: finding the binary, their flags, and killing them by PID.

Each member is one ``etcd`` process on 127.0.0.1 with its own data folder. Its
peers reach it through a proxy (:mod:`teachraft.etcd.proxy`), so the peer URL
it advertises is the proxy's, while it listens on a port of its own.

Every PID started is kept in one module-wide set until the process is reaped,
and killed on ``close()``, at interpreter exit, and (on Linux) by the kernel
when the Python process itself dies (``PR_SET_PDEATHSIG``), so no member
outlives the lesson that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from teachraft.errors import ClusterError

INSTALL_HINT = (
    "etcd is not installed: install Debian's etcd-server package "
    "(sudo apt-get install etcd-server), or set TEACHRAFT_ETCD to an etcd 3.4+ binary"
)
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()


class EtcdNotInstalled(ClusterError):
    """No etcd binary was found; the message names the package to install."""


def etcd_binary() -> str:
    """The etcd binary to run: ``$TEACHRAFT_ETCD``, else ``etcd`` on PATH."""
    explicit = os.environ.get("TEACHRAFT_ETCD")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise EtcdNotInstalled(
                f"TEACHRAFT_ETCD={explicit} is not an executable; {INSTALL_HINT}"
            )
        return explicit
    found = shutil.which("etcd") or next(
        (p for p in ("/usr/bin/etcd", "/usr/local/bin/etcd") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise EtcdNotInstalled(INSTALL_HINT)
    return found


def etcd_available() -> bool:
    """True when an etcd binary can be run (notebooks and tests use this to skip)."""
    try:
        etcd_binary()
    except EtcdNotInstalled:
        return False
    return True


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def member_id(peer_urls: list[str], token: str) -> int:
    """The id etcd derives for a member of a new cluster: SHA-1 of its peer URLs and token.

    Knowing it before start lets the proxies name the sender of every peer
    connection from its ``X-Server-From`` header from the first message on.
    """
    digest = hashlib.sha1(("".join(sorted(peer_urls)) + token).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class Member:
    """One etcd member: its ports, data folder and (while running) its process."""

    sid: int
    client_port: int
    peer_port: int
    proxy_port: int
    data_dir: Path
    token: str
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False
    args: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"server{self.sid}"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        """What the other members dial: the proxy in front of this member."""
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def id(self) -> int:
        return member_id([self.peer_url], self.token)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"


def member_args(
    binary: str,
    member: Member,
    everyone: list[Member],
    fsync: bool,
    heartbeat_ms: int,
    election_ms: int,
) -> list[str]:
    """The command line of one member of a new (or restarted) cluster."""
    initial = ",".join(f"{m.name}={m.peer_url}" for m in everyone)
    args = [
        binary,
        f"--name={member.name}",
        f"--data-dir={member.data_dir}",
        f"--listen-client-urls={member.client_url}",
        f"--advertise-client-urls={member.client_url}",
        f"--listen-peer-urls=http://127.0.0.1:{member.peer_port}",
        f"--initial-advertise-peer-urls={member.peer_url}",
        f"--initial-cluster={initial}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={member.token}",
        f"--heartbeat-interval={heartbeat_ms}",
        f"--election-timeout={election_ms}",
        "--logger=zap",
        "--log-outputs=stderr",
    ]
    if not fsync:
        args.append("--unsafe-no-fsync")
    return args


def spawn(member: Member) -> None:
    """Start the member's process, its output going to its log file."""
    member.data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(member.log_path, "ab") as out:
        member.process = subprocess.Popen(
            member.args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in a terminal or notebook is not sent to etcd
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    member.paused = False
    with _LIVE_LOCK:
        _LIVE.add(member.process.pid)


def kill(member: Member) -> None:
    """SIGKILL the member's process by its PID and reap it."""
    process = member.process
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with _LIVE_LOCK:
        _LIVE.discard(process.pid)
    member.paused = False


def signal_member(member: Member, sig: signal.Signals) -> None:
    """Send SIGSTOP or SIGCONT to a running member."""
    if not member.running or member.process is None:
        raise ClusterError(f"{member.name} is not running")
    os.kill(member.process.pid, sig)
    member.paused = sig == signal.SIGSTOP


def log_tail(member: Member, lines: int = 12) -> str:
    """The last lines of a member's log, for error messages."""
    try:
        text = member.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def live_pids() -> set[int]:
    """PIDs of every etcd member this Python process started and has not reaped."""
    with _LIVE_LOCK:
        return set(_LIVE)


def _die_with_parent() -> None:
    """In the child: have the kernel SIGKILL it if the Python process dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@atexit.register
def _kill_leftovers() -> None:
    for pid in live_pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
