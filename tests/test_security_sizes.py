"""Findings 2 and 3: large values replicate in frames that fit, and a too-large Put is
refused at the client with one clear error before it reaches the log."""

from __future__ import annotations

import time

import pytest

from teachraft.cluster import Cluster, Timing
from teachraft.core.log import PUT, Entry
from teachraft.errors import ValueTooLargeError
from teachraft.limits import within_bytes
from teachraft.net.framing import DEFAULT_MAX_FRAME, encode_frame

pytestmark = pytest.mark.slow


def test_batches_are_cut_by_bytes() -> None:
    big = [Entry(1, i, PUT, f"k{i}", "x" * 2_500_000, "1", i, 0) for i in range(1, 4)]
    assert len(within_bytes(big, 1 << 20)) == 1  # one entry always goes
    small = [Entry(1, i, PUT, f"k{i}", "v", "1", i, 0) for i in range(1, 513)]
    assert within_bytes(small, 1 << 20) == small
    assert len(encode_frame(within_bytes(big, 1 << 20))) < DEFAULT_MAX_FRAME


def test_a_follower_that_missed_large_values_catches_up(tmp_path) -> None:
    big = "x" * 2_500_000
    timing = Timing(op_timeout=8.0)
    with Cluster(
        servers=3, tracing=False, out_dir=tmp_path, timing=timing, persist=True, fsync=False
    ) as cluster:
        cluster.put("k0", "v0")
        leader = cluster.leader()
        lagging, other = (sid for sid in sorted(cluster.servers) if sid != leader)
        cluster.fail(lagging)
        cluster.put("big1", big)
        cluster.put("big2", big)
        cluster.restart(lagging)  # it needs both big entries, in one resend
        cluster.wait_converged(timeout=20)
        cluster.fail(other)  # now the cluster needs the lagging server to commit
        cluster.put("k1", "v1")
        assert cluster.get("big2") == big and cluster.get("k1") == "v1"


def test_a_put_over_the_limit_is_refused_at_once(tmp_path) -> None:
    with Cluster(servers=3, tracing=False, out_dir=tmp_path) as cluster:
        start = time.monotonic()
        with pytest.raises(ValueTooLargeError, match=r"^value is 4\.5 MB; the limit is "):
            cluster.put("k", "x" * 4_500_000)
        assert time.monotonic() - start < 1.0
        assert all(len(e.value) < 1000 for e in cluster.log(cluster.leader()))
        cluster.put("k", "fits")
        assert cluster.get("k") == "fits"
    small = Cluster(servers=3, tracing=False, out_dir=tmp_path / "b", max_value_bytes=1000)
    with small, pytest.raises(ValueTooLargeError, match=r"the limit is 0\.0 MB"):
        small.put("k", "x" * 2000)


def test_no_setting_lets_a_put_exceed_one_frame() -> None:
    from teachraft.limits import check_put

    check_put("k", "x" * 3_000_000)
    with pytest.raises(ValueTooLargeError, match=r"the limit is 4\.1 MB"):
        check_put("k", "x" * 4_500_000, limit=100 * 1024 * 1024)
    with pytest.raises(ValueTooLargeError, match=r"value is 2\.0 MB"):
        check_put("k", "é" * 1_000_000, limit=1_500_000)  # counted in UTF-8 bytes
