"""The ``teachraft`` command line: one entry point, one subcommand per job.

Each subcommand lives in the module that owns its idea and exposes
``main(argv) -> int``; this file only dispatches, importing lazily so that
``teachraft trace validate`` does not pay for plotly or the cluster.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("teachraft.demo", "run a 5-server cluster, fail the leader mid-workload, print logs"),
    "tracing-server": (
        "teachraft.nodes",
        "run the tracing server (config/tracing_server_config.json)",
    ),
    "coord": ("teachraft.nodes", "run the coord (config/coord_config.json)"),
    "server": ("teachraft.nodes", "run server ID (config/server_config{ID}.json)"),
    "client": ("teachraft.nodes", "run client ID (config/client_config{ID}.json)"),
    "trace": ("teachraft.tracing.cli", "trace tools: validate FILE, export"),
    "lincheck": ("teachraft.check.cli", "check a history for linearizability"),
    "chaos": ("teachraft.chaos", "a seeded chaos run with a linearizability verdict"),
    "grade": ("teachraft.labs.cli", "grade a lab submission: grade LAB FILE.py [--json]"),
    "bench": ("bench.__main__", "the benchmark suite"),
}


def usage() -> str:
    lines = ["usage: teachraft COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<15} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def _bench_importable() -> bool:
    """The benchmark suite lives beside the package in a checkout, not in the wheel."""
    root = Path(__file__).resolve().parents[1]
    if (root / "bench" / "__main__.py").exists():
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return True
    return importlib.util.find_spec("bench") is not None


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``teachraft COMMAND ARGS`` to the owning module's ``main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"teachraft: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if name == "bench" and not _bench_importable():
        print(
            "teachraft bench runs from a source checkout: cd into it and run `python -m bench`",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    if SUBCOMMANDS[name][0] == "teachraft.nodes":
        return int(module.main([name, *rest]) or 0)
    return int(module.main(rest) or 0)
