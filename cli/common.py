"""What the command groups share: the one-line failure, the database, option types, progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from sqlalchemy import Engine
from tqdm import tqdm

from services.access import ReadOnlyError
from services.jobs.run_owners import recover_stale_runs, stopped_server_jobs
from storage import DataHome, DataHomeError, StorageError, open_engine
from storage.db import disk_full

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RunArgument = Annotated[int, typer.Argument(help="Run id.")]
EpochsOption = Annotated[int | None, typer.Option(help="Override the epochs.")]
SeedOption = Annotated[int | None, typer.Option(help="Override the seed.")]
DeviceOption = Annotated[
    str, typer.Option(help="auto, cpu, cuda or cuda:N (auto: CUDA when this machine has it).")
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(
        help="fp32 or bf16 (autocast on the training steps; faster on GPUs and on CPUs with "
        "bfloat16 units). Default: the config's (fp32)."
    ),
]
SummaryJsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
BaselinesOption = Annotated[
    str,
    typer.Option(help="Baselines judged beside the model: 'all', 'none' or a comma list."),
]


def fail(message: str) -> typer.Exit:
    """Print ``message`` in red on stderr; the caller raises the returned exit (code 1)."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def chosen_device(name: str) -> str:
    """The ``--device`` a training command was given, resolved once before any work: 'cpu' or
    'cuda[:N]'; an unusable one stops the command with the reason."""
    from core.devices import DeviceError, resolve_device  # torch: only commands that train

    try:
        return str(resolve_device(name))
    except DeviceError as err:
        raise fail(str(err)) from None


def note_precision(precision: str, device: str) -> None:
    """Say on stderr when bf16 was asked for on a device that only emulates it (slower than
    fp32 there); the run goes on as asked."""
    import torch

    from core.devices import bf16_is_native

    if precision == "bf16" and not bf16_is_native(torch.device(device)):
        typer.secho(
            f"Note: {device} has no bfloat16 units (AVX512-BF16 / AMX, or a GPU with bf16); "
            "torch emulates bf16 there, which is slower than fp32.",
            err=True,
        )


def chosen_baselines(text: str) -> list[str]:
    """``--baselines`` as names: 'all', 'none' or a comma list of known baselines."""
    from core.market.evaluation import BASELINES

    chosen = {"all": list(BASELINES), "none": []}.get(
        text.strip(), [b.strip() for b in text.split(",")]
    )
    unknown = [b for b in chosen if b not in BASELINES]
    if unknown:
        raise fail(f"Unknown baseline {unknown[0]!r}; known: {', '.join(BASELINES)}, none.")
    return chosen


@contextmanager
def database() -> Iterator[tuple[DataHome, Engine]]:
    """The data home and an engine on its database, disposed on the way out, error or not.

    A DataHomeError or StorageError, opening or inside the block, becomes the red one-line
    failure, and so does a full disk. Leave the block before printing or exec'ing: DuckDB
    lets one process hold the file.
    """
    try:
        home = DataHome.from_env().ensure()
        engine = open_engine(home.database_url)
        try:
            recover_stale_runs(engine=engine)  # runs a killed command left 'running'
            recover_stopped_server_jobs(engine=engine, home=home)  # and a stopped server
            yield home, engine
        finally:
            engine.dispose()
    except (DataHomeError, StorageError, ReadOnlyError) as err:
        raise fail(str(err)) from None
    except Exception as err:
        if disk_full(err):
            raise fail(no_space_sentence()) from None
        raise


def recover_stopped_server_jobs(*, engine: Engine, home: DataHome) -> list[int]:
    """Mark interrupted the jobs a stopped server left 'running' whose worker is gone too,
    as the next server would (``services.jobs.manager.JobManager.recover``: what the worker wrote
    is ingested first, and the job can be resumed); returns those marked."""
    left = stopped_server_jobs(engine=engine, home=home)
    if not left:
        return []
    from services.jobs.manager import JobManager  # heavy: only when a server left such a job

    return JobManager(engine=engine, home=home).recover(only=left)


def no_space_sentence() -> str:
    """What a command says when the disk it writes to is full."""
    try:
        where = f" of the data home ({DataHome.from_env().root})"
    except DataHomeError:
        where = ""
    return (
        f"No space left on the disk{where}: free some space, or set TRENDLAB_HOME to a folder "
        "on a larger disk, and run the command again."
    )


def training_overrides(
    epochs: int | None, seed: int | None, precision: str | None = None
) -> dict[str, int | str]:
    """The --epochs, --seed and --precision a user gave, to lay over the config file's."""
    given = (("epochs", epochs), ("seed", seed), ("precision", precision))
    return {k: v for k, v in given if v is not None}


def print_training_summary(run_id: int, summary: dict[str, Any], *, as_json: bool) -> None:
    """Warn when a kept run's test evaluation failed, then print the summary as JSON or its
    one-line headline (the caller adds its details after the headline)."""
    if "evaluation_error" in summary:
        typer.secho(
            f"Run {run_id} trained and was kept, but its test evaluation failed: "
            f"{summary['evaluation_error']} (try `trendlab evaluate {run_id}`).",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if as_json:
        typer.echo(json.dumps({"run_id": run_id, **summary}, indent=2, default=str))
    else:
        typer.echo(f"Run {run_id} {summary['stopped_because']} after {summary['epochs']} epochs.")


class ProgressPrinter:
    """Trainer callback: a progress bar on stderr (epochs, batches, loss, ETA) and one line
    per epoch with the validation figure the trainer watches. stdout stays free, so with
    --json it holds the JSON alone; --quiet switches both off."""

    def __init__(self, enabled: bool = True, label: str = "training") -> None:
        self.enabled, self.label = enabled, label
        self.bar: tqdm | None = None
        self.trainer: Any = None

    def on_batch_end(self, trainer: Any, step: int, components: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.bar is not None and self.trainer is not trainer:  # the next fold's training
            self.close()
        if self.bar is None:
            self.trainer = trainer
            batches = trainer.batches_per_epoch
            self.bar = tqdm(
                total=trainer.epochs * batches,
                initial=trainer.epoch * batches,  # a resumed run starts where it stopped
                desc=self.label,
                unit="batch",
                file=sys.stderr,
                mininterval=0.5,
                dynamic_ncols=True,
            )
        self.bar.update(1)
        if "total" in components:
            self.bar.set_postfix(loss=f"{components['total']:.4f}", refresh=False)

    def on_epoch_end(self, trainer: Any, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        watched = getattr(trainer, "monitor", "val/total")
        if watched == "val/total":  # market models: also the first horizon's correlation
            watched = next((k for k in record if k.startswith("val/corr_")), watched)
        line = (
            f"epoch {int(record['epoch']):3d}/{trainer.epochs}  train {record['train/total']:.4f}"
            f"  val {record['val/total']:.4f}  {watched.removeprefix('val/')} "
            f"{record.get(watched, 0):.3f}{'  best' if record.get('best') else ''}"
        )
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            typer.echo(line, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar or epoch lines on stderr.")
]
