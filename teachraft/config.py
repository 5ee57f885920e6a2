"""The JSON configs of the command-line mode, with the original KVRaft's keys.

Each file is checked key by key, and every problem gives one line naming the
file and the key (``config/coord_config.json: "NumServers" must be odd and
between 3 and 7, not 4``), so a student sees what to fix.

``Secret`` is the cluster secret every node proves it knows (``net.auth``):
all configs of one deployment must hold the same one; ``write_configs`` picks
a random one. An empty secret still works but lets any local process join, and
the nodes say so when they start (``warnings``). A listen address off loopback
(``0.0.0.0``, ``[::]``, a LAN address) is refused unless the config says
``"AllowRemote": true`` or the command gets ``--allow-remote``; the node then
says in one line on start that it listens beyond loopback.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachraft.errors import ConfigError
from teachraft.net.address import split_address as parse_address


@dataclass(frozen=True, slots=True)
class CoordConfig:
    client_api_listen_addr: str
    server_api_listen_addr: str
    lost_msgs_thresh: int
    num_servers: int
    tracing_server_addr: str
    tracing_identity: str
    secret: str = ""
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ServerConfig:
    server_id: int
    coord_addr: str
    server_addr: str
    server_server_addr: str
    server_listen_addr: str
    client_listen_addr: str
    tracing_server_addr: str
    tracing_identity: str
    secret: str = ""
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ClientConfig:
    client_id: str
    coord_ip_port: str
    local_coord_ip_port: str
    local_leader_server_ip_port: str
    ch_capacity: int
    tracing_server_addr: str
    tracing_identity: str
    secret: str = ""
    warnings: tuple[str, ...] = field(default=())


class _Reader:
    """Reads one JSON object and checks its keys, naming the file in every error."""

    def __init__(self, path: Path, allow_remote: bool = False) -> None:
        self.path = path
        self.warnings: list[str] = []
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must hold a JSON object")
        self.data: dict[str, Any] = data
        remote = data.get("AllowRemote", False)
        if type(remote) is not bool:
            raise self.fail("AllowRemote", f"must be true or false, not {json.dumps(remote)}")
        self.allow_remote = allow_remote or remote

    def only(self, *known: str) -> None:
        """A key the node does not know is a typo until proven otherwise: name it."""
        for key in self.data:
            if key not in known and key not in ("Secret", "AllowRemote"):
                close = difflib.get_close_matches(key, known, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                raise self.fail(key, f"is not a known key{hint}")

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f'{self.path}: "{key}" {why}')

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise self.fail(key, "is missing")
        return self.data[key]

    def int(self, key: str, low: int | None = None, high: int | None = None) -> int:
        value = self.get(key)
        if type(value) is not int:
            raise self.fail(key, f"must be an integer, not {json.dumps(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(key, f"must be between {low} and {high}, not {value}")
        return value

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, not {json.dumps(value)}")
        return value

    def identity(self, key: str) -> str:
        value = self.text(key)
        if any(c.isspace() or c in '"\\' for c in value):
            raise self.fail(key, "must not contain spaces, quotes or backslashes")
        return value

    def secret(self) -> str:
        """The cluster secret; an empty one is allowed with a warning."""
        value = self.data.get("Secret", "")
        if not isinstance(value, str):
            raise self.fail("Secret", f"must be a string, not {json.dumps(value)}")
        if not value:
            self.warnings.append(
                f'{self.path}: "Secret" is empty, so any local process can join this cluster; '
                "set the same secret in every config"
            )
        return value

    def listen_addr(self, key: str) -> str:
        """An address this node listens on: loopback, unless remote access is allowed."""
        value = self.addr(key)
        host = parse_address(value)[0]
        if is_loopback(host):
            return value
        if not self.allow_remote:
            raise self.fail(
                key,
                f"is {value}, which other machines can reach: use 127.0.0.1, or allow it "
                'with "AllowRemote": true (or --allow-remote) and a strong "Secret"',
            )
        self.warnings.append(
            f'{self.path}: "{key}" listens beyond loopback on {value} (AllowRemote is on)'
        )
        return value

    def addr(self, key: str) -> str:
        value = self.text(key)
        try:
            parse_address(value)
        except ValueError:
            raise self.fail(
                key, f"must be host:port with a port up to 65535, not {value!r}"
            ) from None
        return value


COORD_KEYS = (
    "ClientAPIListenAddr",
    "ServerAPIListenAddr",
    "LostMsgsThresh",
    "NumServers",
    "TracingServerAddr",
    "TracingIdentity",
)
SERVER_KEYS = (
    "ServerID",
    "CoordAddr",
    "ServerAddr",
    "ServerServerAddr",
    "ServerListenAddr",
    "ClientListenAddr",
    "TracingServerAddr",
    "TracingIdentity",
)
CLIENT_KEYS = (
    "ClientID",
    "CoordIPPort",
    "LocalCoordIPPort",
    "LocalLeaderServerIPPort",
    "ChCapacity",
    "TracingServerAddr",
    "TracingIdentity",
)


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_coord_config(path: str | Path, allow_remote: bool = False) -> CoordConfig:
    r = _Reader(Path(path), allow_remote)
    r.only(*COORD_KEYS)
    num = r.int("NumServers")
    if num % 2 == 0 or not 3 <= num <= 7:
        raise r.fail("NumServers", f"must be odd and between 3 and 7, not {num}")
    return CoordConfig(
        client_api_listen_addr=r.listen_addr("ClientAPIListenAddr"),
        server_api_listen_addr=r.listen_addr("ServerAPIListenAddr"),
        lost_msgs_thresh=r.int("LostMsgsThresh", 1, 100),
        num_servers=num,
        tracing_server_addr=r.addr("TracingServerAddr"),
        tracing_identity=r.identity("TracingIdentity"),
        secret=r.secret(),
        warnings=tuple(r.warnings),
    )


def load_server_config(path: str | Path, allow_remote: bool = False) -> ServerConfig:
    r = _Reader(Path(path), allow_remote)
    r.only(*SERVER_KEYS)
    cfg = ServerConfig(
        server_id=r.int("ServerID", 1, 255),
        coord_addr=r.addr("CoordAddr"),
        server_addr=r.listen_addr("ServerAddr"),
        server_server_addr=r.addr("ServerServerAddr"),
        server_listen_addr=r.listen_addr("ServerListenAddr"),
        client_listen_addr=r.listen_addr("ClientListenAddr"),
        tracing_server_addr=r.addr("TracingServerAddr"),
        tracing_identity=r.identity("TracingIdentity"),
        secret=r.secret(),
        warnings=tuple(r.warnings),
    )
    listens = {
        "ServerAddr": cfg.server_addr,
        "ServerListenAddr": cfg.server_listen_addr,
        "ClientListenAddr": cfg.client_listen_addr,
    }
    seen: dict[str, str] = {}
    for key, addr in listens.items():
        if addr in seen and parse_address(addr)[1] != 0:
            raise r.fail(key, f'repeats the address of "{seen[addr]}" ({addr})')
        seen[addr] = key
    return cfg


def load_client_config(path: str | Path, allow_remote: bool = False) -> ClientConfig:
    r = _Reader(Path(path), allow_remote)
    r.only(*CLIENT_KEYS)
    raw_id = r.get("ClientID")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not raw_id or any(c.isspace() for c in raw_id):
        raise r.fail("ClientID", f'must be a short id such as "1", not {json.dumps(raw_id)}')
    return ClientConfig(
        client_id=raw_id,
        coord_ip_port=r.addr("CoordIPPort"),
        local_coord_ip_port=r.listen_addr("LocalCoordIPPort"),
        local_leader_server_ip_port=r.listen_addr("LocalLeaderServerIPPort"),
        ch_capacity=r.int("ChCapacity", 1, 1_000_000),
        tracing_server_addr=r.addr("TracingServerAddr"),
        tracing_identity=r.identity("TracingIdentity"),
        secret=r.secret(),
        warnings=tuple(r.warnings),
    )


def write_configs(
    folder: str | Path,
    num_servers: int = 5,
    num_clients: int = 2,
    ports: list[int] | None = None,
    lost_msgs_thresh: int = 3,
    ch_capacity: int = 16,
) -> Path:
    """Write a full config folder. With ``ports`` (4 + 4 per server + 2 per client free
    ports) it is runnable as separate processes; by default it uses the original's ports."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    it = iter(ports) if ports is not None else None
    secret = secrets.token_hex(16)  # one per deployment: every node must hold the same

    def addr(default: int) -> str:
        return f"127.0.0.1:{next(it) if it is not None else default}"

    tracing = addr(21000)
    _dump(
        folder / "tracing_server_config.json",
        {
            "ServerBind": tracing,
            "Secret": secret,
            "OutputFile": "trace_output.log",
            "ShivizOutputFile": "shiviz_output.log",
        },
    )
    coord_clients, coord_servers = addr(22000), addr(22001)
    _dump(
        folder / "coord_config.json",
        {
            "ClientAPIListenAddr": coord_clients,
            "ServerAPIListenAddr": coord_servers,
            "LostMsgsThresh": lost_msgs_thresh,
            "NumServers": num_servers,
            "TracingServerAddr": tracing,
            "Secret": secret,
            "TracingIdentity": "coord",
        },
    )
    for i in range(1, num_servers + 1):
        _dump(
            folder / f"server_config{i}.json",
            {
                "ServerID": i,
                "CoordAddr": coord_servers,
                "ServerAddr": addr(21000 + i),
                "ServerServerAddr": addr(21010 + i),
                "ServerListenAddr": addr(21020 + i),
                "ClientListenAddr": addr(21030 + i),
                "TracingServerAddr": tracing,
                "Secret": secret,
                "TracingIdentity": f"server{i}",
            },
        )
    for c in range(1, num_clients + 1):
        _dump(
            folder / f"client_config{c}.json",
            {
                "ClientID": str(c),
                "CoordIPPort": coord_clients,
                "LocalCoordIPPort": addr(23000 + c),
                "LocalLeaderServerIPPort": addr(23005 + c),
                "ChCapacity": ch_capacity,
                "TracingServerAddr": tracing,
                "Secret": secret,
                "TracingIdentity": f"client{c}",
            },
        )
    return folder


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
