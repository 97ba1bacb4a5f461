"""Retraining a serving market run on a rolling window, and promoting the new run only on
evidence.

A retrain trains a new run with the serving run's model and training configs on the
newest version of its dataset, limited to the latest ``window_years`` years. When it has
trained, both runs are scored on the newest out-of-sample rows (the new run's test rows,
which neither run trained on: the serving run trained on an older version or on earlier
years) and judged by the tool's own verdict on the primary metric
(``core.market.verdict.uncertainty_report``, with the serving run and the constant mean
as the rivals). The new run is promoted only when the verdict is "beats": "no evidence"
keeps the serving run (a switch needs a reason; the issue's "only when not worse" is met
because "beats" is never worse), and so does "worse" or "collapsed".

Which market run serves a dataset, and every decision with its reason, is kept in the
settings table under ``serving:NAME`` (the model registry of the market side, as
``recommender.active`` is the recommender's). The retrain runs in this process
(``retrain_here``, the CLI and tests) or as a background job of kind ``retrain``
(``RETRAIN``: a training job whose finish also judges and promotes).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.market.baselines import QUICKEST
from core.market.evaluation import score_report
from core.market.forecast import forecast_rows, predict_available
from core.market.models import model_spec
from core.market.predict import Predictor
from core.market.predictions import outcomes
from core.market.verdict import EvaluationConfig, declare_primary, uncertainty_report
from core.trainer import Callback
from services.access import ensure_writable
from services.market.evaluation import load_evaluation, run_predictor
from services.market.forecasts import current_dataset_name
from services.market.runs import MARKET_TRAINING, execute_run, start_run
from services.runs import JobKind, run_and_dataset
from storage.data_home import DataHome
from storage.db import StorageError
from storage.feature_store import load_dataset_frame
from storage.repository import (
    create_job,
    get_run,
    get_setting,
    session_scope,
    set_setting,
)

SETTING = "serving:{dataset}"


def serving(*, engine: Engine, dataset: str) -> dict[str, Any]:
    """{"run_id": the run serving ``dataset`` or None, "history": [decisions]}."""
    with session_scope(engine) as session:
        value = get_setting(session=session, key=SETTING.format(dataset=dataset))
    return value or {"run_id": None, "history": []}


def _record(engine: Engine, dataset: str, run_id: int, decision: dict[str, Any]) -> None:
    key = SETTING.format(dataset=dataset)
    with session_scope(engine) as session:
        value = get_setting(session=session, key=key) or {"run_id": None, "history": []}
        history = [*value["history"], decision]
        set_setting(session=session, key=key, value={"run_id": run_id, "history": history})


def start_retrain(*, engine: Engine, serving_run_id: int, window_years: float) -> int:
    """The new run's row (queued): the serving run's configs, the newest version of its
    dataset, rows from ``window_years`` before that version's last date."""
    ensure_writable(f"retraining run {serving_run_id}")
    if window_years <= 0:
        raise ValueError(f"window_years must be > 0, not {window_years}")
    with session_scope(engine) as session:
        run, dataset = run_and_dataset(session=session, run_id=serving_run_id)
        name = current_dataset_name(dataset.name)
        model, config = run.model_kind, dict(run.config)
    current = serving(engine=engine, dataset=name)["run_id"]
    if current not in (None, serving_run_id):
        raise ValueError(
            f"run {current} serves {name!r}, not run {serving_run_id}: a retrain is judged "
            f"against the run it would replace, so retrain run {current}"
        )
    frame_end = _last_date(engine, name)
    start = (frame_end - pd.DateOffset(days=round(365.25 * window_years))).date()
    spec = model_spec(model)
    return start_run(
        engine=engine,
        model_name=model,
        dataset_name=name,
        training=spec.training_config_class.from_dict(config["training"]),
        model_config=spec.config_class.from_dict(config["model"]),
        baselines=config.get("baselines", [QUICKEST]),
        window={"start_date": start.isoformat()},
    )


def _last_date(engine: Engine, name: str) -> pd.Timestamp:
    with session_scope(engine) as session:
        frame = load_dataset_frame(session=session, name=name)
    return pd.to_datetime(frame["date"]).max()


def serving_scores(predictor: Predictor, frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """(date, ticker, score_hd, class_hd) of ``predictor`` on the rows ``keys``: one pass
    for a tabular model; for a sequence model, as of each date (its window ends there)."""
    frame = frame.assign(date=pd.to_datetime(frame["date"]))
    keys = keys[["date", "ticker"]].assign(date=lambda f: pd.to_datetime(f["date"]))
    if predictor.spec.sequence:
        parts = [
            predict_available(predictor, forecast_rows(frame, when))[0].assign(date=when)
            for when in sorted(keys["date"].unique())
        ]
        table = pd.concat(parts, ignore_index=True)
    else:
        rows = keys.merge(frame, on=["date", "ticker"], how="left")
        table = predictor.predict_frame(rows)
    names = list(predictor.spec.target.class_names)
    columns = {"date": pd.to_datetime(table["date"]), "ticker": table["ticker"].astype(str)}
    for h in predictor.horizons:
        columns[f"score_{h}d"] = table[f"score_{h}d"].to_numpy(float)
        columns[f"class_{h}d"] = table[f"class_{h}d"].map(names.index).to_numpy(int)
    scored = pd.DataFrame(columns)
    return keys.merge(scored, on=["date", "ticker"], how="inner")


def judge_and_promote(*, engine: Engine, run_id: int, serving_run_id: int) -> dict[str, Any]:
    """Score the new run and the serving one on the new run's test rows, judge the new one
    against the serving one (and the constant mean) on the primary metric, promote it on
    "beats", and record the decision; returns it."""
    with session_scope(engine) as session:
        _, dataset = run_and_dataset(session=session, run_id=run_id)
        name = current_dataset_name(dataset.name)
        frame = load_dataset_frame(session=session, name=dataset.name)
    new = load_evaluation(engine=engine, run_id=run_id).predictions
    unseen = pd.to_datetime(
        load_evaluation(engine=engine, run_id=serving_run_id).predictions["date"]
    ).min()
    new = new[pd.to_datetime(new["date"]) >= unseen]  # neither run trained or validated on these
    if new.empty:
        raise StorageError(
            f"Run {run_id}'s test rows all precede run {serving_run_id}'s test segment, so "
            "there are no rows neither run has seen; update the dataset first."
        )
    predictor = run_predictor(engine=engine, run_id=serving_run_id)
    spec = predictor.spec
    columns = [
        "date",
        "ticker",
        *(f"{k}_{h}d" for h in predictor.horizons for k in ("score", "class")),
    ]
    model = new[columns].assign(date=lambda f: pd.to_datetime(f["date"]))
    old = serving_scores(predictor, frame, model)
    model = model.merge(old[["date", "ticker"]], on=["date", "ticker"])
    rows = outcomes(spec, frame.assign(date=pd.to_datetime(frame["date"])), model)
    predictors = {"model": model, "serving": old}
    primary = declare_primary(EvaluationConfig(), rows, kind=spec.target.kind)
    reports = {n: score_report(spec, p, frame, use=primary["use"]) for n, p in predictors.items()}
    judged = uncertainty_report(spec, predictors, rows, reports, primary=primary)
    verdict = judged["verdict"]
    promoted = verdict["verdict"] == "beats"
    decision = {
        "at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "candidate": run_id,
        "serving": serving_run_id,
        "promoted": promoted,
        "verdict": verdict["verdict"],
        "reason": f"{'promoted' if promoted else 'kept run ' + str(serving_run_id)}: "
        f"{verdict['sentence']} ({len(rows)} rows from {rows['date'].min().date()} to "
        f"{rows['date'].max().date()})",
        "rows": len(rows),
    }
    current = serving(engine=engine, dataset=name)["run_id"]
    _record(engine, name, run_id if promoted else (current or serving_run_id), decision)
    return decision


def retrain_here(
    *,
    engine: Engine,
    home: DataHome,
    serving_run_id: int,
    window_years: float,
    device: str | None = None,
    callbacks: Iterable[Callback] = (),
) -> dict[str, Any]:
    """Start, train (in this process; ``callbacks`` watch it, e.g. a progress bar), judge
    and maybe promote; returns the decision."""
    run_id = start_retrain(engine=engine, serving_run_id=serving_run_id, window_years=window_years)
    execute_run(engine=engine, home=home, run_id=run_id, device=device, callbacks=callbacks)
    return judge_and_promote(engine=engine, run_id=run_id, serving_run_id=serving_run_id)


def _finish_retrain(engine: Engine, folder: Path, summary: dict[str, Any]) -> None:
    MARKET_TRAINING.finish(engine, folder, summary)
    if summary.get("stopped_because") == "cancelled" or "evaluation_error" in summary:
        return
    spec = json.loads((folder / "retrain.json").read_text())
    judge_and_promote(engine=engine, run_id=spec["run_id"], serving_run_id=spec["serving_run_id"])


def _prepare_retrain(
    engine: Engine, home: DataHome, run_id: int, folder: Path, request: dict[str, Any]
) -> None:
    with session_scope(engine) as session:
        run = get_run(session=session, run_id=run_id)
        if run is None:
            raise StorageError(f"No run {run_id}.")
    serving_run_id = int(request.get("serving_run_id", 0))
    if not serving_run_id:
        raise StorageError(f"Job for run {run_id} does not say which run it would replace.")
    MARKET_TRAINING.prepare(engine, home, run_id, folder, request)
    job = json.loads((folder / "job.json").read_text())
    (folder / "job.json").write_text(json.dumps({**job, "kind": RETRAIN.name}))  # our finish
    (folder / "retrain.json").write_text(
        json.dumps({"run_id": run_id, "serving_run_id": serving_run_id})
    )


RETRAIN = JobKind(
    "retrain",
    MARKET_TRAINING.start,
    _prepare_retrain,
    MARKET_TRAINING.run,
    _finish_retrain,
    resumable=False,
)
"""A rolling retrain as a background job: the new run trains as any market run does; its
finish judges it against the serving run and promotes it on evidence."""


def submit_retrain(*, engine: Engine, serving_run_id: int, window_years: float) -> int:
    """Queue a rolling retrain of ``serving_run_id`` as a background job (the job manager
    of the server picks it up); returns the job id."""
    run_id = start_retrain(engine=engine, serving_run_id=serving_run_id, window_years=window_years)
    with session_scope(engine) as session:
        request = {"serving_run_id": serving_run_id}
        return create_job(session=session, kind=RETRAIN.name, run_id=run_id, request=request).id


DECISION_COLUMNS = ["at", "candidate", "serving", "promoted", "verdict", "reason"]


def promotion_table(*, engine: Engine, dataset: str) -> pd.DataFrame:
    """Every decision recorded for ``dataset``, oldest first (the Evaluate page's table)."""
    history = serving(engine=engine, dataset=dataset)["history"]
    return pd.DataFrame(history, columns=DECISION_COLUMNS)
