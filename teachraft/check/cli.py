"""``teachraft lincheck FILE``: a linearizability verdict from the command line.

The first line of output is always the verdict (``linearizable``, ``not
linearizable`` or ``unknown``) so scripts can read it; a violation is followed
by its explanation. Exit codes: 0 linearizable, 1 not linearizable, 2 unknown
or an unreadable file.

``--model`` names the sequential specification (see
:mod:`teachraft.check.models`) and ``--init`` its starting value as EDN, the
way Knossos names them: ``--model cas-register --init 0``,
``--model multi-register --init '{:x 0 :y 0}'``. ``--html OUT.html`` also
writes a self-contained report (figure, verdict, explanation) to share.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from teachraft.check import edn
from teachraft.check.formats import plain
from teachraft.check.history import load_history
from teachraft.check.linearizability import check
from teachraft.check.models import MODELS, UNSET

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
        help="the sequential specification; default: from the file (Jepsen etcd logs: etcd, "
        "Jepsen/Knossos register ops: cas-register, get/put/append: kv)",
    )
    p.add_argument(
        "--init",
        default=None,
        metavar="EDN",
        help="the model's initial value as EDN, e.g. 0, nil, '{:x 0 :y 0}', '#{}'",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before 'unknown'")
    p.add_argument(
        "--explain", action="store_true", help="also explain linearizable and unknown verdicts"
    )
    p.add_argument("--html", default=None, metavar="OUT.html", help="write a self-contained report")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns the exit code."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        initial = UNSET if args.init is None else parse_init(args.init)
    except ValueError as exc:
        print(f"teachraft lincheck: --init {args.init!r}: {exc}", file=sys.stderr)
        return 2
    try:
        history = load_history(args.file)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"teachraft lincheck: cannot read {args.file}: {_reason(exc)}", file=sys.stderr)
        return 2
    try:
        result = check(history, model=args.model, timeout=args.timeout, initial=initial)
    except ValueError as exc:
        print(f"teachraft lincheck: {args.file}: {exc}", file=sys.stderr)
        return 2
    print(result.verdict)
    if result.verdict != "linearizable" or args.explain:
        print(result.explain())
    elif result.skipped:
        print(result.skipped_note())
    if args.html is not None and not _write_html(args.html, args.file, history, result):
        return 2
    return EXIT[result.verdict]


def parse_init(text: str) -> Any:
    """One EDN value, as plain Python (keywords become strings)."""
    try:
        forms = edn.loads_all(text)
    except edn.EdnError as exc:
        raise ValueError(f"not EDN: {exc}") from None
    if len(forms) != 1:
        raise ValueError("give exactly one EDN value")
    return plain(forms[0])


def _write_html(out: str, name: str, history: Any, result: Any) -> bool:
    from teachraft.check.report import write_html

    try:
        write_html(out, history, result, title=name)
    except OSError as exc:
        print(f"teachraft lincheck: cannot write {out}: {_reason(exc)}", file=sys.stderr)
        return False
    return True


def _reason(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
