"""The tracing server in a process of its own, so that tracing costs the servers' loop little.

A cluster's nodes and its tracing server used to share one event loop, and so
one core: decoding every record, checking its clock, ordering it and writing
both files took about half of a traced run's time. ``TracingProcess`` runs the
same ``TracingServer`` in a child process (``python -m
teachraft.tracing.process``) and stands in for it in the cluster: the nodes'
tracers connect to the child over loopback TCP exactly as before, so every
guarantee of the tracing server holds unchanged (happened-before order in both
files, byte-exact tokens, nothing lost across a reconnect, a valid ShiViz log).

What the cluster asks of its tracing server goes over the child's stdin and
stdout, one JSON object per line:

* the child says ``{"address": ...}`` once it listens, then a status line
  (records held and written, refused input by kind) whenever it changed;
* ``{"op": "flush", "id": n}`` makes the child write its buffers to disk and
  answer with a fresh status carrying the same id (``aflush``);
* ``{"op": "close"}`` makes it drain, close both files and exit. It also exits
  when its stdin closes, so a parent that dies leaves no orphan behind.

The event table is not kept in the child. ``table`` reads the new lines of
trace_output.log when someone looks (a figure, ``cluster.events()``), so a
run that nobody draws never pays for it, into a ``BoundedEventTable``, whose
memory stays bounded on runs of any length.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from teachraft.errors import ClusterError
from teachraft.net.auth import as_key
from teachraft.tracing.bounded import BoundedEventTable
from teachraft.tracing.events import EventTable

logger = logging.getLogger(__name__)

SECRET_ENV = "TEACHRAFT_TRACING_SECRET"
"""The HMAC key (hex) reaches the child through its environment, never its command line."""
STATUS_EVERY = 0.02
"""Seconds between the child's status lines, while something changed."""
START_TIMEOUT = 30.0
CLOSE_TIMEOUT = 20.0


class TracingProcess:
    """A ``TracingServer`` in a child process, with the parts of its API a cluster uses."""

    table_reads_anywhere = True
    """``table`` may be read from any thread: it reads the file under a lock."""

    def __init__(
        self,
        output_file: str | Path,
        shiviz_output_file: str | Path,
        *,
        secret: str | bytes | None = None,
        hold_timeout: float | None = 10.0,
    ) -> None:
        self.output_file = Path(output_file)
        self.shiviz_output_file = Path(shiviz_output_file)
        self._key = as_key(secret)  # the same key in the child: None means this process's
        self._hold_timeout = hold_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._address = ""
        self._status: dict[str, Any] = {"held": 0, "written": 0, "problems": {}}
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._exit_reported = False
        self._table = BoundedEventTable(self.output_file)

    # ----------------------------------------------------------------- life cycle
    async def start(self) -> TracingProcess:
        """Start the child and wait until it listens; ClusterError says why it could not."""
        if self._proc is not None:
            raise RuntimeError("the tracing process is already started")
        env = dict(os.environ, **{SECRET_ENV: self._key.hex()})
        # the child imports the very teachraft this process runs, wherever that is
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
        args = [sys.executable, "-m", "teachraft.tracing.process", str(self.output_file)]
        args += [str(self.shiviz_output_file)]
        if self._hold_timeout is not None:
            args += ["--hold-timeout", str(self._hold_timeout)]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # the child's warnings go where this process's go
            env=env,
        )
        assert self._proc.stdout is not None
        try:
            first = await asyncio.wait_for(self._proc.stdout.readline(), START_TIMEOUT)
            self._address = json.loads(first)["address"]
        except (asyncio.TimeoutError, ValueError, KeyError, TypeError):
            await self._kill()
            raise ClusterError(
                "the tracing server process did not start (its error is printed above); "
                "start the cluster with tracing=False to run without traces"
            ) from None
        self._reader = asyncio.get_running_loop().create_task(self._read_status())
        return self

    async def close(self) -> None:
        """Drain and close the child's files, wait for it to exit (killed if it hangs)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._send({"op": "close"})
        try:
            await asyncio.wait_for(proc.wait(), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            logger.warning("the tracing server process did not exit in time; killing it")
            await self._kill()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    # ---------------------------------------------------------- what a cluster reads
    @property
    def address(self) -> str:
        return self._address

    @property
    def pid(self) -> int | None:
        """The child's process id (None before start)."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def held(self) -> int:
        """Records waiting for their causal past, as of the child's last status line."""
        return int(self._status["held"])

    @property
    def records_written(self) -> int:
        return int(self._status["written"])

    @property
    def problems(self) -> Counter[str]:
        """Refused input by kind (forged clocks, bad frames...), as the child counted it."""
        return Counter(self._status["problems"])

    @property
    def table(self) -> BoundedEventTable:
        """Every event written so far (the file's new lines are read at each look)."""
        return self._table.refresh()

    def flush(self) -> None:
        """Ask the child to write its buffers out (``aflush`` waits until it did)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._send({"op": "flush", "id": -1})

    async def aflush(self, timeout: float = 10.0) -> int:
        """Have the child write everything out; the number of records it still holds."""
        if self._proc is None or self._proc.returncode is not None:
            return 0
        self._next_id += 1
        ask = self._next_id
        answer = asyncio.get_running_loop().create_future()
        self._answers[ask] = answer
        try:
            self._send({"op": "flush", "id": ask})
            status = await asyncio.wait_for(answer, timeout)
        finally:
            self._answers.pop(ask, None)
        return int(status["held"])

    # ------------------------------------------------------------------ the pipes
    def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise ConnectionError("the tracing server process is not running")
        proc.stdin.write(json.dumps(message).encode() + b"\n")

    async def _read_status(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while line := await stdout.readline():
            try:
                status = json.loads(line)
            except ValueError:
                continue
            self._status = status
            answer = self._answers.get(status.get("id", 0))
            if answer is not None and not answer.done():
                answer.set_result(status)
        code = await self._proc.wait()
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(ClusterError("the tracing server process exited"))
        if code != 0 and not self._exit_reported:
            self._exit_reported = True
            logger.error("the tracing server process exited with code %s", code)


# --------------------------------------------------------------------- the child
async def _serve(args: argparse.Namespace) -> None:
    from teachraft.tracing.server import TracingServer

    server = TracingServer(
        "127.0.0.1:0",
        args.output_file,
        args.shiviz_output_file,
        secret=bytes.fromhex(os.environ.get(SECRET_ENV, "")),
        hold_timeout=args.hold_timeout,
        table=_NoTable(),
    )
    await server.start()
    out = sys.stdout
    out.write(json.dumps({"address": server.address}) + "\n")
    out.flush()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    reader = threading.Thread(target=_read_commands, args=(loop, commands), daemon=True)
    reader.start()
    said: tuple[Any, ...] = ()

    def status(ask: int = 0) -> tuple[Any, ...]:
        now = (server.held, server.records_written, dict(server.problems))
        line = {"held": now[0], "written": now[1], "problems": now[2]}
        if ask:
            line["id"] = ask
        out.write(json.dumps(line) + "\n")
        out.flush()
        return now

    while True:
        try:
            command = await asyncio.wait_for(commands.get(), STATUS_EVERY)
        except asyncio.TimeoutError:
            if (server.held, server.records_written, dict(server.problems)) != said:
                said = status()
            continue
        if command is None or command.get("op") == "close":
            break
        if command.get("op") == "flush":
            server.flush()
            said = status(int(command.get("id", 0)))
    await server.close()
    status()


def _read_commands(loop: asyncio.AbstractEventLoop, commands: asyncio.Queue[Any]) -> None:
    """Read stdin in a thread (portable); EOF, i.e. the parent gone, means close."""
    for line in sys.stdin:
        try:
            command = json.loads(line)
        except ValueError:
            continue
        if isinstance(command, dict):
            loop.call_soon_threadsafe(commands.put_nowait, command)
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(commands.put_nowait, None)


class _NoTable(EventTable):
    """The child keeps no event table: the parent reads the file when it needs one."""

    def extend(self, records: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m teachraft.tracing.process")
    p.add_argument("output_file", type=Path)
    p.add_argument("shiviz_output_file", type=Path)
    p.add_argument("--hold-timeout", type=float, default=10.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="tracing server: %(message)s")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
