"""`python -m bench.recbole_bpr [--seeds 0 1 2]`: our BPR beside RecBole 1.2.1's BPR on the
same split of the real online-retail purchase log (``../shared/data/online-retail``).

The split is ours (per-user random 80/10/10, RecBole's ``RS`` rounding, one seed each), handed
to RecBole as benchmark files (``retail.train.inter``, ``.valid.inter``, ``.test.inter``), so
both engines learn from the same training pairs, stop on the same validation users and are
judged on the same test users: full ranking, training and validation items masked, NDCG@10.
RecBole runs with its BPR defaults (64 factors, Adam at 0.001, batches of 2,048, one uniform
negative, validation every epoch, stopping after 10 without progress), validated on NDCG@10.

RecBole is not a project dependency: ``make recbole`` puts ``recbole==1.2.1`` in its own
virtual environment (``.recbole``, with the project's torch pin), or ``RECBOLE_PYTHON``
names another interpreter that has it. Without one, the case reports itself skipped.
Results go to ``bench/recbole_bpr.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.recsys.catalogue import Catalogue
from core.recsys.data import distinct_pairs, split_interactions
from core.recsys.features import RecsysEncoder
from core.recsys.importers import import_recsys
from core.recsys.segments import PRIMARY, Segment
from core.recsys.tuning import fit_bpr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "recbole_bpr.json"
RETAIL = ROOT.parent / "shared" / "data" / "online-retail"
DEFAULT_PYTHON = ROOT / ".recbole" / "bin" / "python"
RUNNER = """
import json, sys
from recbole.quick_start import run_recbole
config = json.loads(sys.argv[1])
result = run_recbole(model="BPR", dataset="retail", config_dict=config, saved=False)
print("RESULT " + json.dumps({k: float(v) for k, v in result["test_result"].items()}))
"""


def recbole_python() -> Path | None:
    """An interpreter with RecBole 1.2.1, or None."""
    named = os.environ.get("RECBOLE_PYTHON")
    candidate = Path(named) if named else DEFAULT_PYTHON
    if not candidate.is_file():
        return None
    found = subprocess.run(
        [str(candidate), "-c", "import recbole; print(recbole.__version__)"],
        capture_output=True,
        text=True,
    )
    return candidate if found.returncode == 0 and found.stdout.strip() == "1.2.1" else None


def write_atomic(split, folder: Path) -> Path:
    """The split as RecBole benchmark files in ``folder/retail``."""
    target = folder / "retail"
    target.mkdir(parents=True, exist_ok=True)
    for part, frame in (("train", split.train), ("valid", split.val), ("test", split.test)):
        seconds = pd.to_datetime(frame["timestamp"]).astype("int64") // 10**9
        table = pd.DataFrame(
            {
                "user_id:token": frame["user_id"],
                "item_id:token": frame["item_id"],
                "timestamp:float": seconds,
            }
        )
        table.to_csv(target / f"retail.{part}.inter", sep="\t", index=False)
    return folder


def run_recbole(python: Path, folder: Path, seed: int) -> dict:
    config = {
        "data_path": str(folder),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["NDCG", "Recall", "Hit"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "seed": seed,
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": str(folder / "saved"),
        "log_wandb": False,
        "worker": 0,
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), "-c", RUNNER, json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"RecBole failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return {**json.loads(line[len("RESULT ") :]), "seconds": time.perf_counter() - started}


def run_ours(data, split, seed: int) -> dict:
    started = time.perf_counter()
    encoder = RecsysEncoder.fit(data.users, data.items, seed=seed)
    catalogue = Catalogue.build(data, encoder)
    train = catalogue.history(split.train).matrix
    validation = Segment(catalogue, split.val, catalogue.matrix(split.train))
    before = pd.concat([split.train, split.val], ignore_index=True)
    test = Segment(catalogue, split.test, catalogue.matrix(before))
    bpr = fit_bpr(train, validation, seed=seed)
    figures = test.metrics(bpr.scores)
    return {
        "ndcg@10": figures[PRIMARY],
        "recall@10": figures["recall@10"],
        "hit@10": figures["hit_rate@10"],
        "epochs": bpr.epochs,
        "settings": bpr.settings,
        "seconds": time.perf_counter() - started,
    }


def measure(seeds: tuple[int, ...] = (0,)) -> dict:
    """Both BPRs per seed on the retail log's random split; RecBole's part ``skipped`` when
    no interpreter has it."""
    python = recbole_python()
    data = import_recsys(
        RETAIL / "interactions.csv", users=RETAIL / "users.csv", items=RETAIL / "items.csv"
    )
    pairs = distinct_pairs(data.interactions)
    result: dict = {"data": "online-retail (real), random 80/10/10 split", "seeds": {}}
    if python is None:
        result["recbole"] = "skipped: no interpreter with recbole 1.2.1 (`make recbole`)"
    for seed in seeds:
        split = split_interactions(pairs, by="random", seed=seed)
        found = {"ours": run_ours(data, split, seed)}
        print(f"seed {seed} ours", found["ours"], flush=True)
        if python is not None:
            with tempfile.TemporaryDirectory() as folder:
                found["recbole"] = run_recbole(python, write_atomic(split, Path(folder)), seed)
            print(f"seed {seed} recbole", found["recbole"], flush=True)
        result["seeds"][seed] = found
    for engine in ("ours", "recbole"):
        values = [s[engine]["ndcg@10"] for s in result["seeds"].values() if engine in s]
        if values:
            result[f"{engine}_ndcg@10"] = [float(np.mean(values)), float(np.std(values))]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    result = measure(tuple(args.seeds))
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "seeds"}, indent=1))


if __name__ == "__main__":
    main()
