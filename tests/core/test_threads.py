"""Torch's OpenMP threads wait passively in every process Trendlab starts (issue 26)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_the_core_sets_passive_waiting_before_torch_loads() -> None:
    """A fresh interpreter: the setting is in place once ``core`` is imported, before torch,
    and an explicit choice in the environment is kept."""
    code = (
        "import sys, os; import core; assert 'torch' not in sys.modules; "
        "print(os.environ['OMP_WAIT_POLICY'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    found = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "PASSIVE"
    kept = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert kept.stdout.strip() == "ACTIVE"
