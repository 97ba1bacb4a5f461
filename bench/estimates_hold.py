"""Does the Train page's estimate hold? (issue 39)

    python -m bench.estimates_hold                       # every case below
    python -m bench.estimates_hold --only demo --json FILE

For the quick and standard presets of the dual tower and the LSTM with attention, on the demo
market (the one ``make run`` stores) and on the shared 100-stock S&P 500 sample, each in a
fresh data home: the estimate the Train page shows (``services.registry.estimate_training``),
then the job the page starts (``JobManager.submit_training`` with every baseline), timed from
the click to the job's end as the jobs table shows it: the worker's start-up, the data it
loads, training and the evaluation. The estimate is an upper bound in epochs (early stopping
may end a run sooner), so it is compared twice: as shown, and for the epochs the run trained
(``Estimate.for_epochs``), which is what its per-epoch, start-up and evaluation parts claim.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500-sample" / "prices"
MODELS = ("dual_tower", "lstm_attention")
PRESETS = ("quick", "standard")
DATASETS = ("demo", "sample")
TOLERANCE = 0.25


def _home(dataset: str) -> Path:
    """A fresh data home holding ``dataset`` (the demo market, or the sample imported through
    the CLI as a user would)."""
    home = Path(tempfile.mkdtemp(prefix=f"estimates-{dataset}-"))
    env = {**os.environ, "TRENDLAB_HOME": str(home)}
    env.pop("TRENDLAB_DB_URL", None)
    if dataset == "demo":
        code = (
            "from services.database import data_home, database;"
            "from services.demo import store_demo_datasets;"
            "store_demo_datasets(engine=database(data_home()))"
        )
        command = [sys.executable, "-c", code]
    else:
        files = sorted(glob.glob(str(SAMPLE / "*.csv")))
        command = [sys.executable, "-m", "cli", "data", "import", "sample", "--prices", *files]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return home


def _one(model: str, preset: str, dataset: str) -> dict[str, Any]:
    """The estimate, then the job, in this process pointed at the dataset's data home."""
    from services.database import data_home, database
    from services.jobs.manager import JobManager
    from services.registry import estimate_training, preset_configs
    from storage.repository import get_job, get_run, session_scope

    home = data_home()
    engine = database(home)
    config, training = preset_configs(model, preset)
    started = time.perf_counter()
    estimate = estimate_training(
        engine=engine,
        model_name=model,
        dataset_name=dataset,
        model_config=config,
        training=training,
    )
    estimating = time.perf_counter() - started
    manager = JobManager(engine=engine, home=home)
    started = time.perf_counter()
    job_id = manager.submit_training(
        model_name=model, dataset_name=dataset, training=training, model_config=config
    )
    while True:
        manager.tick()
        with session_scope(engine) as session:
            job = get_job(session=session, job_id=job_id)
            status, run_id = job.status, job.run_id
        if status not in ("queued", "running"):
            break
        time.sleep(0.2)
    actual = time.perf_counter() - started
    with session_scope(engine) as session:
        summary = dict(get_run(session=session, run_id=run_id).summary_metrics)
    epochs = int(summary.get("epochs", 0))
    trained = estimate.for_epochs(epochs)
    seconds = summary.get("seconds", {})
    return {
        "model": model,
        "preset": preset,
        "dataset": dataset,
        "status": status,
        "actual_s": round(actual, 1),
        "training_s": seconds.get("training"),
        "evaluation_s": seconds.get("evaluation"),
        "epochs": epochs,
        "epochs_allowed": estimate.epochs,
        "stopped_because": summary.get("stopped_because"),
        "estimate_s": round(estimate.seconds, 1),
        "estimate_parts_s": {
            "start_up": round(estimate.start_up_seconds, 1),
            "per_epoch": round(estimate.seconds_per_epoch, 2),
            "evaluation": round(estimate.evaluation_seconds, 1),
        },
        "estimate_at_trained_epochs_s": round(trained.seconds, 1),
        "error_at_trained_epochs": round(trained.seconds / actual - 1, 3),
        "error_as_shown": round(estimate.seconds / actual - 1, 3),
        "estimating_s": round(estimating, 1),
        "sentence": estimate.sentence(),
    }


def measure(
    datasets: tuple[str, ...] = DATASETS,
    models: tuple[str, ...] = MODELS,
    presets: tuple[str, ...] = PRESETS,
) -> list[dict[str, Any]]:
    """Every case, printed as it ends; each dataset in a fresh home and a fresh process."""
    found = []
    for dataset in datasets:
        home = _home(dataset)
        for model in models:
            for preset in presets:
                env = {**os.environ, "TRENDLAB_HOME": str(home)}
                env.pop("TRENDLAB_DB_URL", None)
                code = (
                    "import json; from bench.estimates_hold import _one;"
                    f"print(json.dumps(_one({model!r}, {preset!r}, {dataset!r})))"
                )
                done = subprocess.run(
                    [sys.executable, "-c", code], env=env, capture_output=True, text=True
                )
                if done.returncode:
                    raise RuntimeError(f"{model} {preset} {dataset}:\n{done.stderr[-3000:]}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                print(
                    f"{dataset:7} {model:15} {preset:9} actual {row['actual_s']:7.1f} s  "
                    f"estimate {row['estimate_s']:7.1f} s ({100 * row['error_as_shown']:+.0f} %)"
                    f"  at its {row['epochs']}/{row['epochs_allowed']} epochs "
                    f"{row['estimate_at_trained_epochs_s']:7.1f} s "
                    f"({100 * row['error_at_trained_epochs']:+.0f} %)",
                    flush=True,
                )
                found.append(row)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--presets", nargs="*", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--json", default=None, help="write every figure to this file")
    args = parser.parse_args()
    found = measure(tuple(args.only), tuple(args.models), tuple(args.presets))
    held = sum(abs(row["error_at_trained_epochs"]) <= TOLERANCE for row in found)
    print(f"within {TOLERANCE:.0%} at the trained epochs: {held} of {len(found)}")
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
