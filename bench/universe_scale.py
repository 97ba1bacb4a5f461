"""A real-size stock universe end to end, through the CLI a user types (issue 37).

    python -m bench.universe_scale                      # 500 tickers x 10 years, generated
    python -m bench.universe_scale --universe sample    # the shared 100-stock S&P 500 sample
    python -m bench.universe_scale --lstm --json FILE

Each step is a fresh ``trendlab`` process in a scratch data home; its wall time and peak
memory (the process's own maximum resident set, from ``os.wait4``) are measured:

1. ``data import`` of the price files as they come (``bench.universe_files`` writes the
   generated ones with listing gaps, short histories and the rows real files carry), then the
   same with ``--strict``: the path before issue 37, which refused the universe;
2. the estimate ``trendlab train`` prints before its first step, for the default dual tower,
   and the one for the path before (batch 32 for 100 epochs, ``fit_to_rows: false``);
3. ``train dual_tower`` with the defaults: its training and evaluation seconds as the run
   records them, set beside the estimate;
4. ``evaluate RUN`` of the stored run (read back), and a new question on it
   (``--cost-bps 9``), which computes an evaluation with the baselines read from their
   cache; then the same with the cache emptied: the path before, which refitted them;
5. with ``--lstm``, ``train lstm_attention`` with the defaults.

Figures in docs/data.md ("A universe at full size") and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.universe_files import write_universe

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500-sample" / "prices"
TRENDLAB = [sys.executable, "-m", "cli"]
TODAY = {"batch_size": 32, "epochs": 100, "fit_to_rows": False}
"""Training as it was before issue 37: the configs' values whatever the rows."""


def step(name: str, command: list[str], home: Path) -> dict[str, Any]:
    """Run one CLI command in ``home``; its seconds, peak memory, exit code and output."""
    env = {**os.environ, "TRENDLAB_HOME": str(home)}
    env.pop("TRENDLAB_DB_URL", None)
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(TRENDLAB + command, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    figures = {
        "step": name,
        "command": "trendlab " + " ".join(command),
        "seconds": round(seconds, 1),
        "peak_gb": round(usage.ru_maxrss / 1e6, 2),  # kB on Linux
        "exit": os.waitstatus_to_exitcode(status),
    }
    print(f"{name:46} {seconds:8.1f} s {figures['peak_gb']:6.2f} GB  exit {figures['exit']}")
    return {**figures, "stdout": stdout, "stderr": stderr}


def estimate(home: Path, model: str, dataset: str, training: dict[str, Any]) -> dict[str, Any]:
    """``services.registry.estimate_training`` in a fresh process, as the CLI shows it."""
    code = (
        "import json, sys; from services.database import data_home, database;"
        "from services.registry import estimate_training;"
        "from core.market.models import model_spec;"
        f"spec = model_spec({model!r});"
        f"t = spec.training_config_class.from_dict({training!r}, partial=True);"
        "e = estimate_training(engine=database(data_home()), model_name=spec.name,"
        f" dataset_name={dataset!r}, model_config=spec.config_class(), training=t);"
        "print(json.dumps({'seconds': e.seconds, 'training': e.training_seconds,"
        " 'evaluation': e.evaluation_seconds, 'epochs': e.epochs, 'sizing': e.sizing,"
        " 'sentence': e.sentence(), 'measured': e.measured}))"
    )
    env = {**os.environ, "TRENDLAB_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the estimate failed:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found["took_s"] = round(time.perf_counter() - started, 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--universe", choices=("generated", "sample"), default="generated")
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--lstm", action="store_true", help="also train the LSTM")
    parser.add_argument("--keep", default=None, help="keep the data home in this folder")
    parser.add_argument("--json", default=None, help="write every figure to this file")
    args = parser.parse_args()
    figures = measure(
        universe=args.universe,
        tickers=args.tickers,
        years=args.years,
        lstm=args.lstm,
        keep=Path(args.keep) if args.keep else None,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


def measure(
    *, universe: str, tickers: int = 500, years: int = 10, lstm: bool = False, keep: Path | None
) -> dict[str, Any]:
    """Every step on one universe, printed as it goes; the figures as a dict."""
    scratch = Path(tempfile.mkdtemp(prefix="universe-"))
    home = keep or scratch / "home"
    if universe == "sample":
        files = sorted(glob.glob(str(SAMPLE / "*.csv")))
    else:
        files = [str(p) for p in write_universe(scratch / "prices", tickers=tickers, years=years)]
    name = "universe"
    steps = [
        step("import, as the files come", ["data", "import", name, "--prices", *files], home),
        step(
            "import --strict (the path before)",
            ["data", "import", "strict", "--strict", "--prices", *files],
            home,
        ),
    ]
    imported = steps[0]
    left_out = re.search(r"Left out [^\n]*", imported["stdout"] + imported["stderr"])
    stored = re.search(r"Stored dataset [^\n]*", imported["stdout"] + imported["stderr"])
    refused = (steps[1]["stdout"] + steps[1]["stderr"]).strip().splitlines()
    print(f"  {left_out.group(0) if left_out else 'nothing left out'}")
    print(f"  {stored.group(0) if stored else 'NOT STORED'}")
    print(f"  --strict: {refused[0] if refused else ''}")

    before = estimate(home, "dual_tower", name, TODAY)
    print(f"  the path before (batch 32, 100 epochs): {before['sentence']}")
    new = estimate(home, "dual_tower", name, {})
    print(f"  defaults sized to the rows: {new['sentence']} ({new['took_s']} s to measure)")
    print(f"  {new['sizing']}")
    trained = step(
        "train dual_tower (defaults)", ["train", "dual_tower", "--dataset", name, "--json"], home
    )
    steps.append(trained)
    summary = json.loads(trained["stdout"][trained["stdout"].index("{") :])
    run = int(summary["run_id"])
    actual = summary["seconds"]["training"] + summary["seconds"].get("evaluation", 0.0)
    error = new["seconds"] / actual - 1
    print(
        f"  run {run}: {summary['epochs']} epochs ({summary['stopped_because']}), training "
        f"{summary['seconds']['training']:.0f} s + evaluation "
        f"{summary['seconds'].get('evaluation', 0):.0f} s = {actual:.0f} s; estimate "
        f"{new['seconds']:.0f} s ({error:+.0%})"
    )
    steps.append(step("evaluate RUN (stored)", ["evaluate", str(run)], home))
    steps.append(
        step(
            "evaluate RUN --cost-bps 9 (cached baselines)",
            ["evaluate", str(run), "--cost-bps", "9"],
            home,
        )
    )
    shutil.rmtree(home / "baselines", ignore_errors=True)
    steps.append(
        step(
            "evaluate RUN --cost-bps 8 (refit: path before)",
            ["evaluate", str(run), "--cost-bps", "8"],
            home,
        )
    )
    if lstm:
        sequence = step(
            "train lstm_attention (defaults)",
            ["train", "lstm_attention", "--dataset", name, "--json"],
            home,
        )
        steps.append(sequence)
        if sequence["exit"] == 0:
            done = json.loads(sequence["stdout"][sequence["stdout"].index("{") :])
            print(f"  LSTM: {done['epochs']} epochs, {done['seconds']}")
    import_to_evaluated = steps[0]["seconds"] + trained["seconds"]
    peak = max(steps[0]["peak_gb"], trained["peak_gb"])
    print(
        "import + build + default dual-tower training + evaluation: "
        f"{import_to_evaluated / 60:.1f} min, peak {peak:.2f} GB"
    )
    if not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    kept = [{k: v for k, v in s.items() if k not in ("stdout", "stderr")} for s in steps]
    return {
        "universe": universe,
        "files": len(files),
        "steps": kept,
        "estimate_before": before,
        "estimate": new,
        "run": {
            k: summary.get(k) for k in ("epochs", "stopped_because", "seconds", "sizing", "verdict")
        },
        "estimate_error": error,
        "import_to_evaluated_s": import_to_evaluated,
        "peak_gb": peak,
    }


if __name__ == "__main__":
    main()
