from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from bench import gpu_check
from bench.harness import CASES, render, run_case, save

ROOT = Path(__file__).resolve().parents[1]


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


def test_the_gpu_check_says_no_gpu_on_a_cpu_only_machine_and_compares_curves() -> None:
    """bench/gpu_check.py exits 0 with one clear line without CUDA; its comparison, run CPU
    against CPU on the smallest model, finds the two curves in agreement."""
    if not torch.cuda.is_available():
        ran = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "gpu_check.py")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 0 and ran.stdout.startswith("no GPU:"), ran.stdout + ran.stderr
    train = gpu_check._market_trainer("compact_dual_tower", epochs=2)
    assert gpu_check.check("compact_dual_tower", train, devices=("cpu", "cpu"))
