"""Data-pipeline cases."""

from __future__ import annotations

from pathlib import Path

from bench.harness import Timed, case

TICKERS = 500


@case(
    "data.build_dataset_500x10y",
    repeats=1,
    description=(
        f"synthetic market of {TICKERS} tickers x 10 years: context features from raw "
        "headlines/policy/macro, 62 stock features, trend and relevance labels, oracle join"
    ),
    target="under 60 s and 6 GB on 2 cores",
)
def build_500_tickers(scratch: Path) -> Timed:
    from core.market.sources import build_market_dataset, synthetic_data

    tickers = [f"T{i:03d}" for i in range(TICKERS)]

    def build() -> dict[str, float]:
        import time

        start = time.perf_counter()
        data = synthetic_data(
            tickers, "2014-01-01", "2023-12-31", seed=0, signal=True, horizons=[7, 30]
        )
        generated = time.perf_counter()
        dataset = build_market_dataset(data)
        elapsed = time.perf_counter() - generated
        return {
            "input_rows": len(data.prices),
            "headlines": len(data.headlines),
            "generate_s": generated - start,
            "build_s": elapsed,
            "rows_per_s": len(data.prices) / elapsed,
            "output_rows": len(dataset),
        }

    return build
