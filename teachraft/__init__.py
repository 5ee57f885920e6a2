"""teachraft: a replicated key-value store (KVRaft) for teaching, over real TCP on loopback."""

__version__ = "0.1.0"
