"""Reports in words: a class accuracy that never moves is explained (issue 39)."""

from __future__ import annotations

import pandas as pd

from services.reports import flat_accuracy_notes


def _curves(values_7d: list[float], values_30d: list[float]) -> pd.DataFrame:
    rows = [
        {"run": 1, "epoch": e, "split": "val", "name": name, "value": v}
        for name, values in (("acc_7d", values_7d), ("acc_30d", values_30d))
        for e, v in enumerate(values, start=1)
    ]
    rows.append({"run": 1, "epoch": 1, "split": "train", "name": "acc_7d", "value": 0.9})
    return pd.DataFrame(rows)


def test_a_class_accuracy_flat_at_chance_gets_one_sentence_and_a_moving_one_none() -> None:
    notes = flat_accuracy_notes(_curves([0.333, 0.334, 0.333, 0.335], [0.30, 0.36, 0.41, 0.44]))
    assert len(notes) == 1
    assert notes[0].startswith("The 7d class accuracy stayed at 0.34 over all 4 epochs")
    assert "0.33 is what one class predicted" in notes[0]


def test_two_epochs_are_too_few_to_call_flat() -> None:
    assert flat_accuracy_notes(_curves([0.33, 0.33], [0.33, 0.33])) == []
