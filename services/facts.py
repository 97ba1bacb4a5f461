"""What the read-only CLI commands print, as JSON-ready dicts: built here once, so the CLI
gives the same answer from the database and, while a server holds the DuckDB file, from that
server's API (which answers with these very dicts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from services import catalog
from services.catalog import DatasetInfo, RunInfo
from services.runs_table import primary_figure, target_of
from storage.data_home import DataHome


def dataset_facts(dataset: DatasetInfo) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "kind": dataset.kind,
        "source": dataset.source,
        "rows": dataset.row_count,
        "tickers": dataset.tickers,
        "start": str(dataset.start_date),
        "end": str(dataset.end_date),
        "created": dataset.created_at.isoformat(timespec="seconds"),
    }


def datasets(*, engine: Engine) -> list[dict[str, Any]]:
    return [dataset_facts(d) for d in catalog.datasets(engine=engine)]


def dataset(*, engine: Engine, name: str) -> dict[str, Any] | None:
    """One dataset with its features count, hash and recipe; None when unknown."""
    found = catalog.dataset(engine=engine, name=name)
    if found is None:
        return None
    return {
        **dataset_facts(found),
        "features": len(found.features),
        "content_hash": found.content_hash,
        "recipe": found.recipe,
    }


def run_row(run: RunInfo) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "name": run.name or "",
        "model": run.model,
        "dataset": run.dataset or "",
        "target": target_of(run),
        "status": run.status,
        "seed": run.seed,
        "created": run.created_at.isoformat(timespec="seconds"),
        "test": run.summary.get("test", {}),
        "primary": primary_figure(run),
        "verdict": run.summary.get("verdict") or "",
        "tags": list(run.tags),
    }


def runs(*, engine: Engine) -> list[dict[str, Any]]:
    """Runs, newest first."""
    return [run_row(r) for r in catalog.runs(engine=engine)]


def run(*, engine: Engine, run_id: int) -> dict[str, Any] | None:
    """One run: status, configs, summary and recorded files; None when unknown."""
    found = catalog.run(engine=engine, run_id=run_id)
    if found is None:
        return None
    return {
        "run_id": found.id,
        "model": found.model,
        "status": found.status,
        "seed": found.seed,
        "dataset_id": found.dataset_id,
        "created": found.created_at.isoformat(timespec="seconds"),
        "summary": found.summary,
        "config": found.config,
        "artifacts": [
            {"kind": a.kind, "path": str(a.path), "bytes": a.bytes, "sha256": a.sha256}
            for a in catalog.artifacts(engine=engine, run_id=run_id)
        ],
    }


def info(*, home: DataHome, engine: Engine) -> dict[str, Any]:
    """Where the data home and database are (no password), and what the database holds."""
    counts = catalog.overview(engine=engine)
    return {
        "data_home": str(home.root),
        "database_url": make_url(home.database_url).render_as_string(hide_password=True),
        "schema_version": counts.pop("schema_version"),
        **counts,
    }
