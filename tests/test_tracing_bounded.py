"""BoundedEventTable answers every EventTable query like the full table, in bounded memory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from teachraft.data import go_trace, go_trace_names
from teachraft.tracing.bounded import BoundedEventTable
from teachraft.tracing.files import load_trace_output


def _key(event) -> tuple:
    return (
        event.index,
        event.host,
        event.time,
        event.clock,
        event.trace_id,
        event.tag,
        event.body,
        event.partner,
    )


@pytest.mark.parametrize("name", go_trace_names())
@pytest.mark.parametrize("window", [1, 40, 100_000])
def test_every_query_matches_the_full_table(name: str, window: int) -> None:
    path = go_trace(name) / "trace_output.log"
    full = load_trace_output(path)
    bounded = BoundedEventTable(path, window=window, cache=8).refresh()
    assert len(bounded) == len(full)
    assert [_key(e) for e in bounded] == [_key(e) for e in full]
    assert [_key(bounded[i]) for i in range(len(full))] == [_key(e) for e in full]
    assert [_key(e) for e in bounded[5:60:3]] == [_key(e) for e in full[5:60:3]]
    assert _key(bounded[-1]) == _key(full[-1])
    assert bounded.hosts() == full.hosts()
    assert bounded.tags() == full.tags()
    assert bounded.trace_ids() == full.trace_ids()
    for host in full.hosts():
        assert [_key(e) for e in bounded.by_host(host)] == [_key(e) for e in full.by_host(host)]
        last = full.by_host(host)[-1].time
        assert _key(bounded.find(host, last)) == _key(full.find(host, last))
        assert bounded.find(host, last + 1) is None
    for trace_id in full.trace_ids()[:20]:
        assert bounded.causal_path(trace_id) == full.causal_path(trace_id)
        got = bounded.filter(hosts=full.hosts()[:2], tags=full.tags()[:4], trace_ids=[trace_id])
        want = full.filter(hosts=full.hosts()[:2], tags=full.tags()[:4], trace_ids=[trace_id])
        assert [_key(e) for e in got] == [_key(e) for e in want]
    assert [r for r in bounded.to_records()] == full.to_records()


def test_it_follows_a_growing_file_and_keeps_only_its_window(tmp_path: Path) -> None:
    source = (go_trace("3Server2ClientLeaderFailure") / "trace_output.log").read_bytes()
    lines = source.splitlines(keepends=True)
    path = tmp_path / "trace_output.log"
    table = BoundedEventTable(path, window=10, cache=4)
    assert len(table.refresh()) == 0  # no file yet
    path.write_bytes(b"".join(lines[:30]) + lines[30][:7])  # a line still being written
    assert len(table.refresh()) == 30
    with open(path, "ab") as handle:
        handle.write(lines[30][7:] + b"".join(lines[31:]))
    table.refresh()
    full = load_trace_output(path)
    assert len(table) == len(full)
    assert len(table._recent) == 10 and len(table._cache) <= 4
    assert [_key(e) for e in table] == [_key(e) for e in full]


def test_an_unreadable_line_is_skipped_and_every_other_event_still_lines_up(tmp_path: Path) -> None:
    lines = (go_trace("3Server2ClientNormalOperation") / "trace_output.log").read_bytes()
    lines = lines.splitlines(keepends=True)
    path = tmp_path / "trace_output.log"
    path.write_bytes(b"".join(lines[:5]) + b"not json\n" + b"\n" + b"".join(lines[5:]))
    table = BoundedEventTable(path, window=3).refresh()
    clean = tmp_path / "clean.log"
    shutil.copy(go_trace("3Server2ClientNormalOperation") / "trace_output.log", clean)
    assert [_key(e) for e in table] == [_key(e) for e in load_trace_output(clean)]


def test_it_refuses_records_that_do_not_come_from_its_file(tmp_path: Path) -> None:
    table = BoundedEventTable(tmp_path / "t.log")
    with pytest.raises(TypeError, match="refresh"):
        table.extend([])


def test_lines_longer_than_a_read_chunk_are_read_whole(tmp_path: Path, monkeypatch) -> None:
    import teachraft.tracing.bounded as bounded

    monkeypatch.setattr(bounded, "CHUNK", 64)  # every line is longer than this
    source = go_trace("3Server2ClientNormalOperation") / "trace_output.log"
    path = tmp_path / "trace_output.log"
    shutil.copy(source, path)
    table = BoundedEventTable(path, window=5).refresh()
    assert [_key(e) for e in table] == [_key(e) for e in load_trace_output(source)]


def _seen_from(event, base: int) -> tuple:
    """An event as a table that dropped the columns before ``base`` shows it."""
    key = list(_key(event))
    if event.index < base:
        key[-1] = None  # its partner went with its columns
    return tuple(key)


@pytest.mark.parametrize("name", go_trace_names())
def test_past_its_columns_every_event_is_still_read_and_queries_see_the_newest(
    name: str,
) -> None:
    path = go_trace(name) / "trace_output.log"
    full = load_trace_output(path)
    bounded = BoundedEventTable(path, window=8, cache=4, columns=40).refresh()
    base = bounded._col_base
    assert base > 0 and len(bounded._offsets) <= 45  # columns for 40 (+1/8) events only
    assert len(bounded) == len(full)
    assert [_key(e) for e in bounded] == [_seen_from(e, base) for e in full]
    assert [_key(bounded[i]) for i in range(len(full))] == [_seen_from(e, base) for e in full]
    assert bounded.hosts() == full.hosts() and bounded.tags() == full.tags()
    recent = [e for e in full if e.index >= base]
    assert sorted(bounded.trace_ids()) == sorted({e.trace_id for e in recent})
    for host in full.hosts():
        mine = [e for e in recent if e.host == host]
        assert [_key(e) for e in bounded.by_host(host)] == [_key(e) for e in mine]
        if mine:
            assert _key(bounded.find(host, mine[-1].time)) == _key(mine[-1])
    for trace_id in bounded.trace_ids()[:20]:
        own = [e for e in recent if e.trace_id == trace_id]
        want = {e.index for e in own} | {e.partner for e in own if e.partner is not None}
        assert bounded.causal_path(trace_id) == sorted(want)
        got = bounded.filter(tags=full.tags()[:4], trace_ids=[trace_id])
        assert [_key(e) for e in got] == [_key(e) for e in own if e.tag in full.tags()[:4]]


def test_a_long_followed_run_keeps_its_columns_bounded(tmp_path: Path) -> None:
    """A viewer refreshing a growing file: memory for the newest events only."""
    lines = (go_trace("3Server2ClientLeaderFailure") / "trace_output.log").read_bytes()
    lines = lines.splitlines(keepends=True)
    path = tmp_path / "trace_output.log"
    table = BoundedEventTable(path, window=10, cache=4, columns=100)
    for start in range(0, len(lines), 37):
        with open(path, "ab") as handle:
            handle.write(b"".join(lines[start : start + 37]))
        table.refresh()
        assert len(table._offsets) <= 100 + 100 // 8
        assert sum(len(v) for v in table._traces.values()) <= len(table._offsets)
        assert all(len(own) <= len(table._offsets) for own in table._host_events)
    assert [_key(e) for e in table][-1] == _key(load_trace_output(path)[-1])


def test_an_unreadable_line_among_old_events_keeps_indexes_right(tmp_path: Path) -> None:
    source = go_trace("3Server2ClientNormalOperation") / "trace_output.log"
    lines = source.read_bytes().splitlines(keepends=True)
    path = tmp_path / "trace_output.log"
    path.write_bytes(b"".join(lines[:70]) + b"not json\n\n" + b"".join(lines[70:]))
    table = BoundedEventTable(path, window=3, cache=2, columns=10).refresh()
    full = load_trace_output(source)
    base = table._col_base
    assert [_key(table[i]) for i in range(len(full))] == [_seen_from(e, base) for e in full]
