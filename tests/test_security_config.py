"""Finding 9 and the Secret key: configs bind to loopback unless asked, and share a secret."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from teachraft.config import (
    load_client_config,
    load_coord_config,
    load_server_config,
    write_configs,
)
from teachraft.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "192.168.1.20"])
@pytest.mark.parametrize(
    ("file", "key", "load"),
    [
        ("coord_config.json", "ServerAPIListenAddr", load_coord_config),
        ("coord_config.json", "ClientAPIListenAddr", load_coord_config),
        ("server_config1.json", "ServerListenAddr", load_server_config),
        ("server_config1.json", "ClientListenAddr", load_server_config),
        ("server_config1.json", "ServerAddr", load_server_config),
        ("client_config1.json", "LocalCoordIPPort", load_client_config),
    ],
)
def test_a_listen_address_off_loopback_needs_allow_remote(
    tmp_path: Path, host: str, file: str, key: str, load
) -> None:
    folder = write_configs(tmp_path, num_servers=3, num_clients=1)
    _edit(folder / file, **{key: f"{host}:22001"})
    with pytest.raises(ConfigError) as info:
        load(folder / file)
    message = str(info.value)
    assert key in message and "AllowRemote" in message and "\n" not in message
    cfg = load(folder / file, allow_remote=True)
    assert any(key in line and "beyond loopback" in line for line in cfg.warnings)
    _edit(folder / file, AllowRemote=True)
    cfg = load(folder / file)
    assert any(key in line and "beyond loopback" in line for line in cfg.warnings)


def test_write_configs_gives_every_node_the_same_random_secret(tmp_path: Path) -> None:
    one = write_configs(tmp_path / "one", num_servers=3, num_clients=1)
    two = write_configs(tmp_path / "two", num_servers=3, num_clients=1)
    secrets = {
        load_coord_config(one / "coord_config.json").secret,
        load_server_config(one / "server_config2.json").secret,
        load_client_config(one / "client_config1.json").secret,
        json.loads((one / "tracing_server_config.json").read_text())["Secret"],
    }
    assert len(secrets) == 1 and len(secrets.pop()) >= 32
    assert (
        load_coord_config(two / "coord_config.json").secret
        != load_coord_config(one / "coord_config.json").secret
    )
    assert load_coord_config(one / "coord_config.json").warnings == ()


def test_an_empty_secret_is_allowed_with_a_warning(tmp_path: Path) -> None:
    folder = write_configs(tmp_path, num_servers=3, num_clients=1)
    _edit(folder / "coord_config.json", Secret="")
    cfg = load_coord_config(folder / "coord_config.json")
    assert any('"Secret" is empty' in line for line in cfg.warnings)


def test_the_coord_command_refuses_a_remote_bind_in_one_line(tmp_path: Path) -> None:
    folder = write_configs(tmp_path, num_servers=3, num_clients=1)
    # A documentation address (TEST-NET-1): even without the check it cannot bind,
    # so this test never listens beyond loopback.
    _edit(folder / "coord_config.json", ServerAPIListenAddr="192.0.2.1:0")
    done = subprocess.run(
        [sys.executable, "-m", "teachraft", "coord", "--config-dir", str(folder), "--no-tracing"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ServerAPIListenAddr" in lines[0] and "AllowRemote" in lines[0]
