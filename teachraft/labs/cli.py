"""``teachraft grade LAB SUBMISSION.py... [--seeds N] [--secret-seed S] [--json]``.

Grades each submission file: the file is run (it is the student's code: run
it where you would run their notebook) and the one class in it that
subclasses the lab's skeleton is graded, or the class named by ``--class``.
With ``--json`` the output is one JSON object per file (an array for several
files) for an LMS; the exit status is 0 when every submission passed, 1 when
one did not, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

from teachraft.labs.catalog import LABS, Lab
from teachraft.labs.catalog import lab as find_lab
from teachraft.labs.grader import DEFAULT_SEEDS, grade


def find_class(item: Lab, namespace: dict[str, Any], name: str | None) -> type:
    """The class a submission file defines for ``item`` (ValueError saying why not)."""
    if name is not None:
        cls = namespace.get(name)
        if not isinstance(cls, type):
            raise ValueError(f"the file defines no class named {name!r}")
        return cls
    base = item.skeleton
    found = [
        v
        for v in namespace.values()
        if isinstance(v, type)
        and issubclass(v, base)
        and v is not base
        and v.__module__ == namespace.get("__name__")
    ]
    if len(found) != 1:
        what = "no class" if not found else f"{len(found)} classes"
        raise ValueError(
            f"the file defines {what} subclassing teachraft.labs.{base.__name__}; "
            "name the one to grade with --class"
        )
    return found[0]


def grade_file(item: Lab, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Grade one file; the JSON-ready result (a file that does not load scores 0)."""
    try:
        namespace = runpy.run_path(str(path), run_name="submission")
        cls = find_class(item, namespace, args.cls)
    except Exception as exc:
        tail = "".join(traceback.format_exception(exc)[-2:]).strip()
        return {
            "submission": str(path),
            "lab": item.number,
            "lab_name": item.name,
            "score": 0.0,
            "max_score": 100,
            "passed": False,
            "checks": [],
            "violation": f"the submission could not be graded: {type(exc).__name__}: {exc}",
            "detail": tail,
        }
    result = grade(item, cls, seeds=args.seeds, secret_seed=args.secret_seed)
    out = {"submission": str(path), **result.to_json()}
    out["text"] = str(result)
    return out


def main(argv: list[str] | None = None) -> int:
    names = ", ".join(f"{n} ({x.name})" for n, x in LABS.items())
    parser = argparse.ArgumentParser(prog="teachraft grade", description=__doc__.splitlines()[0])
    parser.add_argument("lab", help=f"the lab: {names}")
    parser.add_argument("submissions", nargs="+", type=Path, help="Python files to grade")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="random schedules")
    parser.add_argument(
        "--secret-seed", type=int, default=None, help="draw the schedules from this hidden seed"
    )
    parser.add_argument("--class", dest="cls", default=None, help="the class to grade")
    parser.add_argument("--json", action="store_true", help="JSON output, for an LMS")
    args = parser.parse_args(argv)
    try:
        item = find_lab(args.lab)
    except ValueError as exc:
        print(f"teachraft grade: {exc}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("teachraft grade: --seeds must be at least 1", file=sys.stderr)
        return 2
    missing = [str(p) for p in args.submissions if not p.is_file()]
    if missing:
        print(f"teachraft grade: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    results = [grade_file(item, path, args) for path in args.submissions]
    if args.json:
        for r in results:
            r.pop("text", None)
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        for r in results:
            print(f"== {r['submission']}")
            print(r.get("text") or f"0/100 - {r['violation']}\n{r.get('detail', '')}")
    return 0 if all(r["passed"] for r in results) else 1
