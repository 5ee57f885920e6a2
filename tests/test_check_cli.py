"""``teachraft lincheck``: first line is the verdict; exit codes 0, 1, 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from teachraft import cli as top
from teachraft.check.cli import main

REFERENCE_HISTORIES = REPO / "tests" / "data" / "reference-histories"
DATA = Path(__file__).parent / "data" / "histories"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_linearizable_prints_the_verdict_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, str(DATA / "partition-ok.jsonl"))
    assert (code, lines, err) == (0, ["linearizable"], "")


def test_violation_prints_the_failed_op_and_partial_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines, _ = run(capsys, str(DATA / "stale-read.edn"))
    assert code == 1
    assert lines[0] == "not linearizable"
    text = "\n".join(lines[1:])
    assert 'op 2 by client 1: get(x) -> "1"' in text
    assert "longest partial linearization (2 ops)" in text
    assert 'put(x, "2")' in text


def test_etcd_logs_are_sniffed_as_the_etcd_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, str(REFERENCE_HISTORIES / "jepsen-etcd" / "etcd_000.log"))
    assert code == 1 and lines[0] == "not linearizable"
    assert any("read() -> 2" in line for line in lines)


def test_explain_flag_explains_a_linearizable_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, str(DATA / "timed-out-read.log"), "--explain")
    assert code == 0
    assert lines[0] == "linearizable"
    assert lines[1].startswith("linearizable: 3 ops")


def test_time_limit_gives_unknown_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    path = REFERENCE_HISTORIES / "kv" / "c50-ok.txt"
    code, lines, _ = run(capsys, str(path), "--timeout", "0")
    assert (code, lines[0]) == (2, "unknown")


def test_model_can_be_forced(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, str(DATA / "stale-read.edn"), "--model", "etcd")
    assert code == 2 and lines == []
    assert err.count("\n") == 1 and "etcd model has no operation" in err


@pytest.mark.parametrize("content", [None, "this is not a history\n", "{:process 0, :type"])
def test_missing_or_unparseable_files_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "history.txt"
    if content is not None:
        path.write_text(content)
    code, lines, err = run(capsys, str(path))
    assert code == 2
    assert lines == []
    assert err.count("\n") == 1
    assert err.startswith("teachraft lincheck: cannot read")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", "bank", "x"]) == 2
    assert main([]) == 2
    capsys.readouterr()


def test_the_teachraft_command_dispatches_to_lincheck(capsys: pytest.CaptureFixture[str]) -> None:
    assert top.main(["lincheck", str(DATA / "lost-write.jsonl")]) == 1
    assert capsys.readouterr().out.startswith("not linearizable\n")
