"""The API under load while a job trains (issue 23): the real server on a loopback port, 20
keep-alive clients (bench/load.py, the code the bench case api.load_20_clients runs for 30 s).
Speed targets live in bench/; this checks that nothing breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import CLIENTS, run_load

SECONDS = 10


@pytest.mark.slow
def test_20_clients_while_a_job_trains_get_no_5xx_no_reset_and_lose_no_metric_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 clients for 10 s (the bench runs 30 s) on health, predict and recommendations."""
    monkeypatch.setenv("TRENDLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRENDLAB_DB_URL", raising=False)
    result = run_load(tmp_path / "home", seconds=SECONDS, clients=CLIENTS, job_epochs=30)
    figures = result["figures"]
    assert result["errors"] == {}, result  # connection resets, timeouts
    assert figures["stuck_clients"] == 0, result
    for endpoint in ("health", "predict", "recommendations"):
        statuses = result["statuses"].get(endpoint, {})
        assert set(statuses) == {200}, (endpoint, statuses)
        assert statuses[200] >= CLIENTS, (endpoint, statuses)
    assert figures["responses_5xx"] == 0
    assert figures["job_running_share"] > 0, "the job trained while the clients asked"
    assert result["job_status"] == "succeeded", result
    assert figures["job_epochs"] == 30
    assert figures["metric_rows_reported"] > 0
    assert figures["metric_rows_stored"] == figures["metric_rows_reported"]
