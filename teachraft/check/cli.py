"""``teachraft lincheck FILE``: a linearizability verdict from the command line.

The first line of output is always the verdict (``linearizable``, ``not
linearizable`` or ``unknown``) so scripts can read it; a violation is followed
by its explanation. Exit codes: 0 linearizable, 1 not linearizable, 2 unknown
or an unreadable file.
"""

from __future__ import annotations

import argparse
import sys

from teachraft.check.history import load_history
from teachraft.check.linearizability import check
from teachraft.check.models import MODELS

EXIT = {"linearizable": 0, "not linearizable": 1, "unknown": 2}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="teachraft lincheck",
        description="Check a client history (Jepsen log, Knossos EDN or teachraft JSON lines) "
        "for linearizability.",
    )
    p.add_argument("file", help="the history file")
    p.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="kv (get/put/append per key) or etcd (cas register); default: from the file",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before 'unknown'")
    p.add_argument(
        "--explain", action="store_true", help="also explain linearizable and unknown verdicts"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns the exit code."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        history = load_history(args.file)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"teachraft lincheck: cannot read {args.file}: {_reason(exc)}", file=sys.stderr)
        return 2
    try:
        result = check(history, model=args.model, timeout=args.timeout)
    except ValueError as exc:
        print(f"teachraft lincheck: {args.file}: {exc}", file=sys.stderr)
        return 2
    print(result.verdict)
    if result.verdict == "not linearizable" or args.explain:
        print(result.explain())
    return EXIT[result.verdict]


def _reason(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
