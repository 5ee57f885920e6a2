"""The tracing server's config file, with KVRaft's keys, checked on load.

``config/tracing_server_config.json`` keeps the original's keys (ServerBind,
Secret, OutputFile, ShivizOutputFile) so a KVRaft student recognises it.
``Secret`` is the cluster secret tracers must prove they know (the same as in
the nodes' configs; ``net.auth``). Every problem is a
``ConfigError`` naming the file and the key, because a wrong config is the
most common reason a first run fails.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from teachraft.errors import ConfigError
from teachraft.net.address import split_address as parse_address

logger = logging.getLogger(__name__)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_KNOWN_KEYS = ("ServerBind", "Secret", "OutputFile", "ShivizOutputFile")


@dataclass(frozen=True, slots=True)
class TracingServerConfig:
    """The tracing server's settings, under the original's names."""

    ServerBind: str = "127.0.0.1:0"
    Secret: str = ""
    OutputFile: str = "trace_output.log"
    ShivizOutputFile: str = "shiviz_output.log"


def load_tracing_server_config(path: str | Path) -> TracingServerConfig:
    """Read and check a tracing server config; raise ConfigError on any problem."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a JSON object")
    values = {key: _string(data, key, source) for key in _KNOWN_KEYS if key in data}
    for key in ("ServerBind", "OutputFile", "ShivizOutputFile"):
        if key not in values:
            raise ConfigError(f'{source}: key "{key}" is missing')
    _check_bind(values["ServerBind"], source)
    for key in ("OutputFile", "ShivizOutputFile"):
        if not values[key].strip():
            raise ConfigError(f'{source}: key "{key}" must name a file')
    if values["OutputFile"] == values["ShivizOutputFile"]:
        raise ConfigError(f'{source}: keys "OutputFile" and "ShivizOutputFile" name one file')
    unknown = sorted(set(data) - set(_KNOWN_KEYS))
    if unknown:
        logger.warning("%s: ignoring unknown keys %s", source, ", ".join(unknown))
    return TracingServerConfig(**values)


def _string(data: dict, key: str, source: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f'{source}: key "{key}" must be a string')
    return value


def _check_bind(bind: str, source: str) -> None:
    try:
        host, _ = parse_address(bind)
    except ValueError as exc:
        raise ConfigError(f'{source}: key "ServerBind" must be host:port: {exc}') from None
    if host not in _LOOPBACK_HOSTS and not host.startswith("127."):
        raise ConfigError(
            f'{source}: key "ServerBind" must be a loopback address (127.0.0.1), not {host!r}'
        )
