"""Reading big trace files: validation and windowed loading in bounded memory.

Run with ``python -m bench.bench_trace_files --size-mb 1024``. It writes a
valid synthetic ShiViz log of that size (a causal workload of servers passing
tokens, written as the tracing server writes it), then validates it and loads
the last events of it, each in a fresh process, and reports each one's peak
RSS and time. Targets: peak RSS <= 500 MB for a multi-GB log.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from teachraft.tracing.formats import SHIVIZ_HEADER, shiviz_event
from teachraft.tracing.sinks import Record

BODY = {"ClientId": "client1", "OpId": 7, "Key": "key", "Value": "value"}


def write_synthetic_shiviz(path: Path, size_bytes: int, hosts: int = 5, seed: int = 0) -> int:
    """Write a valid single-run ShiViz log of about ``size_bytes``; return its event count.

    Each step one host records an action or receives a token another host sent
    a few steps before, so clocks grow and receives reach back in the file as
    in a real run.
    """
    rng = random.Random(seed)
    names = [f"server{i + 1}" for i in range(hosts)]
    clocks: list[dict[str, int]] = [{} for _ in names]
    sent: list[dict[str, int]] = []
    events = 0
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        written += handle.write(SHIVIZ_HEADER)
        chunk: list[str] = []
        while written < size_bytes:
            i = rng.randrange(hosts)
            clock = clocks[i]
            if sent and rng.random() < 0.3:
                for host, value in sent[rng.randrange(len(sent))].items():
                    if clock.get(host, 0) < value:
                        clock[host] = value
                tag = "ReceiveToken"
            else:
                tag = "PutRecvd"
            clock[names[i]] = clock.get(names[i], 0) + 1
            if tag == "PutRecvd" and rng.random() < 0.3:
                sent.append(dict(clock))
                del sent[:-64]
            chunk.append(shiviz_event(Record(names[i], events, tag, BODY, clock)))
            events += 1
            if len(chunk) == 4096:
                written += handle.write("".join(chunk))
                chunk = []
        handle.write("".join(chunk))
    return events


_CHILD = """
import resource, sys, time
from teachraft.tracing.validate import validate_file
from teachraft.tracing.files import load_trace
start = time.perf_counter()
if sys.argv[1] == "validate":
    report = validate_file(sys.argv[2])
    what = f"ok={report.ok} events={report.events} hosts={report.hosts}"
else:
    what = f"events={len(load_trace(sys.argv[2], last=int(sys.argv[3])))}"
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{what} seconds={elapsed:.1f} peak_rss_mb={peak:.0f}")
"""


def measure(args: list[str]) -> str:
    """Run one read in a fresh interpreter so that its peak RSS is its own."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_trace_files")
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated log")
    parser.add_argument("--last", type=int, default=5000, help="events in the loaded window")
    parser.add_argument("--dir", default=None, help="where to write the log (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "shiviz_output.log"
        start = time.perf_counter()
        events = write_synthetic_shiviz(path, args.size_mb * 1024 * 1024)
        size_mb = path.stat().st_size / 1024 / 1024
        print(
            f"generated {size_mb:,.0f} MB, {events:,} events in {time.perf_counter() - start:.0f} s"
        )
        print(f"trace validate: {measure(['validate', str(path)])} (target peak <= 500 MB)")
        print(f"load_trace(last={args.last}): {measure(['load', str(path), str(args.last)])}")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process, generating: peak RSS {base:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
