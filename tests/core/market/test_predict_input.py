"""What ``Predictor.predict_frame`` refuses, for every caller (API, CLI, Predict page): a
feature cell is a number or empty, and a refusal names the row and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.checkpoints import save_checkpoint
from core.market.models import create_model
from core.market.predict import TABULAR_COLUMNS, PredictionInputError, Predictor, predict_csv
from core.market.splits import Standardizer
from tests.pages.conftest import TINY


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """An untrained tiny dual tower: the checks come before the model."""
    model = create_model("dual_tower", **TINY["dual_tower"])
    training = pd.DataFrame(
        np.random.default_rng(0).normal(size=(20, len(TABULAR_COLUMNS))), columns=TABULAR_COLUMNS
    )
    meta = {
        "model": "dual_tower",
        "config": model.config.to_dict(),
        "standardizer": Standardizer.fit(training, TABULAR_COLUMNS).to_dict(),
        "features": TABULAR_COLUMNS,
    }
    path = tmp_path_factory.mktemp("predictor") / "best.pt"
    return Predictor.from_checkpoint(save_checkpoint(path, model=model, meta=meta))


def _rows(count: int) -> pd.DataFrame:
    values = np.random.default_rng(1).normal(size=(count, len(TABULAR_COLUMNS)))
    return pd.DataFrame(values, columns=TABULAR_COLUMNS).assign(ticker="AAA")


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("news_sentiment_mean", "0.3", "text '0.3'"),
        ("news_sentiment_mean", True, "a boolean (true)"),
        ("rsi_14", False, "a boolean (false)"),
        ("rsi_14", [1.0], "a list"),
        ("vix_level", "x" * 5_000, "text 'xxxxxxxxxxxxxxxxxxxx'..."),
    ],
)
def test_text_and_booleans_in_a_feature_cell_are_refused_by_row_and_column(
    predictor: Predictor, column: str, value: object, shown: str
) -> None:
    rows = _rows(3).astype({column: object})
    rows.at[1, column] = value
    with pytest.raises(PredictionInputError) as refused:
        predictor.predict_frame(rows)
    assert str(refused.value) == f"row 2, column {column!r} must be a number or empty, not {shown}"


def test_empty_context_cells_are_unknown_and_scored(predictor: Predictor) -> None:
    rows = _rows(2).astype({"news_sentiment_mean": object})
    rows.at[0, "news_sentiment_mean"] = None
    assert len(predictor.predict_frame(rows)) == 2


def test_a_column_of_booleans_is_refused_at_its_first_row(predictor: Predictor) -> None:
    rows = _rows(2).assign(rsi_14=[True, False])
    with pytest.raises(PredictionInputError, match=r"row 1, column 'rsi_14' .* a boolean"):
        predictor.predict_frame(rows)


def test_a_csv_names_the_row_of_its_one_cell_that_is_not_a_number(
    predictor: Predictor, tmp_path: Path
) -> None:
    """pandas reads that column as text throughout; the check still finds the right row."""
    rows = _rows(4).astype({"rsi_14": object})
    rows.at[2, "rsi_14"] = "n/a?"
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(PredictionInputError) as refused:
        predict_csv(predictor, path, name="rows.csv")
    assert str(refused.value) == (
        "rows.csv: row 3, column 'rsi_14' must be a number or empty, not text 'n/a?'"
    )
    rows.at[2, "rsi_14"] = 50.0
    rows.to_csv(path, index=False)
    assert len(predict_csv(predictor, path, name="rows.csv")) == 4


def test_a_csv_naming_a_column_twice_is_refused(predictor: Predictor, tmp_path: Path) -> None:
    """Issue 41, item 9: pandas read the second rsi_14 as rsi_14.1 and scored the first."""
    rows = _rows(2)
    text = rows.to_csv(index=False).splitlines()
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([text[0] + ",rsi_14", *(line + ",99" for line in text[1:])]) + "\n")
    with pytest.raises(PredictionInputError) as refused:
        predict_csv(predictor, path.read_bytes(), name="rows.csv")
    assert str(refused.value) == (
        "rows.csv: the header names column 'rsi_14' more than once; keep one, or rename the others"
    )
