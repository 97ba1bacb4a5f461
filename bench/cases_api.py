"""The HTTP API under load: the real server, 20 keep-alive clients, a job training meanwhile."""

from __future__ import annotations

from pathlib import Path

from bench.harness import Timed, case

SECONDS = 30


@case(
    "api.load_20_clients",
    repeats=1,
    description=(
        f"20 keep-alive clients for {SECONDS} s on /api/health, /api/predict (2 rows, compact "
        "dual tower) and /api/recommendations/startups/for-developer of `trendlab serve` on "
        "a loopback port while a compact dual tower trains (bench/load.py); latencies in ms, "
        "5xx answers, connection resets, the job's metric rows reported and stored"
    ),
    target="p99 < 1 s, 0 responses 5xx, 0 resets, every metric row stored",
)
def api_load_20_clients(scratch: Path) -> Timed:
    from bench.load import run_load

    def measure() -> dict[str, float]:
        result = run_load(scratch / "home", seconds=SECONDS)  # the harness's TRENDLAB_HOME
        print({k: result[k] for k in ("statuses", "errors", "job_status")}, flush=True)
        if result["job_status"] != "succeeded":
            raise RuntimeError(f"the training job ended {result['job_status']}")
        return result["figures"]

    return measure
