"""Every database test here runs on DuckDB and on PostgreSQL."""

from __future__ import annotations

import pytest


@pytest.fixture
def backend(both_backends: str) -> str:
    return both_backends
