"""One model-agnostic trainer: early stopping, clipping, schedules, checkpoints, callbacks.

The trainer knows nothing about a particular model: it passes the batch keys named in
``inputs`` to ``model.forward`` and hands the outputs and the batch to the loss, which
returns the total and its named components. A model with a ``regularization()`` method
(named, weighted terms of its weights alone, like the dual tower's input gates) has those
added to the training loss and recorded beside the components; validation reports the loss
alone, so train/total and val/total stay comparable. With ``ema_decay`` set, an exponential moving
average of the weights is what gets validated, kept as best and left in the model. The
dashboard, the job runner and the CLI watch through callbacks and stop a run through
``should_stop``; core/ imports neither.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from core.batches import Windows
from core.checkpoints import save_checkpoint
from core.devices import autocast_dtype
from core.step_timer import SectionTimer

Batch = dict[str, torch.Tensor]
Record = dict[str, float]
MetricsFn = Callable[[dict[str, torch.Tensor], Batch], dict[str, float]]


class TrainingError(RuntimeError):
    """Training cannot go on: non-finite input or loss, an empty segment, a bad resume."""


_FLUSHING = [0]


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Values below float32's smallest normal number (1.2e-38) flushed to zero inside.
    Adam's moments and weights that the input gates' L1 drives to zero otherwise turn
    denormal, and every product with one takes a slow path on the CPU: a dual-tower run on
    500 tickers slowed from 46 to 15 steps a second over its epochs (issue 37). Only inside
    (nested uses share it): the setting is the process's, and other code (hypothesis) needs
    denormals."""
    _FLUSHING[0] += 1
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        _FLUSHING[0] -= 1
        if not _FLUSHING[0]:
            torch.set_flush_denormal(False)


class TrainerSettings(Protocol):
    """What the trainer reads from a training config (every trainer config has these)."""

    epochs: int
    early_stopping_patience: int
    min_delta: float
    max_grad_norm: float


def ema_decay(settings: TrainerSettings) -> float:
    """The settings' weight-averaging decay; configs without the field mean off."""
    return float(getattr(settings, "ema_decay", 0.0))


class Callback(Protocol):
    def on_batch_end(self, trainer: Trainer, step: int, components: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, record: Record) -> None: ...


def phase_teller(callbacks: Iterable[Any]) -> Callable[[str], None]:
    """A function telling every callback that can hear it (an ``on_phase(phase)`` method) that
    a step without epochs begins: preparing the data, evaluating after training."""
    listeners = [c for c in callbacks if hasattr(c, "on_phase")]

    def tell(phase: str) -> None:
        for listener in listeners:
            listener.on_phase(phase)

    return tell


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Fits any registered model; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        inputs: Sequence[str],
        settings: TrainerSettings,
        device: torch.device | str | None = None,
        callbacks: Iterable[Callback] = (),
        metrics: MetricsFn | None = None,
        checkpoint_dir: Path | None = None,
        checkpoint_meta: dict[str, Any] | None = None,
        should_stop: Callable[[], bool] | None = None,
        feature_names: dict[str, list[str]] | None = None,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        monitor: str = "val/total",
        maximize: bool = False,
        timer: SectionTimer | None = None,
    ) -> None:
        # The device the entry point resolved (core.devices.resolve_device); never picked here.
        self.device = torch.device(device or "cpu")
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.inputs = tuple(inputs)
        self.settings = settings
        self.callbacks = list(callbacks)
        self.metrics = metrics
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_meta = checkpoint_meta or {}
        self.should_stop = should_stop or (lambda: False)
        self.feature_names = feature_names or {}
        self.validate = validate
        self.monitor, self.maximize = monitor, maximize
        self.timer = timer  # times each training step's sections (bench/), or None
        # Training steps' forward passes under autocast where the settings ask for bf16; the
        # loss, the backward pass's accumulation, the optimiser and evaluation stay fp32.
        self.autocast = autocast_dtype(getattr(settings, "precision", "fp32"), self.device)
        self.history: list[Record] = []
        self.best_loss = -math.inf if maximize else math.inf  # best value of ``monitor``
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epoch = 0
        self.stopped_because = ""
        self.stop_reason = ""  # set by request_stop
        decay = ema_decay(settings)
        self.ema = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
            if decay > 0
            else None
        )

    def start_from(self, value: float) -> None:
        """Count the model as it is (fitted before the epochs, a warm start) as validated at
        ``value`` of ``monitor``: it is the best (epoch 0) until an epoch beats it."""
        self.best_loss, self.best_epoch = value, 0
        self.best_state = {k: v.detach().clone() for k, v in self.eval_model.state_dict().items()}
        self._save("best")

    def request_stop(self, reason: str) -> None:
        """Stop once the current epoch is validated and saved, ``stopped_because`` = ``reason``
        (a callback's verdict, e.g. "pruned" for a sweep trial worse than its peers)."""
        self.stop_reason = reason

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated and checkpointed: the average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def _forward(self, batch: Batch, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
        return (model or self.model)(*(batch[key] for key in self.inputs))

    def _regularization(self) -> dict[str, torch.Tensor]:
        terms = getattr(self.model, "regularization", None)
        return terms() if callable(terms) else {}

    def _to_device(self, batch: Batch) -> Batch:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def check_finite(self, loader: Any, segment: str) -> None:
        """Refuse NaN or inf inputs, naming the feature, before any step is taken."""
        tensors = getattr(loader, "tensors", None)
        if tensors is None:
            return
        for key in self.inputs:
            values = tensors[key]
            if isinstance(values, Windows):
                values = values.used_rows()
            bad = ~torch.isfinite(values)
            if bad.any():
                column = int(bad.reshape(-1, values.shape[-1]).any(0).nonzero()[0])
                names = self.feature_names.get(key, [])
                name = names[column] if column < len(names) else f"{key}[{column}]"
                raise TrainingError(
                    f"The {segment} segment has NaN or inf in feature {name!r}; "
                    "rebuild the dataset or drop those rows before training."
                )

    def _section(self, name: str) -> AbstractContextManager[None]:
        return self.timer.section(name) if self.timer is not None else nullcontext()

    def _precision(self) -> AbstractContextManager[Any]:
        """Autocast for a training step's forward pass (``precision: bf16``)."""
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def _batches(self, loader: Iterable[Batch]) -> Iterator[Batch]:
        """The loader's batches on the device, the fetch and the copy timed as "data"."""
        iterator = iter(loader)
        while True:
            with self._section("data"):
                batch = next(iterator, None)
                if batch is not None:
                    batch = self._to_device(batch)
            if batch is None:
                return
            yield batch

    def train_step(self, batch: Batch, step: int = 0) -> tuple[dict[str, float], float]:
        """One optimisation step on ``batch`` (already on the device): forward pass and loss
        (under autocast with ``precision: bf16``; the loss then reads the outputs in fp32),
        backward, clipping, the optimiser and the weight average. Returns the loss components
        and the gradient norm before clipping. ``step`` only names the step in errors."""
        with self._section("forward"), self._precision():
            outputs = self._forward(batch)
        with self._section("loss"):
            if self.autocast is not None:
                outputs = {k: v.float() if v.is_floating_point() else v for k, v in outputs.items()}
            loss, components = self.loss_fn(outputs, batch)
            penalties = self._regularization()
            if penalties:
                loss = loss + sum(penalties.values())
                components = {**components, **{k: float(v.detach()) for k, v in penalties.items()}}
        if not torch.isfinite(loss):
            raise TrainingError(
                f"The loss became {float(loss)} at epoch {self.epoch + 1}, step {step + 1}; "
                "lower the learning rate or check the data."
            )
        with self._section("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with self._section("optimizer"):
            max_norm = self.settings.max_grad_norm or math.inf
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
        return components, float(norm)

    def train_epoch(self, loader: Iterable[Batch]) -> Record:
        self.model.train()
        sums: dict[str, float] = {}
        norms: list[float] = []
        count = 0
        for step, batch in enumerate(self._batches(loader)):
            if self.should_stop():  # checked per batch so a cancel lands within one step
                self.stopped_because = "cancelled"
                break
            components, norm = self.train_step(batch, step)
            norms.append(norm)
            with self._section("callbacks"):
                size = len(next(iter(batch.values())))
                for name, value in components.items():
                    sums[name] = sums.get(name, 0.0) + value * size
                count += size
                for callback in self.callbacks:
                    callback.on_batch_end(self, step, components)
        record = {f"train/{k}": v / max(count, 1) for k, v in sums.items()}
        record["grad_norm"] = float(np.mean(norms)) if norms else 0.0
        return record

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Batch], prefix: str = "val") -> Record:
        """Mean loss components over ``loader``, plus the metrics function if given."""
        model = self.eval_model
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        outputs_all: list[dict[str, torch.Tensor]] = []
        batches: list[Batch] = []
        for batch in loader:
            batch = self._to_device(batch)
            outputs = self._forward(batch, model)
            _, components = self.loss_fn(outputs, batch)
            size = len(next(iter(batch.values())))
            for name, value in components.items():
                sums[name] = sums.get(name, 0.0) + value * size
            count += size
            if self.metrics is not None:
                outputs_all.append({k: v.cpu() for k, v in outputs.items()})
                batches.append({k: v.cpu() for k, v in batch.items()})
        if count == 0:
            raise TrainingError(f"The {prefix} segment is empty; nothing to evaluate on.")
        record = {f"{prefix}/{k}": v / count for k, v in sums.items()}
        if self.metrics is not None:
            merged_outputs = {k: torch.cat([o[k] for o in outputs_all]) for k in outputs_all[0]}
            merged_batch = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
            metrics = self.metrics(merged_outputs, merged_batch)
            record.update({f"{prefix}/{k}": v for k, v in metrics.items()})
        return record

    def fit(self, train: Any, val: Any, epochs: int | None = None) -> list[Record]:
        """Train until ``epochs``, early stopping, or ``should_stop()``; returns the history.

        The model ends with the weights of its best validation epoch (as in ``best.pt``).
        """
        with flushed_denormals():
            return self._fit(train, val, epochs)

    def _fit(self, train: Any, val: Any, epochs: int | None) -> list[Record]:
        epochs = epochs or self.settings.epochs
        if getattr(val, "num_rows", 1) == 0:
            raise TrainingError("The validation segment is empty; early stopping needs it.")
        if getattr(train, "num_rows", 1) == 0:
            raise TrainingError("The training segment is empty.")
        self.check_finite(train, "training")
        self.check_finite(val, "validation")
        patience = self.settings.early_stopping_patience
        self.epochs, self.batches_per_epoch = epochs, len(train)  # for progress callbacks
        self.stopped_because = "epochs"
        while self.epoch < epochs:
            if self.should_stop():
                self.stopped_because = "cancelled"
                break
            started = time.perf_counter()
            record: Record = {"epoch": float(self.epoch + 1)}
            record.update(self.train_epoch(train))
            if self.stopped_because == "cancelled":
                break  # a partial epoch is neither validated nor saved
            record.update(self.evaluate(val, "val"))
            if self.validate is not None:  # e.g. ranking metrics over the full catalogue
                self.eval_model.eval()
                with torch.no_grad():
                    metrics = self.validate(self.eval_model)
                record.update({f"val/{k}": v for k, v in metrics.items()})
            record["lr"] = float(self.optimizer.param_groups[0]["lr"])
            record["seconds"] = time.perf_counter() - started
            self._step_scheduler(record["val/total"])
            self.epoch += 1
            value = record[self.monitor]
            if self.maximize:
                improved = value > self.best_loss + self.settings.min_delta
            else:
                improved = value < self.best_loss - self.settings.min_delta
            if improved:
                self.best_loss, self.best_epoch = value, self.epoch
                self.best_state = {
                    k: v.detach().clone() for k, v in self.eval_model.state_dict().items()
                }
            record["best"] = float(improved)
            self.history.append(record)
            self._save("best" if improved else None)
            self._save("last")
            for callback in self.callbacks:
                callback.on_epoch_end(self, record)
            if self.stop_reason and self.epoch < epochs:  # after the last epoch it stops nothing
                self.stopped_because = self.stop_reason
                break
            if self.epoch - self.best_epoch >= patience and patience > 0:
                self.stopped_because = "early_stopping"
                break
        if self.best_state is not None:  # leave the model as its best validation epoch
            self.model.load_state_dict(self.best_state)
        return self.history

    def _step_scheduler(self, val_loss: float) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        else:
            self.scheduler.step()

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.history = list(state["history"])
        fused = [group.get("fused") for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, was in zip(self.optimizer.param_groups, fused, strict=True):
            group["fused"] = was  # a state saved before the fused step would turn it off
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])

    def _save(self, kind: str | None) -> None:
        if kind is None or self.checkpoint_dir is None:
            return
        save_checkpoint(  # best.pt holds what was validated; last.pt what training resumes
            self.checkpoint_dir / f"{kind}.pt",
            model=self.eval_model if kind == "best" else self.model,
            meta={**self.checkpoint_meta, "epoch": self.epoch, "best_loss": self.best_loss},
            trainer_state=self.state() if kind == "last" else None,
        )

    @torch.no_grad()
    def predict(self, loader: Iterable[Batch]) -> dict[str, torch.Tensor]:
        """Every output of the model over ``loader``, concatenated, on the CPU."""
        self.model.eval()
        parts = [{k: v.cpu() for k, v in self._forward(self._to_device(b)).items()} for b in loader]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}

    def predict_with_embeddings(self, loader: Iterable[Batch]) -> dict[str, torch.Tensor]:
        """Seed 001's name: predictions including the tower embeddings (dual-tower models)."""
        return self.predict(loader)

    def plot_history(self, output_path: Path) -> Path:
        """A PNG of every loss component per epoch, train and validation (seed 003)."""
        from core.plots import history_figure

        output_path = Path(output_path)
        history_figure(self.history).savefig(output_path, dpi=110, bbox_inches="tight")
        return output_path
