"""Loading the reference traces, the event table, the validator, multi-run export, the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import REFERENCE_TRACES

from teachraft.tracing.cli import main as trace_cli
from teachraft.tracing.events import EventTable
from teachraft.tracing.files import load_runs, load_shiviz, load_trace, load_trace_output
from teachraft.tracing.formats import SHIVIZ_HEADER
from teachraft.tracing.shiviz import export_shiviz, shiviz_text
from teachraft.tracing.validate import validate_shiviz, validate_trace_output

RUNS = sorted(p.name for p in REFERENCE_TRACES.iterdir())
NORMAL = REFERENCE_TRACES / "3Server2ClientNormalOperation"
DATA = Path(__file__).parent / "data" / "tracing"


@pytest.mark.parametrize("run", RUNS)
def test_reference_traces_load_from_both_files_alike(run: str) -> None:
    table = load_trace_output(REFERENCE_TRACES / run / "trace_output.log")
    runs = load_shiviz(REFERENCE_TRACES / run / "shiviz_output.log")
    assert list(runs) == ["shiviz_output"]
    shiviz = runs["shiviz_output"]
    assert len(table) == len(shiviz) > 200
    for a, b in zip(table, shiviz, strict=True):
        assert (a.host, a.time, a.trace_id, a.tag, a.body, a.clock) == (
            b.host,
            b.time,
            b.trace_id,
            b.tag,
            b.body,
            b.clock,
        )
    assert len(load_trace(REFERENCE_TRACES / run / "shiviz_output.log")) == len(table)
    assert len(load_trace(REFERENCE_TRACES / run / "trace_output.log")) == len(table)


@pytest.mark.parametrize("run", RUNS)
def test_validator_accepts_the_reference_logs(run: str) -> None:
    assert validate_shiviz((REFERENCE_TRACES / run / "shiviz_output.log").read_text()) == []
    assert validate_trace_output((REFERENCE_TRACES / run / "trace_output.log").read_text()) == []


def test_every_receive_is_linked_to_its_send() -> None:
    table = load_trace_output(NORMAL / "trace_output.log")
    receives = [e for e in table if e.tag == "ReceiveTokenTrace"]
    assert receives and all(e.partner is not None for e in receives)
    for event in receives:
        send = table[event.partner]
        assert send.tag == "GenerateTokenTrace"
        assert send.body["Token"] == event.body["Token"]
        assert send.partner is not None


def test_event_table_views() -> None:
    table = load_trace_output(NORMAL / "trace_output.log")
    hosts = table.hosts()
    counts = [len(table.by_host(h)) for h in hosts]
    assert counts == sorted(counts, reverse=True) and sum(counts) == len(table)
    assert [e.time for e in table.by_host("coord")] == list(
        range(1, counts[hosts.index("coord")] + 1)
    )
    assert table.tags()[0] == "CreateTrace" and "PutRecvd" in table.tags()
    assert table.find("server1", 1) is not None and table.find("server1", 10_000) is None
    only = table.filter(hosts=["client1"], tags=["Put"])
    assert only and all(e.host == "client1" and e.tag == "Put" for e in only)
    assert table.filter(trace_ids=[table[0].trace_id])[0] is table[0]


def test_causal_path_of_one_put() -> None:
    table = load_trace_output(NORMAL / "trace_output.log")
    put = next(e for e in table if e.tag == "Put")
    path = [table[i] for i in table.causal_path(put.trace_id)]
    tags = [e.tag for e in path]
    assert tags.index("Put") < tags.index("PutRecvd") < tags.index("PutCommitted")
    assert tags[-1] == "PutResultRecvd"
    assert {e.host for e in path} == {put.host, "server1"}


def test_round_trip_through_records() -> None:
    table = load_trace_output(NORMAL / "trace_output.log")
    again = EventTable(table.to_records())
    assert [(e.host, e.time, e.partner) for e in again] == [
        (e.host, e.time, e.partner) for e in table
    ]
    assert table[3].body_json == '{"Token":"p2NsaWVudDLPZrkuXcEoTO6Bp2NsaWVudDIC"}'


def test_loading_the_largest_reference_trace_is_quick() -> None:
    largest = max(REFERENCE_TRACES.glob("*/trace_output.log"), key=lambda p: p.stat().st_size)
    start = time.perf_counter()
    load_trace_output(largest)
    load_shiviz(largest.with_name("shiviz_output.log"))
    # a generous bound for a loaded CI machine; bench/bench_tracing.py measures the real time
    assert time.perf_counter() - start < 10


# --- the validator rejects what ShiViz rejects --------------------------------------


def _reference_lines() -> list[str]:
    return (NORMAL / "shiviz_output.log").read_text().splitlines(keepends=True)


def _event_line(lines: list[str], host: str, own_time: int) -> int:
    """Index of the clock line of host's event with that own time."""
    for i in range(2, len(lines), 2):
        host_part, _, clock = lines[i].partition(" ")
        if host_part == host and json.loads(clock)[host] == own_time:
            return i
    raise AssertionError(f"no event {host}:{own_time}")


def _validate_copy(tmp_path: Path, lines: list[str]) -> list[str]:
    copy = tmp_path / "shiviz_output.log"
    copy.write_text("".join(lines))
    return validate_shiviz(copy.read_text())


def test_a_dropped_event_is_rejected(tmp_path: Path) -> None:
    lines = _reference_lines()
    i = _event_line(lines, "server2", 5)
    del lines[i : i + 2]
    messages = _validate_copy(tmp_path, lines)
    assert any(
        "Clock values for a host must increase monotonically by 1." in m
        and '"server2" goes from 4 to 6' in m
        for m in messages
    ), messages


def test_a_duplicated_own_time_is_rejected(tmp_path: Path) -> None:
    lines = _reference_lines()
    i = _event_line(lines, "coord", 7)
    lines[i + 2 : i + 2] = lines[i : i + 2]
    messages = _validate_copy(tmp_path, lines)
    assert any(
        "must increase monotonically by 1" in m and '"coord" goes from 7 to 7' in m
        for m in messages
    ), messages


def test_a_missing_own_host_is_rejected(tmp_path: Path) -> None:
    lines = _reference_lines()
    i = _event_line(lines, "client1", 1)
    assert lines[i] == 'client1 {"client1":1}\n'
    lines[i] = 'client1 {"server1":1}\n'
    messages = _validate_copy(tmp_path, lines)
    assert f'line {i + 1}: Local host "client1" is missing from timestamp' in messages


def test_a_line_shiviz_would_skip_is_reported(tmp_path: Path) -> None:
    lines = _reference_lines()
    i = _event_line(lines, "server3", 2)
    lines[i] = lines[i].replace("}", "")
    messages = _validate_copy(tmp_path, lines)
    assert any(m.startswith(f"line {i + 1}: does not match the parser regex") for m in messages)


def test_the_first_event_must_be_1(tmp_path: Path) -> None:
    lines = _reference_lines()
    i = _event_line(lines, "client1", 1)
    del lines[i : i + 2]
    messages = _validate_copy(tmp_path, lines)
    assert any("must start at 1" in m and '"client1" is 2' in m for m in messages), messages


def _small_log(*events: tuple[str, str]) -> str:
    return SHIVIZ_HEADER + "".join(f"{host} {clock}\n1 X {{}}\n" for host, clock in events)


def test_unknown_hosts_and_out_of_range_values() -> None:
    messages = validate_shiviz(_small_log(("a", '{"a":1, "zz":1}'), ("b", '{"b":1, "a":4}')))
    assert any('unrecognized host "zz"' in m for m in messages)
    assert any('invalid clock value 4 for host "a"' in m for m in messages)


def test_teachraft_rules_decreasing_entries_and_cycles() -> None:
    decreasing = _small_log(("b", '{"b":1}'), ("a", '{"a":1, "b":1}'), ("a", '{"a":2}'))
    assert any('the entry for "b" decreases from 1 to 0' in m for m in validate_shiviz(decreasing))
    cycle = _small_log(("a", '{"a":1, "b":1}'), ("b", '{"b":1, "a":1}'))
    assert any("causal cycle" in m for m in validate_shiviz(cycle))
    assert validate_shiviz(_small_log(("a", '{"a":1}'), ("b", '{"b":1, "a":1}'))) == []


def test_bad_clock_json_and_empty_logs() -> None:
    assert any("invalid vector clock" in m for m in validate_shiviz(_small_log(("a", "{a:1}"))))
    assert validate_shiviz(SHIVIZ_HEADER) == ["no events: ShiViz would show an empty diagram"]


# --- several runs in one file ---------------------------------------------------------


def test_multi_run_export_validates_and_loads_back(tmp_path: Path) -> None:
    runs = {
        run: load_trace_output(REFERENCE_TRACES / run / "trace_output.log")
        for run in ("3Server2ClientNormalOperation", "3Server2ClientLeaderFailure")
    }
    path = export_shiviz(runs, tmp_path / "both.log")
    text = path.read_text()
    assert text.splitlines()[:3] == [
        "(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)",
        "=== (?<trace>.*) ===",
        "=== 3Server2ClientNormalOperation ===",
    ]
    assert validate_shiviz(text) == []
    loaded = load_shiviz(path)
    assert list(loaded) == list(runs)
    for name, table in runs.items():
        assert [(e.host, e.time, e.tag, e.body) for e in loaded[name]] == [
            (e.host, e.time, e.tag, e.body) for e in table
        ]


def test_multi_run_errors_name_the_run() -> None:
    good = load_trace_output(NORMAL / "trace_output.log")
    bad = EventTable(good.to_records()[:5] + good.to_records()[6:])
    text = shiviz_text({"good": good, "bad": bad})
    messages = validate_shiviz(text)
    assert messages and all(m.startswith('run "bad": ') for m in messages)


def test_run_names_must_be_single_lines() -> None:
    with pytest.raises(ValueError):
        shiviz_text({"a\nb": EventTable()})


def test_single_run_export_matches_the_server_format(tmp_path: Path) -> None:
    table = load_trace_output(NORMAL / "trace_output.log")
    text = export_shiviz(table, tmp_path / "one.log").read_text()
    assert text.startswith(SHIVIZ_HEADER)
    assert validate_shiviz(text) == []
    assert load_runs(tmp_path / "one.log")["one"][5].clock == table[5].clock


# --- the command line ------------------------------------------------------------------


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = NORMAL / "shiviz_output.log"
    assert trace_cli(["validate", str(good), str(NORMAL / "trace_output.log")]) == 0
    out = capsys.readouterr().out
    assert f"{good}: ok (290 events, 6 hosts)" in out
    bad = tmp_path / "bad.log"
    lines = _reference_lines()
    bad.write_text("".join(lines[:10] + lines[12:]))
    assert trace_cli(["validate", str(bad)]) == 1
    assert "must increase monotonically by 1" in capsys.readouterr().out
    assert trace_cli(["validate", str(tmp_path / "missing.log")]) == 2
    assert trace_cli(["validate"]) == 2


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "merged.log"
    args = [
        "export",
        "--out",
        str(out),
        f"normal={NORMAL / 'trace_output.log'}",
        f"leader={REFERENCE_TRACES / '3Server2ClientLeaderFailure' / 'shiviz_output.log'}",
    ]
    assert trace_cli(args) == 0
    assert list(load_shiviz(out)) == ["normal", "leader"]
    assert trace_cli(["validate", str(out)]) == 0
    assert trace_cli(["export", "--out", str(out), "no-equals-sign"]) == 2
    assert trace_cli(["export", "--out", str(out), f"x={tmp_path / 'nope.log'}"]) == 2
    capsys.readouterr()


def test_committed_sample_data_validates() -> None:
    samples = sorted(DATA.glob("*.log"))
    assert samples
    for sample in samples:
        assert validate_shiviz(sample.read_text()) == [], sample
