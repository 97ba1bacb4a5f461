"""Training beside other work on the same cores: a CLI run and a server job at once, and one
CLI run beside two processes doing torch matrix products, each against the same run alone in
the same case. Measured twice: with OpenMP's idle threads sleeping (``OMP_WAIT_POLICY=PASSIVE``,
what importing ``core`` sets) and spinning (``ACTIVE``, torch's behaviour before issue 26)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Timed, case

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 2
HOG = "import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"
POLICIES = {"passive": "PASSIVE", "spinning": "ACTIVE"}


def _environment(home: Path, policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRENDLAB_DB_URL"}
    return {**env, "TRENDLAB_HOME": str(home), "OMP_WAIT_POLICY": policy}


def _store_dataset(home: Path) -> None:
    """A data home holding a synthetic market dataset (8 tickers x 7 years)."""
    from core.market.config import DataConfig
    from core.market.sources import synthetic_data
    from services.datasets import save_market_dataset
    from storage import DataHome, open_engine

    data_home = DataHome(home).ensure()
    engine = open_engine(data_home.database_url)
    tickers = [f"T{i}" for i in range(8)]
    data = synthetic_data(
        tickers, "2014-01-01", "2020-12-31", seed=5, signal=True, horizons=[7, 30]
    )
    save_market_dataset(engine=engine, name="small", data=data, config=DataConfig(), description="")
    engine.dispose()


def _cli_run(home: Path, policy: str) -> subprocess.Popen:
    """`trendlab train dual_tower --dataset small --epochs 2`, as a user types it."""
    command = [sys.executable, "-m", "cli", "train", "dual_tower", "--dataset", "small"]
    command += ["--epochs", str(EPOCHS), "--quiet"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=_environment(home, policy),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


class _ServerJob:
    """The same training as a server job: submitted to a JobManager whose worker process
    trains it, followed by ticking as the server's job runner does."""

    def __init__(self, home: Path, policy: str) -> None:
        from core.market.models import model_spec
        from services.jobs.manager import JobManager
        from storage import DataHome, open_engine

        os.environ["OMP_WAIT_POLICY"] = policy  # the worker inherits the server's setting
        self.home = DataHome(home).ensure()
        self.engine = open_engine(self.home.database_url)
        self.manager = JobManager(engine=self.engine, home=self.home)
        spec = model_spec("dual_tower")
        training = spec.training_config_class.from_dict({"epochs": EPOCHS}, partial=True)
        self.job = self.manager.submit_training(
            model_name=spec.name,
            dataset_name="small",
            training=training,
            model_config=spec.config_class(),
        )
        self.manager.tick()  # the worker starts now

    def finished(self) -> bool:
        from storage.models import JobStatus
        from storage.repository import get_job, session_scope

        self.manager.tick()
        with session_scope(self.engine) as session:
            status = JobStatus(get_job(session=session, job_id=self.job).status)
        if status.finished and status is not JobStatus.SUCCEEDED:
            raise RuntimeError(f"the benchmark job ended {status.value}")
        return status.finished

    def close(self) -> None:
        self.engine.dispose()


def _wait(cli: subprocess.Popen | None, job: _ServerJob | None) -> dict[str, float]:
    """Seconds until each given run finished, polled every 0.2 s."""
    started, ended = time.perf_counter(), {}
    while len(ended) < (cli is not None) + (job is not None):
        if cli is not None and "cli" not in ended and cli.poll() is not None:
            if cli.returncode != 0:
                raise RuntimeError(f"the benchmark CLI run failed: {cli.stderr.read()[-2000:]}")
            ended["cli"] = time.perf_counter() - started
        if job is not None and "job" not in ended and job.finished():
            ended["job"] = time.perf_counter() - started
        time.sleep(0.2)
    return ended


def _hogs(policy: str) -> list[subprocess.Popen]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    return [
        subprocess.Popen([sys.executable, "-c", HOG], env=env, stdout=subprocess.DEVNULL)
        for _ in range(2)
    ]


@case(
    "models.concurrent_training",
    repeats=1,
    description=(
        f"`trendlab train dual_tower --epochs {EPOCHS}` (8 synthetic tickers x 7 years, "
        "training then its evaluation) alone, beside the same training as a server job, and "
        "beside two processes doing 1024^2 torch matrix products on torch's default threads; "
        "each run's time over its time alone, with idle OpenMP threads sleeping (passive, "
        "Trendlab's setting) and spinning (torch's default before issue 26)"
    ),
    target="passive: a pair each at most 2.2x alone, beside the products at most 3.3x",
)
def concurrent_training(scratch: Path) -> Timed:
    homes = {name: scratch / name for name in ("cli", "server")}
    for home in homes.values():
        _store_dataset(home)

    def measure() -> dict[str, float]:
        figures: dict[str, float] = {}
        for label, policy in POLICIES.items():
            alone_cli = _wait(_cli_run(homes["cli"], policy), None)["cli"]
            job = _ServerJob(homes["server"], policy)
            alone_job = _wait(None, job)["job"]
            job.close()
            job = _ServerJob(homes["server"], policy)
            pair = _wait(_cli_run(homes["cli"], policy), job)
            job.close()
            hogs = _hogs(policy)
            try:
                beside = _wait(_cli_run(homes["cli"], policy), None)["cli"]
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            figures.update(
                {
                    f"{label}_alone_cli_s": alone_cli,
                    f"{label}_alone_job_s": alone_job,
                    f"{label}_pair_cli_x": pair["cli"] / alone_cli,
                    f"{label}_pair_job_x": pair["job"] / alone_job,
                    f"{label}_beside_products_x": beside / alone_cli,
                }
            )
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return figures

    return measure


STEP_LOOP = """
import os, sys, time
from itertools import islice
import core
import torch
from bench.cases_models import _dataset
from core.market.config import DataConfig
from core.market.models import create_model, model_spec
from core.market.training import build_loaders
from core.step_timer import StepTimer
from core.trainer import Trainer
from core.optimizers import create_optimizer

name, batch, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
spec = model_spec(name)
training = spec.training_config_class.from_dict({"batch_size": batch}, partial=True)
loaders = build_loaders(spec, _dataset(), data=DataConfig(), training=training, seed=0)
torch.manual_seed(0)
model = create_model(name)
trainer = Trainer(model, spec.make_loss(None, loaders.horizons),
                  create_optimizer(model, training.optimizer), inputs=spec.inputs,
                  settings=training)
trainer.train_epoch(islice(loaders.train, 3))
trainer.timer = timer = StepTimer()
trainer.train_epoch(islice(loaders.train, steps))
print(steps * batch / sum(timer.seconds.values()))
"""
SETTINGS = {"passive_1": ("PASSIVE", 1), "passive_2": ("PASSIVE", 2), "spinning_2": ("", 2)}
STEPS = {("dual_tower", 32): 300, ("dual_tower", 1024): 30, ("lstm_attention", 32): 60}


def _samples_per_s(name: str, batch: int, policy: str, threads: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}  # "" leaves libgomp's default spin
    done = subprocess.run(
        [sys.executable, "-c", STEP_LOOP, name, *map(str, (batch, threads, STEPS[name, batch]))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


@case(
    "models.thread_settings",
    repeats=1,
    description=(
        "training samples/s through the Trainer (current layers) in a fresh process per "
        "setting: OpenMP threads sleeping when idle with 1 and 2 torch threads, and spinning "
        "(libgomp's default) with 2; on a quiet machine and beside two processes doing 1024^2 "
        "matrix products on torch's default threads; dual tower at batch 32 and 1024, LSTM "
        "at batch 32"
    ),
    target="the setting Trendlab ships is within 10 % of the best on each line",
)
def thread_settings(scratch: Path) -> Timed:
    def measure() -> dict[str, float]:
        figures: dict[str, float] = {}
        for load in ("quiet", "busy"):
            hogs = _hogs("") if load == "busy" else []
            try:
                for name, batch in STEPS:
                    for label, (policy, threads) in SETTINGS.items():
                        rate = _samples_per_s(name, batch, policy, threads)
                        figures[f"{load}_{name}_b{batch}_{label}_per_s"] = rate
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
        return figures

    return measure
