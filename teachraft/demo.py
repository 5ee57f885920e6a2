"""``teachraft demo``: the original's test run, on an in-process cluster over TCP.

One client runs the original's 20 put/get pairs. Right after ``Put(k13,val13)``
the leader fails; the coord notices, fences a majority, picks the most
up-to-date server, and that server appends a No-Op in term 2 before it serves
``Get(k13)``. At the end every server's log is printed in the original's
format, the trace files are written, and the exit code says whether every get
returned the value of the last put to its key.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from teachraft.cluster import Cluster
from teachraft.errors import TeachraftError

FAIL_AFTER_PUT = 13


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="teachraft demo", description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=5, help="odd, 3 to 7 (default 5)")
    p.add_argument("--pairs", type=int, default=20, help="put/get pairs (default 20)")
    p.add_argument("--out", default="teachraft-demo", help="folder for the trace files")
    p.add_argument("--no-tracing", action="store_true", help="run without tracing")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args.servers, args.pairs, Path(args.out), not args.no_tracing)
    except TeachraftError as exc:
        print(f"teachraft demo: {exc}")
        return 2


def run(servers: int, pairs: int, out: Path, tracing: bool) -> int:
    wrong = 0
    with Cluster(servers=servers, clients=1, tracing=tracing, out_dir=out) as cluster:
        print(f"{servers} servers joined; leader is server{cluster.leader()} in term 1")
        for i in range(pairs):
            key, value = f"k{i}", f"val{i}"
            cluster.put(key, value)
            if i == FAIL_AFTER_PUT:
                t0 = time.monotonic()
                old = cluster.fail_leader()
                print(f"- Fail server {old} (leader) after Put({key},{value})")
            got = cluster.get(key)
            if i == FAIL_AFTER_PUT:
                took = time.monotonic() - t0
                print(
                    f"- Coord picked server {cluster.leader()}; Get({key}) answered "
                    f"{took:.2f} s after the failure"
                )
            if got != value:
                wrong += 1
                print(f"  Get({key}) returned {got!r}, expected {value!r}  <-- WRONG")
        cluster.wait_converged()
        for sid in sorted(cluster.servers):
            if sid in cluster.failed:
                print(f"\nserver{sid}: failed")
                continue
            print(f"\nserver{sid} log:")
            for line in cluster.listing(sid):
                print(line)
        if tracing:
            cluster.flush_traces()
    if tracing:
        _report_traces(out)
    print(f"\n{pairs - wrong} of {pairs} gets returned the value of their put")
    return 1 if wrong else 0


def _report_traces(out: Path) -> None:
    from teachraft.tracing.validate import validate_shiviz

    shiviz = out / "shiviz_output.log"
    problems = validate_shiviz(shiviz.read_text(encoding="utf-8"))
    print(f"\ntrace files: {out / 'trace_output.log'} and {shiviz}")
    if problems:
        print(f"{shiviz}: {len(problems)} problems, e.g. {problems[0]}")
    else:
        print(
            f"{shiviz}: valid for ShiViz. Upload the file (do not paste it) at "
            "https://bestchai.bitbucket.io/shiviz/"
        )
