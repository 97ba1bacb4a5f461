"""The CLI beside a running server: on DuckDB, commands that read ask the server and commands
that write say how instead (or go through it with --via-server); on PostgreSQL the CLI writes
while the server holds the same database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from core.recsys.synthetic import RecsysSpec, generate_recsys
from storage import DataHome, open_engine
from storage.recsys import save_recsys_dataset
from storage.repository import create_run, session_scope
from tests.conftest import ROOT, running_server
from tests.sweeping import store_demo


def trendlab(*args: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=300,
    )


def fill(home: DataHome) -> None:
    """A market dataset, a recommender one (so the server stores no demo data) and a run."""
    engine = open_engine(home.database_url)
    store_demo(engine, "small")
    data = generate_recsys(RecsysSpec(users=20, items=15, interactions=120, seed=1))
    save_recsys_dataset(engine=engine, name="rs", data=data, description="test")
    with session_scope(engine) as session:
        create_run(session=session, model_kind="compact_dual_tower", config={}, seed=4)
    engine.dispose()


@pytest.mark.slow
def test_with_a_duckdb_server_reads_answer_and_writes_say_how(data_home: DataHome) -> None:
    fill(data_home)
    with running_server(data_home.root, TRENDLAB_JOB_RUNNER="1", TRENDLAB_MAX_JOBS="2"):
        listed = trendlab("runs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["run_id"] for r in json.loads(listed.stdout)] == [1]
        shown = trendlab("runs", "show", "1", "--json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["seed"] == 4, shown.stderr
        datasets = trendlab("data", "list", "--json")
        assert {d["name"] for d in json.loads(datasets.stdout)} == {"small", "rs"}
        info = json.loads(trendlab("info", "--json").stdout)
        assert info["runs"] == 1 and info["datasets"] == 2
        assert trendlab("runs", "show", "9").returncode == 1

        refused = trendlab("data", "synthetic", "more", "--tickers", "AAA")
        assert refused.returncode == 1
        assert "is in use by process" in refused.stderr and "--via-server" in refused.stderr

        swept = trendlab(
            "sweep",
            "compact_dual_tower",
            "--dataset",
            "small",
            "--trials",
            "2",
            "--epochs",
            "2",
            "--via-server",
            "--json",
        )
        assert swept.returncode == 0, swept.stderr
        result = json.loads(swept.stdout)
        assert result["status"] == "succeeded", result["error"]
        assert len(result["results"]) == 2
        assert result["best"]["run_id"] is not None


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_the_cli_writes_while_a_server_holds_the_same_postgresql_database(
    data_home: DataHome,
) -> None:
    assert data_home.shared_database
    fill(data_home)
    with running_server(data_home.root) as url:
        stored = trendlab(
            "data", "synthetic", "more", "--tickers", "AAA,BBB", "--start", "2019-01-01"
        )
        assert stored.returncode == 0, stored.stderr
        assert (data_home.features / "dataset_3.parquet").is_file(), "feature rows as a file"
        with urllib.request.urlopen(f"{url}/api/datasets", timeout=30) as response:
            served = {d["name"] for d in json.loads(response.read())}
        assert served == {"small", "rs", "more"}, "the server reads what the CLI wrote"
        listed = trendlab("runs", "list", "--json")
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1, listed.stderr
