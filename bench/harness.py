"""A small benchmark harness: registered cases, each timed in a fresh process.

A case is a function that receives a scratch folder, does its set-up, and returns the
callable to time. That callable returns the case's own figures (rows/s, ...). Each case runs
in a new interpreter (``python -m bench.harness``) so its peak RSS is its own; the data home
points at the scratch folder so nothing touches the user's files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Timed = Callable[[], dict[str, float]]
Setup = Callable[[Path], Timed]

RESULTS = Path(__file__).resolve().parent / "results.json"
REPORT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


@dataclass(frozen=True)
class Case:
    name: str
    setup: Setup
    repeats: int
    description: str
    target: str


CASES: dict[str, Case] = {}


def case(name: str, *, repeats: int = 5, description: str = "", target: str = "") -> Callable:
    """Register a benchmark case under ``name``."""

    def register(setup: Setup) -> Setup:
        CASES[name] = Case(
            name, setup, repeats, description or (setup.__doc__ or "").strip(), target
        )
        return setup

    return register


def machine() -> dict[str, Any]:
    import torch

    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _child(module: str, name: str, repeats: int, result: Path) -> None:
    """Run the case here (a fresh interpreter) and write its timings to ``result``."""
    import importlib

    importlib.import_module(module)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["TRENDLAB_HOME"] = str(Path(scratch) / "home")
        os.environ.pop("TRENDLAB_DB_URL", None)
        timed = CASES[name].setup(Path(scratch))
        seconds: list[float] = []
        figures: list[dict[str, float]] = []
        for _ in range(repeats):
            start = time.perf_counter()
            figures.append(timed())
            seconds.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    result.write_text(
        json.dumps({"seconds": seconds, "figures": figures, "peak_rss_mb": peak_kb / 1024})
    )


def run_case(module: str, name: str, repeats: int | None = None) -> dict[str, Any]:
    """Run one registered case (defined in ``module``) in a new interpreter, so its peak RSS
    is its own (``python -m bench.harness MODULE NAME REPEATS RESULT``)."""
    spec = CASES[name]
    repeats = repeats or spec.repeats
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        command = [sys.executable, "-m", "bench.harness", module, name, str(repeats), str(result)]
        done = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], check=False)
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(f"benchmark {name} exited with {done.returncode}")
        raw = json.loads(result.read_text())
    keys = raw["figures"][0].keys() if raw["figures"] else []
    return {
        "description": spec.description,
        "target": spec.target,
        "repeats": repeats,
        "median_s": statistics.median(raw["seconds"]),
        "figures": {k: statistics.median(f[k] for f in raw["figures"]) for k in keys},
        "peak_rss_mb": round(raw["peak_rss_mb"], 1),
    }


def save(results: dict[str, dict[str, Any]], path: Path = RESULTS) -> dict[str, Any]:
    """Merge fresh case results into the results file (other cases keep their figures)."""
    document = json.loads(path.read_text()) if path.exists() else {"cases": {}}
    document["machine"] = machine()
    document["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document["cases"].update(results)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


def render(document: dict[str, Any]) -> str:
    """BENCHMARKS.md: the machine and one table row per case."""
    m = document["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` from `bench/results.json`; do not edit by hand.",
        "",
        f"Machine: {m['cores']} cores, torch {m['torch']} with {m['torch_threads']} threads, "
        f"Python {m['python']}, {m['platform']}. Updated {document['updated']}.",
        "",
        "| case | median time | figures | peak RSS | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result in sorted(document["cases"].items()):
        figures = ", ".join(f"{k} = {_fmt(v)}" for k, v in result["figures"].items())
        lines.append(
            f"| `{name}` | {result['median_s'] * 1000:.1f} ms | {figures} | "
            f"{result['peak_rss_mb']:.0f} MB | {result['target'] or '-'} |"
        )
    lines.append("")
    for name, result in sorted(document["cases"].items()):
        lines.append(f"- `{name}`: {result['description']} (median of {result['repeats']})")
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


if __name__ == "__main__":
    from bench import harness  # the module the cases register with, not this __main__ copy

    harness._child(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown, where duckdb's bindings print "leaked instance"
