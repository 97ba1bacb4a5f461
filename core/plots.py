"""Static figures written to files (PNG) for reports; the dashboard draws its own charts."""

from __future__ import annotations

from typing import Any


def history_figure(history: list[dict[str, float]]) -> Any:
    """One panel per loss component, train and validation per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({k.split("/", 1)[1] for r in history for k in r if k.startswith("train/")})
    columns = min(len(names), 3) or 1
    rows = (len(names) + columns - 1) // columns or 1
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    epochs = [r["epoch"] for r in history]
    for axis, name in zip(axes.flat, names, strict=False):
        for split in ("train", "val"):
            values = [r.get(f"{split}/{name}", float("nan")) for r in history]
            axis.plot(epochs, values, label=split)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure
