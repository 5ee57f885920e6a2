"""Maintenance commands for the repository (``python -m teachraft.tools.NAME``)."""
