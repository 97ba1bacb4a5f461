"""Storage and config cases."""

from __future__ import annotations

from pathlib import Path

from bench.harness import Timed, case

METRIC_ROWS = 10_000
BATCH = 200


@case(
    "storage.metric_ingest",
    description=f"append {METRIC_ROWS:,} metric rows to DuckDB in batches of {BATCH}",
    target="well above the metric rate of any training job (hundreds of rows/s)",
)
def metric_ingest(scratch: Path) -> Timed:
    from storage import DataHome, open_engine
    from storage.repository import MetricRow, append_metrics, create_run, session_scope

    engine = open_engine(DataHome.from_env().ensure().database_url)
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="bench", config={}, seed=0).id
    rows = [
        MetricRow(epoch=i // 50, split="train", name=f"m{i % 50}", value=i) for i in range(BATCH)
    ]

    def ingest() -> dict[str, float]:
        import time

        start = time.perf_counter()
        for _ in range(METRIC_ROWS // BATCH):
            with session_scope(engine) as session:
                append_metrics(session=session, run_id=run_id, rows=rows)
        return {"rows_per_s": METRIC_ROWS / (time.perf_counter() - start)}

    return ingest


@case("config.yaml_round_trip", repeats=20, description="save and load the full ConfigManager")
def yaml_round_trip(scratch: Path) -> Timed:
    from services.config_index import ConfigManager

    path = scratch / "config.yaml"

    def round_trip() -> dict[str, float]:
        ConfigManager().save_config(path)
        ConfigManager.load_config(path)
        return {}

    return round_trip
