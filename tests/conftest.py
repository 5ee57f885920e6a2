"""Shared pytest fixtures: where the read-only reference material lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE_TRACES = SHARED / "reference-traces" / "kvraft-go"
REFERENCE_HISTORIES = SHARED / "reference-histories"


@pytest.fixture
def shared() -> Path:
    """The read-only ../shared folder beside the repo (specs, traces, histories)."""
    return SHARED
