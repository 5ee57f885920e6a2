"""Reading trace files as streams: the same runs, the same verdicts, bounded memory."""

from __future__ import annotations

import random
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REFERENCE_TRACES

from bench.bench_trace_files import write_synthetic_shiviz
from teachraft.tracing.cli import main as trace_cli
from teachraft.tracing.files import (
    TraceFileError,
    load_runs,
    load_trace,
    load_trace_output,
    records_from_trace_output,
)
from teachraft.tracing.formats import SHIVIZ_HEADER
from teachraft.tracing.shiviz import (
    RunStart,
    SkippedLine,
    iter_file_lines,
    iter_shiviz,
    parse_shiviz,
    shiviz_text,
)
from teachraft.tracing.validate import stream_check, validate_file, validate_text

RUNS = sorted(p.name for p in REFERENCE_TRACES.iterdir())
NORMAL = REFERENCE_TRACES / "3Server2ClientNormalOperation"
TWO_RUNS = Path(__file__).parent / "data" / "tracing" / "two_runs_small.log"


def _streamed(text: str) -> list[tuple]:
    runs: list[tuple] = []
    for item in iter_shiviz(text.split("\n")):
        if isinstance(item, RunStart):
            runs.append((item.name, [], []))
        elif isinstance(item, SkippedLine):
            runs[-1][2].append((item.line, item.text))
        else:
            runs[-1][1].append(item)
    return runs


def _parsed(text: str) -> list[tuple]:
    return [(run.name, run.events, run.skipped) for run in parse_shiviz(text)]


def _report(report: object) -> tuple:
    return report.messages, report.events, report.hosts  # type: ignore[attr-defined]


# --- streaming parses exactly what the whole-text parser does ---------------------------


def test_streamed_runs_equal_parsed_runs_on_the_reference_logs() -> None:
    for path in [REFERENCE_TRACES / run / "shiviz_output.log" for run in RUNS] + [TWO_RUNS]:
        text = path.read_text(encoding="utf-8")
        assert _streamed(text) == _parsed(text), path


def test_streamed_runs_equal_parsed_runs_on_mangled_logs() -> None:
    """Delimiters between an event's two lines, blank runs, stray text, CR, no final newline."""
    base = TWO_RUNS.read_text(encoding="utf-8").split("\n")
    extras = ["", "  ", "garbage", "=== x ===", "=== ===", 'h {"h":1}', "h {bad", "\r"]
    rng = random.Random(7)
    for _ in range(600):
        lines = base[:2] + [rng.choice(base[2:] + extras) for _ in range(rng.randint(0, 24))]
        if rng.random() < 0.2:
            lines[1] = ""
        text = "\n".join(lines) + rng.choice(["", "\n"])
        assert _streamed(text) == _parsed(text), text


# --- the streamed validator gives the whole-text validator's report --------------------


def _mutate(lines: list[str], rng: random.Random) -> list[str]:
    lines = list(lines)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(2, len(lines))
        choice = rng.random()
        if choice < 0.3:
            del lines[i]
        elif choice < 0.6:
            j = rng.randrange(2, len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines.insert(i, rng.choice(lines[2:]))
    return lines


@pytest.mark.parametrize("name", ["shiviz_output.log", "trace_output.log"])
def test_validate_file_equals_validate_text_on_broken_logs(tmp_path: Path, name: str) -> None:
    base = (NORMAL / name).read_text(encoding="utf-8").split("\n")
    rng = random.Random(3)
    path = tmp_path / name
    for _ in range(60):
        path.write_text("\n".join(_mutate(base, rng)), encoding="utf-8")
        expected = validate_text(path.read_text(encoding="utf-8"))
        assert _report(validate_file(path)) == _report(expected)


def _small_log(*events: tuple[str, str]) -> str:
    return SHIVIZ_HEADER + "".join(f"{host} {clock}\n1 X {{}}\n" for host, clock in events)


INVALID = {
    "unknown host, value out of range": _small_log(
        ("a", '{"a":1, "zz":1}'), ("b", '{"b":1, "a":4}')
    ),
    "decreasing entry": _small_log(("b", '{"b":1}'), ("a", '{"a":1, "b":1}'), ("a", '{"a":2}')),
    "causal cycle": _small_log(("a", '{"a":1, "b":1}'), ("b", '{"b":1, "a":1}')),
    "impermissible": _small_log(("c", '{"c":1}'), ("b", '{"b":1, "c":1}'), ("a", '{"a":1, "b":1}')),
    "first time not 1": _small_log(("a", '{"a":2}')),
    "bad clock json": _small_log(("a", "{a:1}")),
    "no events": SHIVIZ_HEADER,
    "bad header": "(?<host>\n\n",
    "trace_output, bad line": '{"TracerIdentity": "a"}\n',
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_each_rule_reports_the_same_message_and_line_from_a_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / "log"
    path.write_text(INVALID[case], encoding="utf-8")
    report = validate_file(path)
    assert not report.ok
    assert stream_check(path) is None
    assert _report(report) == _report(validate_text(INVALID[case]))


def test_a_missing_own_host_names_its_line_when_streamed(tmp_path: Path) -> None:
    lines = (NORMAL / "shiviz_output.log").read_text().splitlines(keepends=True)
    i = lines.index('client1 {"client1":1}\n')
    lines[i] = 'client1 {"server1":1}\n'
    path = tmp_path / "shiviz_output.log"
    path.write_text("".join(lines))
    assert f'line {i + 1}: Local host "client1" is missing from timestamp' in (
        validate_file(path).messages
    )


def test_a_bad_run_of_several_is_named_when_streamed(tmp_path: Path) -> None:
    good = load_trace_output(NORMAL / "trace_output.log")
    records = good.to_records()
    path = tmp_path / "both.log"
    path.write_text(shiviz_text({"good": good, "bad": records[:5] + records[6:]}))
    messages = validate_file(path).messages
    assert messages and all(m.startswith('run "bad": ') for m in messages)
    assert messages == validate_text(path.read_text()).messages


@pytest.mark.parametrize("run", RUNS)
def test_the_reference_logs_are_proved_valid_by_the_stream(run: str) -> None:
    for name in ("shiviz_output.log", "trace_output.log"):
        report = stream_check(REFERENCE_TRACES / run / name)
        assert report is not None and report.ok and report.events > 200


def test_a_regex_that_spans_many_lines_falls_back_to_the_whole_text(tmp_path: Path) -> None:
    text = (NORMAL / "shiviz_output.log").read_text()
    header = r"(?<host>\S*) (?<clock>{[\s\S]*?})\n(?<event>.*)"
    path = tmp_path / "wide.log"
    path.write_text(header + text[text.index("\n") :])
    assert stream_check(path) is None
    assert _report(validate_file(path)) == _report(validate_text(path.read_text()))
    assert validate_file(path).ok


# --- big logs in bounded memory ---------------------------------------------------------

BIG_BYTES = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("big") / "shiviz_output.log"
    return path, write_synthetic_shiviz(path, BIG_BYTES)


def _peak_bytes(call: Callable[[], object]) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_big_valid_log_validates_in_bounded_memory(big_log: tuple[Path, int]) -> None:
    path, events = big_log
    report, peak = _peak_bytes(lambda: stream_check(path))
    assert report is not None and report.ok
    assert (report.events, report.hosts) == (events, 5)
    assert peak < path.stat().st_size / 4, f"peak {peak / 2**20:.1f} MB"


def test_a_window_of_a_big_log_loads_in_bounded_memory(big_log: tuple[Path, int]) -> None:
    path, events = big_log
    table, peak = _peak_bytes(lambda: load_trace(path, last=1000))
    assert len(table) == 1000  # type: ignore[arg-type]
    assert table[-1].trace_id == events - 1  # type: ignore[index]
    assert peak < path.stat().st_size / 8, f"peak {peak / 2**20:.1f} MB"


def test_cli_validates_a_big_log(big_log: tuple[Path, int], capsys: pytest.CaptureFixture) -> None:
    path, events = big_log
    assert trace_cli(["validate", str(path)]) == 0
    assert f"ok ({events} events, 5 hosts)" in capsys.readouterr().out


# --- windows ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shiviz_output.log", "trace_output.log"])
def test_windows_are_slices_of_the_whole_table(name: str) -> None:
    path = NORMAL / name
    whole = [event.to_record() for event in load_trace(path)]
    for start, stop, last in [(0, None, None), (10, 40, None), (0, None, 7), (100, 150, 20)]:
        table = load_trace(path, start=start, stop=stop, last=last)
        expected = whole[start:stop]
        expected = expected[-last:] if last else expected
        assert [event.to_record() for event in table] == expected


def test_windows_apply_to_each_run() -> None:
    whole = load_runs(TWO_RUNS)
    last = load_runs(TWO_RUNS, last=3)
    assert list(last) == list(whole)
    for name, table in whole.items():
        assert [e.to_record() for e in last[name]] == table.to_records()[-3:]


def test_a_bad_window_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="last must be a non-negative integer"):
        load_trace(NORMAL / "trace_output.log", last=-1)


def test_file_lines_split_like_the_text(tmp_path: Path) -> None:
    for text in ["", "a", "a\n", "a\r\nb\n\n", "a\rb"]:
        path = tmp_path / "f"
        path.write_bytes(text.encode())
        assert list(iter_file_lines(path)) == path.read_text().split("\n")


def test_events_older_than_the_cache_are_checked_by_a_second_pass(tmp_path: Path) -> None:
    for run in RUNS:
        for name in ("shiviz_output.log", "trace_output.log"):
            path = REFERENCE_TRACES / run / name
            assert stream_check(path, recent=1) == stream_check(path)
    # c:1 knows a:1; b:2 knows c:1 but forgets a, long after a:1 left a cache of one clock
    text = _small_log(
        ("a", '{"a":1}'),
        ("a", '{"a":2}'),
        ("c", '{"c":1, "a":1}'),
        ("c", '{"c":2, "a":1}'),
        ("b", '{"b":1}'),
        ("b", '{"b":2, "c":1}'),
    )
    path = tmp_path / "old.log"
    path.write_text(text)
    assert stream_check(path, recent=1) is None
    messages = validate_file(path).messages
    assert messages == validate_text(text).messages
    assert "impermissible vector clock" in messages[0] and messages[0].startswith("line 13:")


def test_trace_output_errors_name_the_line_as_before(tmp_path: Path) -> None:
    good = (NORMAL / "trace_output.log").read_text().splitlines()
    path = tmp_path / "trace_output.log"
    path.write_text("\n".join([*good[:3], "x\u2028", "", "{bad", *good[3:]]))
    with pytest.raises(TraceFileError) as streamed:
        load_trace_output(path)
    with pytest.raises(TraceFileError) as whole:
        records_from_trace_output(path.read_text(), str(path))
    assert str(streamed.value) == str(whole.value) and ":4: " in str(streamed.value)
    path.write_text("\n".join([*good[:3], "\u2028", "", "{bad"]))
    with pytest.raises(TraceFileError, match=":7: "):  # "\u2028\n" is two line breaks
        records_from_trace_output(path.read_text(), str(path))
    with pytest.raises(TraceFileError, match=":7: "):
        load_trace_output(path)


@pytest.mark.parametrize("name", ["shiviz_output.log", "trace_output.log"])
def test_a_log_cut_off_mid_line_is_worded_by_the_stream(tmp_path: Path, name: str) -> None:
    text = (NORMAL / name).read_text()
    path = tmp_path / name
    path.write_text(text[: text.rindex("}", 0, len(text) - 2) - 3])
    report = stream_check(path)
    assert report is not None and not report.ok
    assert _report(report) == _report(validate_text(path.read_text()))


def test_a_big_log_cut_off_mid_line_is_checked_in_bounded_memory(
    big_log: tuple[Path, int], tmp_path: Path
) -> None:
    path, events = big_log
    cut = tmp_path / "cut.log"
    shutil.copyfile(path, cut)
    with open(cut, "a", encoding="utf-8") as handle:
        handle.write('server1 {"server1":')
    report, peak = _peak_bytes(lambda: validate_file(cut))
    assert report.messages == [  # type: ignore[attr-defined]
        f"line {2 * events + 3}: does not match the parser regex; ShiViz skips it "
        "silently: 'server1 {\"server1\":'"
    ]
    assert peak < path.stat().st_size / 4, f"peak {peak / 2**20:.1f} MB"
