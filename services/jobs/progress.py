"""Durations and job progress as a reader says them ("1 min 12 s"; "fold 2 of 3 · epoch 5
of 40, about 30 s left"): no dependency beyond the standard library, so the CLI and the
pages' tables can say them without loading the models."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """12.3 -> '12 s', 72 -> '1 min 12 s', 4000 -> '1 h 6 min': what a reader wants to know."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def job_progress(progress: dict) -> tuple[float, str] | None:
    """A running job's share done and its line ("fold 2 of 3 · epoch 5 of 40, about 30 s
    left"), from its latest progress event; None before the first one. A walk-forward's
    share counts the folds done and the current fold's epochs."""
    fold, folds = progress.get("fold"), progress.get("folds")
    epochs = progress.get("epochs")
    within = 0.0
    parts = []
    if fold and folds:
        parts.append(f"fold {fold} of {folds}")
    if epochs:
        batches = max(progress.get("batches") or 1, 1)
        epoch = progress.get("epoch", 1)
        within = (epoch - 1 + (progress.get("batch") or 0) / batches) / epochs
        parts.append(f"epoch {epoch} of {epochs}")
    phase = progress.get("phase")
    if phase:  # a step without epochs: the training before it is done (or not begun)
        within = 1.0 if progress.get("trained") else 0.0
        parts.append(phase)
    if not parts:
        return None
    done = (fold - 1 + within) / folds if fold and folds else within
    eta = progress.get("eta_s")
    left = f", about {format_duration(eta)} left in this training" if eta and fold else ""
    left = left or (f", about {format_duration(eta)} left" if eta else "")
    return min(max(done, 0.0), 1.0), " · ".join(parts) + left
