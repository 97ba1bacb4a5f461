"""The input-gates chart on Evaluate: drawn only where the gates single out inputs."""

from __future__ import annotations

from pages.charts import gates_alike, gates_figure


def test_input_gates_are_charted_only_when_the_lasso_separated_the_inputs() -> None:
    alike = {f"f{i}": 0.8 + 0.01 * i for i in range(15)}
    sentence = gates_alike(alike)
    assert sentence is not None and "between 0.80 and 0.94" in sentence
    separated = {**alike, "f0": 0.2}
    assert gates_alike(separated) is None
    assert len(gates_figure(separated).data[0].x) == 15
