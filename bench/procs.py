"""Child processes of the suite: free ports, JSON-lines conversations, stopping by PID.

Every benchmark process the suite starts is a ``Child``: it is spawned with
its own stdin/stdout pipes, answers one JSON object per line, and is stopped
by its own PID (SIGTERM, then SIGKILL after a bounded wait), never by name.
A reader thread per child turns its stdout into a queue, so every wait for an
answer is bounded in time even when the child hangs or dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_listening(address: str, timeout: float) -> None:
    """Wait until something accepts TCP connections at ``host:port`` (bounded)."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens at {address} after {timeout:.0f} s") from None
            time.sleep(0.02)


def rss_mb(pid: int | None = None) -> dict[str, float]:
    """Resident set size now and at its peak, in MB, of ``pid`` (default: this process)."""
    path = Path(f"/proc/{pid or 'self'}/status")
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out["rss_mb" if name == "VmRSS" else "peak_mb"] = int(value.split()[0]) / 1024
    if not out and pid is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = {"rss_mb": peak, "peak_mb": peak}
    return out


class ChildError(RuntimeError):
    """A child process died, answered with an error, or did not answer in time."""


class Child:
    """One child process spoken to in JSON lines over its stdin/stdout."""

    def __init__(self, name: str, args: list[str], log_dir: Path, talk: bool = True) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.txt"
        self._log: IO[str] = self.log_path.open("w")
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            stdin=subprocess.PIPE if talk else subprocess.DEVNULL,
            stdout=subprocess.PIPE if talk else self._log,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        self.lines: queue.Queue[str | None] = queue.Queue()
        if talk:
            threading.Thread(target=self._read, name=f"read-{name}", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, message: dict[str, Any]) -> None:
        if self.proc.stdin is None or self.proc.poll() is not None:
            raise ChildError(f"{self.name} has exited ({self._tail()})")
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise ChildError(f"{self.name}: cannot write: {exc}") from None

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next JSON object the child printed; other lines are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildError(f"{self.name} did not answer within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise ChildError(f"{self.name} exited ({self._tail()})")
            if line.startswith("{"):
                data = json.loads(line)
                if "error" in data and len(data) == 1:
                    raise ChildError(f"{self.name}: {data['error']}")
                return data

    def ask(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(message)
        return self.receive(timeout)

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text().strip().splitlines()
            if lines:
                return lines[-1][:300]
        return f"exit code {self.proc.poll()}"

    def kill(self) -> None:
        """SIGKILL this child by its PID (a crash, for the leader-kill figure)."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait (bounded), then SIGKILL; always by this child's PID."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()


def stop_all(children: list[Child], timeout: float = 15.0) -> None:
    """Stop children in reverse start order (clients before servers before the coord)."""
    for child in reversed(children):
        try:
            child.stop(timeout)
        except Exception as exc:  # keep stopping the others
            log.warning("stopping %s failed: %s", child.name, exc)


def reply(data: dict[str, Any]) -> None:
    """Print one answer line of a child process (its protocol with the suite)."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
