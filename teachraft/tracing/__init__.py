"""Vector-clock tracing in the DistributedClocks/GoVector format, with ShiViz logs.

Every node records its actions through a ``Tracer``; records go to a sink (a
list, an EventTable, or a ``TracingClient`` that ships them to the
``TracingServer``, which writes trace_output.log and shiviz_output.log in
happened-before order). The files and the in-memory ``EventTable`` are what
students open in ShiViz and what every teachraft figure is drawn from.
"""

from __future__ import annotations

from teachraft.tracing.actions import ACTION_TYPES, action_body, make_action
from teachraft.tracing.client import TracingClient
from teachraft.tracing.config import ConfigError, TracingServerConfig, load_tracing_server_config
from teachraft.tracing.events import Event, EventTable
from teachraft.tracing.files import load_runs, load_shiviz, load_trace, load_trace_output
from teachraft.tracing.formats import DELIMITER_REGEX, SHIVIZ_REGEX
from teachraft.tracing.server import TracingServer
from teachraft.tracing.shiviz import export_shiviz, shiviz_text
from teachraft.tracing.sinks import MemorySink, Record, Sink, TeeSink
from teachraft.tracing.threaded import connect_tracer
from teachraft.tracing.tokens import TokenError, decode_token, encode_token
from teachraft.tracing.tracer import NULL_TRACE, NullTrace, NullTracer, Trace, Tracer
from teachraft.tracing.validate import validate_shiviz, validate_trace_output

__all__ = [
    "ACTION_TYPES",
    "DELIMITER_REGEX",
    "NULL_TRACE",
    "SHIVIZ_REGEX",
    "ConfigError",
    "Event",
    "EventTable",
    "MemorySink",
    "NullTrace",
    "NullTracer",
    "Record",
    "Sink",
    "TeeSink",
    "TokenError",
    "Trace",
    "Tracer",
    "TracingClient",
    "TracingServer",
    "TracingServerConfig",
    "action_body",
    "connect_tracer",
    "decode_token",
    "encode_token",
    "export_shiviz",
    "load_runs",
    "load_shiviz",
    "load_trace",
    "load_trace_output",
    "load_tracing_server_config",
    "make_action",
    "shiviz_text",
    "validate_shiviz",
    "validate_trace_output",
]
