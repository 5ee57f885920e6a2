"""Jepsen input conventions, the violation's window, "unknown" with progress, the HTML report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import REPO

from teachraft.check import History, Op, check, load_history
from teachraft.check.cli import main

KNOSSOS = REPO / "tests" / "data" / "reference-histories" / "knossos"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "history.edn"
    path.write_text(text)
    return path


def test_nemesis_events_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """[{:process :nemesis, :type :info, :f :start, :value nil}
            {:process 0, :type :invoke, :f :write, :value 1}
            {:process :nemesis, :type :info, :f :start, :value [:isolated {"n1" #{"n2"}}]}
            {:process 0, :type :ok, :f :write, :value 1}
            {:process 1, :type :invoke, :f :read, :value nil}
            {:process 1, :type :ok, :f :read, :value 1}
            {:process :nemesis, :type :info, :f :stop, :value nil}]""",
    )
    history = load_history(path)
    assert len(history) == 2 and history.skipped == {"nemesis": 3}
    assert main([str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "linearizable",
        "skipped 3 events of non-client processes (3 of nemesis): they are not operations",
    ]


def test_a_knossos_history_with_nemesis_events_reads(capsys: pytest.CaptureFixture[str]) -> None:
    path = KNOSSOS / "cas-register" / "bad" / "cas-failure.edn"
    assert load_history(path).skipped == {"nemesis": 8}


def test_a_completion_with_no_invoke_names_the_event(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """{:process 0, :type :invoke, :f :read, :value nil}
           {:process 0, :type :ok, :f :read, :value 1}
           {:process 3, :type :ok, :f :write, :value 2}""",
    )
    with pytest.raises(ValueError) as err:
        load_history(path)
    text = str(err.value)
    assert text.startswith("event 2 {:process 3, :type :ok, :f :write, :value 2}:")
    assert "process 3 completes write (:ok) but has no matching :invoke" in text


def test_an_invoke_never_completed_is_unknown(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """{:process 0, :type :invoke, :f :write, :value 1}
           {:process 1, :type :invoke, :f :read, :value nil}
           {:process 1, :type :ok, :f :read, :value 1}""",
    )
    history = load_history(path)
    assert history.ops[0].outcome == "unknown" and math.isinf(history.ops[0].ret)
    assert check(history).ok  # the write may have happened before the read


def test_time_fields_drive_real_time_order(tmp_path: Path) -> None:
    """In file order the read comes after the write completes; by :time it is before it."""
    path = write(
        tmp_path,
        """{:process 0, :type :invoke, :f :write, :value 1, :time 3000000}
           {:process 0, :type :ok, :f :write, :value 1, :time 4000000}
           {:process 1, :type :invoke, :f :read, :value nil, :time 1000000}
           {:process 1, :type :ok, :f :read, :value 0, :time 2000000}""",
    )
    history = load_history(path)
    assert [op.call for op in history.ops] == [0.003, 0.001]
    assert history.clock == "seconds" and history.origin == 0.0
    assert check(history, "cas-register", initial=0).ok
    r = check(history, "cas-register", initial=1)  # read 0 before any write of 0
    assert r.verdict == "not linearizable"
    assert "[called 1.00 ms, returned 2.00 ms]" in r.explain()


def test_jepsen_fail_means_did_not_happen_by_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """{:process 0, :type :invoke, :f :write, :value 4}
           {:process 0, :type :ok, :f :write, :value 4}
           {:process 1, :type :invoke, :f :cas, :value [4 4]}
           {:process 1, :type :fail, :f :cas, :value [4 4]}""",
    )
    assert main([str(path)]) == 0  # Jepsen's reading: cas-register
    assert main([str(path), "--model", "etcd"]) == 1  # the etcd register's reading


def test_init_must_be_edn(capsys: pytest.CaptureFixture[str]) -> None:
    path = KNOSSOS / "cas-register" / "bad" / "immediate-failure.edn"
    assert main([str(path), "--init", "{:x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("teachraft lincheck: --init '{:x': not EDN")


# --- the violation's window and explanation ---------------------------------------------------


def _op(
    id: int, client: str, f: str, value: object, call: float, ret: float, out: object = None
) -> Op:
    return Op(id, client, f, "x", value, out, call, ret, "ok")


def long_history_with_a_stale_read() -> History:
    """500 sequential puts, then a read concurrent with one put that sees an older value."""
    ops = [_op(i, "a", "put", str(i), i * 0.01, i * 0.01 + 0.005) for i in range(500)]
    ops.append(_op(500, "a", "put", "new", 5.0, 5.2))
    ops.append(_op(501, "b", "get", None, 5.1, 5.3, out="7"))
    return History(ops, origin=0.0)


def test_the_window_is_a_handful_of_ops_around_the_failure() -> None:
    r = check(long_history_with_a_stale_read(), "kv")
    assert r.verdict == "not linearizable" and r.failed_op is not None
    assert r.failed_op.id == 501
    assert [op.id for op in r.window()] == [499, 500, 501]
    text = r.explain()
    assert (
        "the window of concurrent ops (3), from 4990.00 ms to op 501's return at 5300.00 ms" in text
    )
    assert "every partial linearization was left in one of these states:" in text
    assert 'a get must return the key\'s value, "new", not "7"' in text
    assert 'one of these states: "new"\n' in text  # put 500 returned first: it must be placed
    assert "earlier ops" in text and len(text.splitlines()) < 30


def test_unknown_says_how_far_the_search_got() -> None:
    ops = [Op(i, f"w{i}", "put", "h", str(i), None, 0, 100 + i, "ok") for i in range(22)]
    ops.append(Op(22, "r", "get", "h", None, "never written", 200, 201, "ok"))
    r = check(History(ops), "kv", timeout=0.3)
    assert r.verdict == "unknown" and r.progress is not None
    assert 0 < r.progress.linearized <= r.progress.total == 23 and r.progress.steps > 0
    text = r.explain()
    assert text.startswith("unknown: the search did not finish within the time limit (0.3 s)")
    assert "0 of 1 key(s) decided" in text and "of the 23 ops that must be placed" in text


# --- the HTML report ----------------------------------------------------------------------------


def test_html_report_is_self_contained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    path = KNOSSOS / "cas-register" / "bad" / "cas-failure.edn"
    assert main([str(path), "--model", "cas-register", "--init", "0", "--html", str(out)]) == 1
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "not linearizable" in page and "cannot be linearized" in page
    assert "plotly" in page and "<script src=" not in page  # plotly.js inlined, nothing fetched
    assert "the failure&#x27;s window" in page or "the failure's window" in page


def test_html_to_an_unwritable_place_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = KNOSSOS / "cas-register" / "bad" / "immediate-failure.edn"
    assert main([str(path), "--html", str(tmp_path / "no" / "such" / "r.html")]) == 2
    assert "cannot write" in capsys.readouterr().err


# --- the Knossos history shipped with the package -------------------------------------------------


def test_the_shipped_knossos_history_is_the_reference_file_and_checks_as_knossos_says() -> None:
    from teachraft.data.histories import history_path, knossos_history

    reference = KNOSSOS / "cas-register" / "bad" / "cas-failure.edn"
    assert history_path().read_bytes() == reference.read_bytes()
    history, model, initial = knossos_history()
    assert (model, initial) == ("cas-register", 0)
    result = check(history, model, initial=initial)
    assert result.verdict == "not linearizable"
    assert history.skipped == {"nemesis": 8}
    with pytest.raises(ValueError, match="no shipped history 'nope'"):
        knossos_history("nope")


def test_nemesis_lines_of_a_jepsen_log_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "etcd.log"
    path.write_text(
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\n"
        "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n"
        "INFO  jepsen.util - 0\t:ok\t:write\t1\n"
        "INFO  jepsen.util - :nemesis\t:info\t:start\t[:isolated n1]\n"
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n"
        "INFO  jepsen.util - 1\t:ok\t:read\t1\n"
    )
    history = load_history(path)
    assert len(history) == 2 and history.skipped == {"nemesis": 2}
    assert check(history).ok


def test_a_jepsen_log_completion_with_no_invoke_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "etcd.log"
    path.write_text(
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 4\t:ok\t:read\t1\n"
    )
    with pytest.raises(
        ValueError, match=r"^line 2 \('INFO  jepsen.util - 4\\t:ok\\t:read\\t1'\): "
    ):
        load_history(path)


def test_time_on_some_events_only_is_an_error_naming_the_event(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """{:process 0, :type :invoke, :f :write, :value 1, :time 1000}
           {:process 0, :type :ok, :f :write, :value 1}""",
    )
    with pytest.raises(ValueError, match=r"^event 1 \{:process 0.*has no :time, but other"):
        load_history(path)


def test_a_queue_history_asks_for_its_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """{:process 0, :type :invoke, :f :enqueue, :value 1}
           {:process 0, :type :ok, :f :enqueue, :value 1}
           {:process 1, :type :invoke, :f :dequeue, :value nil}
           {:process 1, :type :ok, :f :dequeue, :value 1}""",
    )
    assert main([str(path)]) == 2
    assert "name the model (unordered-queue or fifo-queue)" in capsys.readouterr().err
    assert main([str(path), "--model", "fifo-queue"]) == 0


def test_tagged_ops_and_exception_symbols_of_newer_jepsen_histories_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """#jepsen.history.Op{:index 0, :time 10, :type :invoke, :process 0, :f :write, :value 3}
           #jepsen.history.Op{:index 1, :time 20, :type :info, :process 0, :f :write, :value 3,
             :error #error {:cause "timeout", :via [{:type java.net.SocketTimeoutException}]}}
           #jepsen.history.Op{:index 2, :time 30, :type :invoke, :process 1, :f :read, :value nil}
           #jepsen.history.Op{:index 3, :time 40, :type :ok, :process 1, :f :read, :value 3}""",
    )
    history = load_history(path)
    assert [op.outcome for op in history.ops] == ["unknown", "ok"]
    assert check(history, "cas-register", initial=0).ok
