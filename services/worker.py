"""A training worker: one OS process per job, which never opens the database.

    python -m services.worker JOB_DIR

``JOB_DIR`` holds ``job.json`` (the run's inputs) and ``dataset.parquet``, both written by
the server. The worker trains with ``services.runs.train_run`` and appends one JSON object per
line to ``events.jsonl``: ``started``, ``progress`` (every few batches), ``epoch`` (the
trainer's record), then ``finished`` (with the summary) or ``failed`` (with the traceback).
The server ingests the file; a ``cancel`` file in ``JOB_DIR`` asks the worker to stop, which
it notices within one training batch.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

EVENTS = "events.jsonl"
CANCEL = "cancel"
PROGRESS_EVERY_S = 0.5


class EventLog:
    """Appends events as JSON lines, flushed at once so the server sees them promptly."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("a", encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> None:
        fields = {"type": kind, "time": time.time(), **fields}
        self.handle.write(json.dumps(fields, default=str) + "\n")
        self.handle.flush()


class ProgressEvents:
    """Trainer callback: progress (epoch, batch, ETA) and every epoch record as events.

    The ETA counts the batches left from where this process started, so a job resumed at
    epoch 10 of 12 is two epochs from the end, at the pace measured since it resumed."""

    def __init__(self, log: EventLog, epochs: int, batches: int) -> None:
        self.log, self.epochs, self.batches = log, epochs, batches
        self.started = time.time()
        self.last = 0.0
        self.done = 0

    def on_batch_end(self, trainer: Any, step: int, components: dict[str, float]) -> None:
        self.done += 1
        now = time.time()
        if now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        left = (self.epochs - trainer.epoch - 1) * self.batches + max(self.batches - step - 1, 0)
        rate = self.done / max(now - self.started, 1e-9)
        self.log.write(
            "progress",
            epoch=trainer.epoch + 1,
            epochs=self.epochs,
            batch=step + 1,
            batches=self.batches,
            eta_s=max(left, 0) / rate if rate > 0 else None,
            loss=components.get("total"),
        )

    def on_epoch_end(self, trainer: Any, record: dict[str, float]) -> None:
        self.log.write("epoch", record=record)


def main(job_dir: Path) -> int:
    import pandas as pd

    from services.runs import RunInputs, train_run

    log = EventLog(job_dir / EVENTS)
    log.write("started", pid=os.getpid())
    try:
        spec = json.loads((job_dir / "job.json").read_text())
        if "recommender" in spec:
            summary = _train_recommender(job_dir, spec["recommender"], log)
            log.write("finished", summary=summary)
            return 0
        inputs = RunInputs(**spec["inputs"])
        frame = pd.read_parquet(job_dir / "dataset.parquet")
        epochs = int(inputs.training["epochs"])
        batch_size = int(inputs.training["batch_size"])
        batches = max(1, int(len(frame) * 0.7) // batch_size)  # an estimate for the ETA
        summary = train_run(
            inputs,
            frame,
            callbacks=[ProgressEvents(log, epochs, batches)],
            should_stop=lambda: (job_dir / CANCEL).exists(),
            device=spec.get("device"),
        )
    except BaseException:  # report everything, including KeyboardInterrupt
        log.write("failed", error=traceback.format_exc(limit=20))
        return 1
    log.write("finished", summary=summary)
    return 0


def _train_recommender(job_dir: Path, spec: dict[str, Any], log: EventLog) -> dict[str, Any]:
    import pandas as pd

    from core.recsys.config import TwoTowerConfig
    from core.recsys.synthetic import RecsysData
    from services.recsys import train_recsys_files

    parts = {
        p: pd.read_parquet(job_dir / f"{p}.parquet") for p in ("users", "items", "interactions")
    }
    data = RecsysData(parts["users"], parts["items"], parts["interactions"], spec["recipe"])
    config = TwoTowerConfig.from_dict(spec["config"])
    pairs = len(data.interactions) * 0.7 * (1 + config.negatives_per_positive)
    batches = max(1, int(pairs) // config.batch_size)  # an estimate for the ETA
    return train_recsys_files(
        data,
        config,
        Path(spec["run_dir"]),
        callbacks=[ProgressEvents(log, config.epochs, batches)],
        should_stop=lambda: (job_dir / CANCEL).exists(),
    )


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
