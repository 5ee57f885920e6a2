"""Vector-clock tracing in the DistributedClocks/GoVector format, with ShiViz logs.

Every node records its actions through a ``Tracer``; records go to a sink (a
list, an EventTable, or a ``TracingClient`` that ships them to the
``TracingServer``, which writes trace_output.log and shiviz_output.log in
happened-before order). The files and the in-memory ``EventTable`` are what
students open in ShiViz and what every teachraft figure is drawn from.

The package imports its parts lazily (PEP 562): the pure core imports
``teachraft.tracing.actions`` only, and must not pull in asyncio, sockets,
threads or msgpack by way of this ``__init__``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ACTION_TYPES": "actions",
    "action_body": "actions",
    "make_action": "actions",
    "TracingClient": "client",
    "ConfigError": "config",
    "TracingServerConfig": "config",
    "load_tracing_server_config": "config",
    "Event": "events",
    "EventTable": "events",
    "load_runs": "files",
    "load_shiviz": "files",
    "load_trace": "files",
    "load_trace_output": "files",
    "DELIMITER_REGEX": "formats",
    "SHIVIZ_REGEX": "formats",
    "TracingServer": "server",
    "export_shiviz": "shiviz",
    "shiviz_text": "shiviz",
    "MemorySink": "sinks",
    "Record": "sinks",
    "Sink": "sinks",
    "TeeSink": "sinks",
    "connect_tracer": "threaded",
    "TokenError": "tokens",
    "decode_token": "tokens",
    "encode_token": "tokens",
    "NULL_TRACE": "tracer",
    "NullTrace": "tracer",
    "NullTracer": "tracer",
    "Trace": "tracer",
    "Tracer": "tracer",
    "validate_shiviz": "validate",
    "validate_trace_output": "validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'teachraft.tracing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"teachraft.tracing.{module}"), name)


def __dir__() -> list[str]:
    return __all__
