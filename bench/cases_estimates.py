"""Does the Train page's estimate hold: estimate against the measured job for the quick and
standard presets of the dual tower and the LSTM, on the demo and the S&P 500 sample
(``bench.estimates_hold``)."""

from __future__ import annotations

from pathlib import Path

from bench.harness import Timed, case


@case(
    "models.estimate_vs_actual",
    repeats=1,
    description=(
        "for the quick and standard presets of dual_tower and lstm_attention on the demo market "
        "and the shared 100-stock S&P 500 sample, each dataset in a fresh data home: the "
        "estimate the Train page shows, then the job it starts (every baseline), timed from "
        "the click to the job's end; the estimate compared at the epochs the run trained "
        "(early stopping) and as shown (an upper bound in epochs)"
    ),
    target="within 25 % of the measured time at the trained epochs, every case",
)
def estimate_vs_actual(scratch: Path) -> Timed:
    from bench.estimates_hold import TOLERANCE, measure

    def run() -> dict[str, float]:
        found = measure()
        figures = {
            f"{r['dataset']}_{r['model']}_{r['preset']}_error_pct": 100
            * r["error_at_trained_epochs"]
            for r in found
        }
        figures["held"] = sum(abs(r["error_at_trained_epochs"]) <= TOLERANCE for r in found)
        figures["cases"] = len(found)
        return figures

    return run
