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


@case(
    "data.parquet_bomb_refused",
    repeats=3,
    description=(
        "a 450 kB Parquet of 1.9M rows x 7 dictionary-encoded 300-character strings (4 GB "
        "once decoded), imported as prices: refused from its metadata before decoding"
    ),
    target="under 10 s and 500 MB (issue 41; it took 98 s and 5 GB)",
)
def parquet_bomb(scratch: Path) -> Timed:
    from core.import_problems import ImportFailed
    from core.market.importers import import_market
    from tests.core.test_table_files import _repeated_strings_parquet

    columns = ["date", "ticker", "open", "high", "low", "close", "volume"]
    bomb = _repeated_strings_parquet(scratch / "bomb.parquet", 1_900_000, columns, 300)

    def refuse() -> dict[str, float]:
        try:
            import_market([bomb])
        except ImportFailed as failure:
            return {"problems": len(failure.problems), "file_kb": bomb.stat().st_size / 1024}
        raise AssertionError("the bomb was imported")

    return refuse


@case(
    "data.universe_500x10y_end_to_end",
    repeats=1,
    description=(
        "a generated universe shaped like a real download (bench.universe_files: 500 tickers "
        "x 10 years, one CSV per ticker, late listings, early delistings, 8 short histories, "
        "repeated, zero, empty and high-below-low rows) through the CLI, each step a fresh "
        "process (bench.universe_scale): import as the files come, default dual-tower "
        "training with its evaluation, the estimate shown before it, `trendlab evaluate RUN` "
        "of the stored run; beside them the path before issue 37: --strict import, batch 32 "
        "for 100 epochs (estimated), the evaluation refitting every baseline"
    ),
    target=(
        "import + build + training + evaluation under 15 min and 4 GB peak, estimate within "
        "25 %, evaluate RUN under 10 s"
    ),
)
def universe_end_to_end(scratch: Path) -> Timed:
    from bench.universe_scale import measure

    def run() -> dict[str, float]:
        found = measure(universe="generated", keep=None)
        steps = {s["step"].split(" (")[0].split(",")[0]: s for s in found["steps"]}
        seconds = found["run"]["seconds"]
        return {
            "import_s": steps["import"]["seconds"],
            "import_peak_gb": steps["import"]["peak_gb"],
            "train_and_evaluate_s": steps["train dual_tower"]["seconds"],
            "train_peak_gb": steps["train dual_tower"]["peak_gb"],
            "training_s": seconds["training"],
            "evaluation_s": seconds.get("evaluation", float("nan")),
            "epochs": found["run"]["epochs"],
            "estimate_s": found["estimate"]["seconds"],
            "estimate_error_pct": 100 * found["estimate_error"],
            "import_to_evaluated_min": found["import_to_evaluated_s"] / 60,
            "peak_gb": found["peak_gb"],
            "evaluate_stored_s": steps["evaluate RUN"]["seconds"],
            "evaluate_cached_baselines_s": steps["evaluate RUN --cost-bps 9"]["seconds"],
            "before_evaluate_refit_s": steps["evaluate RUN --cost-bps 8"]["seconds"],
            "before_training_estimate_min": found["estimate_before"]["seconds"] / 60,
        }

    return run
