from __future__ import annotations

import json
from pathlib import Path

from bench.harness import CASES, render, run_case, save


def test_a_case_runs_in_its_own_process_and_lands_in_results(tmp_path: Path) -> None:
    import bench.cases_storage  # noqa: F401  (registers the cases)

    result = run_case("bench.cases_storage", "config.yaml_round_trip", repeats=2)
    assert result["repeats"] == 2
    assert result["median_s"] > 0
    assert result["peak_rss_mb"] > 1
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"cases": {"old.case": {**result, "description": "kept"}}}))
    document = save({"config.yaml_round_trip": result}, path)
    stored = json.loads(path.read_text())
    assert set(stored["cases"]) == {"old.case", "config.yaml_round_trip"}
    assert stored["machine"]["cores"] >= 1 and stored["machine"]["torch_threads"] >= 1
    report = render(document)
    assert "| `config.yaml_round_trip` |" in report
    assert "| `old.case` |" in report


def test_every_registered_case_has_a_description() -> None:
    import bench.cases_storage  # noqa: F401

    assert CASES
    assert all(c.description for c in CASES.values())
