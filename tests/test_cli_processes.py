"""The command line as the original ran it: one process per node, configs with its keys."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teachraft.config import write_configs

pytestmark = pytest.mark.slow

TEACHRAFT = [sys.executable, "-m", "teachraft"]


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*TEACHRAFT, *args], cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_separate_processes_run_the_20_pairs_and_traces_validate(tmp_path: Path) -> None:
    n = 5
    cfg = write_configs(
        tmp_path / "config", num_servers=n, num_clients=1, ports=_free_ports(3 + 4 * n + 2)
    )
    out = tmp_path / "out"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []
    try:
        common = ["--config-dir", str(cfg)]
        procs.append(
            _spawn(["tracing-server", *common, "--out", str(out)], tmp_path, logs / "tracing.txt")
        )
        time.sleep(0.5)
        procs.append(_spawn(["coord", *common], tmp_path, logs / "coord.txt"))
        for i in range(1, n + 1):
            procs.append(_spawn(["server", str(i), *common], tmp_path, logs / f"server{i}.txt"))
        client = subprocess.run(
            [*TEACHRAFT, "client", "1", *common],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert client.returncode == 0, client.stdout + client.stderr
        assert client.stdout.count("ok; Get(") == 20
    finally:
        _stop(procs[1:])
        _stop(procs[:1])
    for p in procs:
        assert p.returncode == 0, (p.args, p.returncode)
    check = subprocess.run(
        [*TEACHRAFT, "trace", "validate", str(out / "shiviz_output.log")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tags = {json.loads(line)["Tag"] for line in (out / "trace_output.log").open()}
    assert {"AllServersJoined", "PutCommitted", "GetResultRecvd", "KvslibStop"} <= tags


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*TEACHRAFT, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("NumServers", 4, '"NumServers" must be odd and between 3 and 7, not 4'),
        ("NumServers", 9, '"NumServers" must be odd and between 3 and 7, not 9'),
        ("ServerAPIListenAddr", "nowhere", '"ServerAPIListenAddr" must be host:port'),
        ("LostMsgsThresh", None, '"LostMsgsThresh" is missing'),
        ("NumServer", 5, '"NumServer" is not a known key (did you mean "NumServers"?)'),
    ],
)
def test_bad_coord_config_is_one_clear_line(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    cfg = write_configs(tmp_path / "config", ports=_free_ports(27))
    path = cfg / "coord_config.json"
    data = json.loads(path.read_text())
    if value is None:
        del data[key]
    else:
        data[key] = value
    path.write_text(json.dumps(data))
    r = _run(["coord", "--config-dir", str(cfg)], tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "coord_config.json" in lines[0], r.stderr


def test_duplicate_server_id_is_reported(tmp_path: Path) -> None:
    cfg = write_configs(tmp_path / "config", ports=_free_ports(27))
    data = json.loads((cfg / "server_config2.json").read_text())
    data["ServerID"] = 1
    (cfg / "server_config2.json").write_text(json.dumps(data))
    r = _run(["server", "2", "--config-dir", str(cfg)], tmp_path)
    assert r.returncode == 2
    assert '"ServerID" is 1, not 2' in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_port_in_use_names_the_address(tmp_path: Path) -> None:
    cfg = write_configs(tmp_path / "config", ports=_free_ports(27))
    addr = json.loads((cfg / "coord_config.json").read_text())["ServerAPIListenAddr"]
    host, port = addr.rsplit(":", 1)
    with socket.socket() as s:
        s.bind((host, int(port)))
        s.listen()
        r = _run(["coord", "--config-dir", str(cfg)], tmp_path)
    assert r.returncode == 2
    assert addr in r.stderr and "in use" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_config_folder_in_repo_loads() -> None:
    from teachraft.config import load_client_config, load_coord_config, load_server_config

    root = Path(__file__).resolve().parents[1] / "config"
    assert load_coord_config(root / "coord_config.json").num_servers == 5
    for i in range(1, 6):
        assert load_server_config(root / f"server_config{i}.json").server_id == i
    assert load_client_config(root / "client_config1.json").client_id == "1"
