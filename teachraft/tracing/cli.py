"""``teachraft trace ...``: check trace files and merge runs into one ShiViz log.

``validate FILE...`` tells a student, before uploading to ShiViz, whether the
log will load and every event will show (exit 1 when a file is bad, 2 on a
usage error or a missing file); it streams the file, so a multi-GB log of a
long run is checked in bounded memory. ``export --out FILE NAME=PATH...`` puts
several runs (trace_output.log or ShiViz files) side by side in one ShiViz
log, e.g. the same workload with and without a fault.
"""

from __future__ import annotations

import argparse
import sys

from teachraft.tracing.events import EventTable
from teachraft.tracing.files import TraceFileError, load_runs
from teachraft.tracing.shiviz import ShivizFormatError, export_shiviz
from teachraft.tracing.validate import validate_file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teachraft trace", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check trace_output.log or ShiViz logs")
    validate.add_argument("files", nargs="+", metavar="FILE")
    export = commands.add_parser("export", help="merge runs into one multi-run ShiViz log")
    export.add_argument("--out", required=True, metavar="FILE")
    export.add_argument("runs", nargs="+", metavar="RUN_NAME=PATH")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``teachraft trace`` with ``argv``; return the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command == "validate":
        return _validate(args.files)
    return _export(args.out, args.runs)


def _validate(files: list[str]) -> int:
    status = 0
    for name in files:
        try:
            report = validate_file(name)  # streams: bounded memory for a valid log
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{name}: cannot read: {exc}", file=sys.stderr)
            return 2
        if report.ok:
            print(f"{name}: ok ({report.events} events, {report.hosts} hosts)")
            continue
        status = 1
        print(f"{name}: {len(report.messages)} problem(s)")
        for message in report.messages:
            print(f"  {message}")
    return status


def _export(out: str, specs: list[str]) -> int:
    runs: dict[str, EventTable] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            print(f"teachraft trace export: {spec!r} is not RUN_NAME=PATH", file=sys.stderr)
            return 2
        try:
            loaded = load_runs(path)
        except OSError as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            return 2
        except (TraceFileError, ShivizFormatError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 1
        for inner, table in loaded.items():
            run_name = name if len(loaded) == 1 else f"{name}/{inner}"
            if run_name in runs:
                print(
                    f"teachraft trace export: run name {run_name!r} is used twice", file=sys.stderr
                )
                return 2
            runs[run_name] = table
    export_shiviz(runs, out)
    events = sum(len(table) for table in runs.values())
    print(f"{out}: {len(runs)} runs, {events} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
