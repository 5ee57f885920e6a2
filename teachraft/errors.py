"""The errors a user of teachraft can meet, each with one clear message."""

from __future__ import annotations


class TeachraftError(Exception):
    """Base of every teachraft error a user may want to catch."""


class ConfigError(TeachraftError, ValueError):
    """A configuration file or argument is invalid; the message names the file and key."""


class KVError(TeachraftError):
    """A Put or Get did not succeed."""


class NoQuorumError(KVError):
    """Fewer than a majority of servers are alive, so the store cannot serve."""


class OpTimeoutError(KVError, TimeoutError):
    """An op got no answer in time; it may or may not have taken effect."""


class ClusterError(TeachraftError):
    """The cluster was used wrongly (not started, closed, unknown server id, ...)."""


class ValueTooLargeError(KVError, ValueError):
    """A Put whose key and value would not fit in one message; refused before it is sent."""
