"""The recommender's old dense path, measured beside the new one in the same benchmark run.

The old code is read from git (``DENSE_COMMIT``, the last commit before ID embeddings and
sparse histories) into a temporary package, ``dense_recsys``, and run in a child process on
the same imported data, with one torch thread like the new path, one-hot identity features
on (``id_features: true``: the old way to learn ids, the new path's ``id_embeddings``) and
otherwise the defaults. The parent watches the child's resident memory (``/proc``) and
stops it at ``memory_cap_mb`` or ``time_cap_s``; what it had done by then is kept, and the
rest projected from it:

- ``dense_prep_s``: split, encoding and the dense pair tensors (the history rows of every
  pair, items wide);
- ``dense_step_ms``: one optimisation step at the old widths, timed on 30 steps before the
  real run (so there is a figure even when the pairs never fit in memory);
- ``dense_projected_s``: prep + epochs x steps per epoch x step time, for as many epochs as
  the new path ran (validation and the baselines not counted: a lower bound);
- ``dense_pair_inputs_mb``: the pair tensors' size by arithmetic (pairs x (items + user
  width + item width) x 4 bytes), what the old path must hold at once.

``python -m bench.recsys_dense child FOLDER SHAPE`` is the child.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DENSE_COMMIT = "8cd98f6a31448c8870555854f25c9f39f6b13b50"
PACKAGE = "dense_recsys"


def extract(folder: Path) -> Path:
    """Write the old ``core/recsys`` as the package ``dense_recsys`` under ``folder``."""
    target = folder / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", DENSE_COMMIT, "core/recsys/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in names:
        text = subprocess.run(
            ["git", "show", f"{DENSE_COMMIT}:{name}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        text = re.sub(r"\bcore\.recsys\b", PACKAGE, text)
        (target / Path(name).name).write_text(text)
    return folder


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def measure(
    folder: Path, shape: str, *, epochs: int, memory_cap_mb: float, time_cap_s: float
) -> dict[str, float]:
    """Run the old path on ``folder/shape.*`` in a child; its figures and projections."""
    events: list[dict[str, Any]] = []
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.recsys_dense", "child", str(folder), shape],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )

    def read() -> None:
        for line in child.stdout:  # type: ignore[union-attr]
            if line.startswith("{"):
                events.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak, stopped = 0.0, 0.0
    while child.poll() is None:
        peak = max(peak, _rss_mb(child.pid))
        elapsed = time.perf_counter() - started
        if peak > memory_cap_mb or elapsed > time_cap_s:
            stopped = 1.0 if peak > memory_cap_mb else 2.0
            os.killpg(child.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    child.wait()
    reader.join(timeout=5)
    return _figures(events, peak, stopped, epochs, time.perf_counter() - started)


def _figures(
    events: list[dict[str, Any]], peak: float, stopped: float, epochs: int, wall: float
) -> dict[str, float]:
    by_stage = {e["stage"]: e for e in events if "stage" in e}
    probe = by_stage.get("probe", {})
    pairs = by_stage.get("pairs", {})
    figures = {
        "dense_stopped": stopped,  # 0 finished, 1 memory cap, 2 time cap
        "dense_wall_s": wall,
        "dense_peak_rss_mb": peak,
        "dense_step_ms": probe.get("step_ms", float("nan")),
        "dense_pairs": pairs.get("pairs", float("nan")),
        "dense_pair_inputs_mb": pairs.get("pair_inputs_mb", float("nan")),
    }
    built = by_stage.get("built")
    steps = pairs.get("steps", float("nan"))
    done = [e for e in events if "epoch_s" in e]
    step_s = probe.get("step_ms", float("nan")) / 1000
    if built is not None:
        figures["dense_prep_s"] = built["t"]
    if done:
        figures["dense_epochs_done"] = float(len(done))
        figures["dense_epoch_s"] = sum(e["epoch_s"] for e in done) / len(done)
    else:
        figures["dense_epoch_s"] = steps * step_s
    prep = figures.get("dense_prep_s", pairs.get("t", 0.0))
    figures["dense_projected_s"] = prep + epochs * figures["dense_epoch_s"]
    if "finished" in by_stage:
        figures["dense_total_s"] = by_stage["finished"]["t"]
        figures["dense_ndcg@10"] = by_stage["finished"]["ndcg"]
    return figures


def child(folder: Path, shape: str) -> None:
    """The old path on the shape's atomic files, printing JSON lines as it goes."""
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()

    def emit(**fields: Any) -> None:
        print(json.dumps({"t": time.perf_counter() - started, **fields}), flush=True)

    from core.recsys.importers import import_recsys

    data = import_recsys(folder / f"{shape}.inter", positive_threshold=4)
    emit(stage="imported")
    with tempfile.TemporaryDirectory() as scratch:
        sys.path.insert(0, str(extract(Path(scratch))))
        import dense_recsys.training as old  # type: ignore[import-not-found]
        from dense_recsys.config import recsys_configs  # type: ignore[import-not-found]

        config, training = recsys_configs({"id_features": True})
        _probe(old, data, config, training, emit)
        build = old.pair_batches

        def pair_batches(catalogue, pairs, history, **kwargs):
            if kwargs.get("shuffle"):
                width = catalogue.user_input_dim + catalogue.item_features.shape[1]
                emit(
                    stage="pairs",
                    pairs=len(pairs),
                    steps=-(-len(pairs) // kwargs["batch_size"]),
                    pair_inputs_mb=len(pairs) * (len(catalogue.item_ids) + width) * 4 / 2**20,
                )
            loader = build(catalogue, pairs, history, **kwargs)
            if not kwargs.get("shuffle"):
                emit(stage="built")
            return loader

        class Epochs:
            def on_batch_end(self, trainer: Any, step: int, components: dict) -> None:
                pass

            def on_epoch_end(self, trainer: Any, record: dict) -> None:
                emit(epoch=record["epoch"], epoch_s=record["seconds"])

        old.pair_batches = pair_batches
        result = old.train_recommender(data, config, training, callbacks=[Epochs()])
        emit(stage="finished", ndcg=result.evaluation["all_users"]["two_tower"]["ndcg@10"])


def _probe(old: Any, data: Any, config: Any, training: Any, emit: Any) -> None:
    """30 optimisation steps of the old model at the widths this catalogue gives it, on
    random inputs: the step time, without the memory the real pair tensors need."""
    import torch

    encoder = old.RecsysEncoder.fit(data.users, data.items)
    catalogue = old.Catalogue.build(data, encoder, True)
    user_dim, item_dim = catalogue.user_input_dim, catalogue.item_features.shape[1]
    model = old.TwoTowerRecommender(config, user_dim, item_dim)
    optimizer = old.create_optimizer(model, training.optimizer)
    loss_fn = old.WeightedBCELoss()
    size = training.batch_size
    batch = {
        "label": torch.rand(size),
        "weight": torch.ones(size),
        "item_index": torch.zeros(size, dtype=torch.long),
    }
    user, item = torch.rand(size, user_dim), torch.rand(size, item_dim)
    for step in range(35):
        if step == 5:
            started = time.perf_counter()
        loss, _ = loss_fn(model(user, item), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    emit(
        stage="probe",
        step_ms=(time.perf_counter() - started) / 30 * 1000,
        widths=[user_dim, item_dim],
    )


if __name__ == "__main__":
    if sys.argv[1] == "child":
        child(Path(sys.argv[2]), sys.argv[3])
