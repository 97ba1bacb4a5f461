from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage import StorageError
from storage.models import JobStatus
from storage.repository import (
    MetricRow,
    add_artifact,
    append_metrics,
    count_metrics,
    count_rows,
    create_dataset,
    create_job,
    create_run,
    delete_dataset,
    delete_run,
    find_dataset_by_hash,
    get_dataset,
    get_job,
    get_run,
    list_artifacts,
    list_datasets,
    list_jobs,
    list_metrics,
    list_runs,
    list_runs_with_artifact,
    request_cancel,
    session_scope,
    set_run_status,
    update_job,
)


def _dataset(session, name: str = "demo", content_hash: str = "abc"):
    return create_dataset(
        session=session,
        name=name,
        kind="synthetic",
        source="generator",
        tickers=["AAPL", "MSFT"],
        features=["f1", "f2", "f3"],
        row_count=1234,
        content_hash=content_hash,
        start_date=dt.date(2020, 1, 1),
        end_date=dt.date(2021, 12, 31),
        recipe={"seed": 7, "signal": True},
    )


def test_dataset_crud(engine: Engine) -> None:
    with session_scope(engine) as session:
        created = _dataset(session)
    with session_scope(engine) as session:
        found = get_dataset(session=session, name="demo")
        assert found is not None and found.id == created.id
        assert found.tickers == ["AAPL", "MSFT"]
        assert found.features == ["f1", "f2", "f3"]
        assert found.recipe == {"seed": 7, "signal": True}
        assert found.start_date == dt.date(2020, 1, 1)
        assert find_dataset_by_hash(session=session, content_hash="abc").name == "demo"
        assert [d.name for d in list_datasets(session=session)] == ["demo"]
    with session_scope(engine) as session:
        assert delete_dataset(session=session, name="demo")
        assert not delete_dataset(session=session, name="demo")
        assert list_datasets(session=session) == []


def test_duplicate_dataset_name_is_refused_and_rolled_back(engine: Engine) -> None:
    with session_scope(engine) as session:
        _dataset(session)
    with pytest.raises(StorageError, match="exists already"), session_scope(engine) as session:
        create_run(session=session, model_kind="m", config={}, seed=1)
        _dataset(session, content_hash="other")
    with session_scope(engine) as session:
        # The run created in the failed transaction is gone too.
        assert count_rows(session=session) == {"datasets": 1, "runs": 0, "jobs": 0}


def test_run_lifecycle_and_resume_parent(engine: Engine) -> None:
    with session_scope(engine) as session:
        dataset = _dataset(session)
        run = create_run(
            session=session,
            model_kind="dual_tower",
            config={"training": {"epochs": 3}},
            seed=11,
            dataset_id=dataset.id,
        )
    assert run.status == JobStatus.QUEUED
    with session_scope(engine) as session:
        set_run_status(session=session, run_id=run.id, status=JobStatus.RUNNING)
        done = set_run_status(
            session=session,
            run_id=run.id,
            status=JobStatus.SUCCEEDED,
            summary_metrics={"val_loss": 0.25},
        )
        assert done.started_at is not None and done.finished_at >= done.started_at
        child = create_run(
            session=session, model_kind="dual_tower", config={}, seed=11, parent_run_id=run.id
        )
    with session_scope(engine) as session:
        assert get_run(session=session, run_id=run.id).summary_metrics == {"val_loss": 0.25}
        assert get_run(session=session, run_id=child.id).parent_run_id == run.id
        assert [r.id for r in list_runs(session=session)] == [child.id, run.id]
        assert list_runs(session=session, model_kind="lstm_attention") == []
        with pytest.raises(StorageError, match="No run with id 999"):
            set_run_status(session=session, run_id=999, status=JobStatus.FAILED)


def test_metrics_batches_round_trip(engine: Engine) -> None:
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={}, seed=1).id
    rows = [
        MetricRow(epoch=e, split=s, name=n, value=e + 0.5, step=None)
        for e in range(3)
        for s in ("train", "val")
        for n in ("loss", "mse_7d")
    ]
    with session_scope(engine) as session:
        assert append_metrics(session=session, run_id=run_id, rows=rows) == 12
        assert append_metrics(session=session, run_id=run_id, rows=[]) == 0
    with session_scope(engine) as session:
        stored = list_metrics(session=session, run_id=run_id)
    assert len(stored) == 12
    assert {(m.epoch, m.split, m.name, m.value) for m in stored} == {
        (r.epoch, r.split, r.name, r.value) for r in rows
    }


def test_metric_batches_from_many_threads_lose_nothing(engine: Engine) -> None:
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={}, seed=1).id
    threads, batches, batch_size = 6, 25, 40
    errors: list[BaseException] = []

    def writer(thread: int) -> None:
        try:
            for batch in range(batches):
                rows = [
                    MetricRow(epoch=batch, split=f"t{thread}", name="loss", value=i, step=i)
                    for i in range(batch_size)
                ]
                with session_scope(engine) as session:
                    append_metrics(session=session, run_id=run_id, rows=rows)
        except BaseException as err:  # surfaced by the assertion below
            errors.append(err)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with session_scope(engine) as session:
        assert count_metrics(session=session, run_id=run_id) == threads * batches * batch_size


def test_artifact_records_size_and_sha256(engine: Engine, tmp_path: Path) -> None:
    payload = b"weights" * 1000
    path = tmp_path / "best.pt"
    path.write_bytes(payload)
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={}, seed=1).id
        artifact = add_artifact(session=session, run_id=run_id, kind="checkpoint", path=path)
    assert artifact.bytes == len(payload)
    assert artifact.sha256 == hashlib.sha256(payload).hexdigest()
    with session_scope(engine) as session:
        assert [a.path for a in list_artifacts(session=session, run_id=run_id)] == [str(path)]
        with pytest.raises(StorageError, match="does not exist"):
            add_artifact(session=session, run_id=run_id, kind="x", path=tmp_path / "missing")


def test_job_states_and_cancel(engine: Engine) -> None:
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={}, seed=1).id
        job = create_job(session=session, kind="train", run_id=run_id)
    assert job.status == JobStatus.QUEUED
    with session_scope(engine) as session:
        running = update_job(
            session=session,
            job_id=job.id,
            status=JobStatus.RUNNING,
            pid=4242,
            progress={"epoch": 1, "of": 10},
            heartbeat=True,
        )
        assert running.started_at is not None and running.heartbeat_at is not None
        assert request_cancel(session=session, job_id=job.id).cancel_requested
        update_job(session=session, job_id=job.id, status=JobStatus.CANCELLED)
    with session_scope(engine) as session:
        stored = get_job(session=session, job_id=job.id)
        assert (stored.status, stored.pid, stored.progress) == (
            "cancelled",
            4242,
            {"epoch": 1, "of": 10},
        )
        assert stored.finished_at is not None
        assert [j.id for j in list_jobs(session=session, statuses=[JobStatus.CANCELLED])] == [
            job.id
        ]
        assert list_jobs(session=session, statuses=[JobStatus.RUNNING]) == []
        with pytest.raises(StorageError, match="already cancelled"):
            update_job(session=session, job_id=job.id, status=JobStatus.RUNNING)


def test_failed_job_keeps_its_error_text(engine: Engine) -> None:
    with session_scope(engine) as session:
        job = create_job(session=session, kind="train")
        update_job(session=session, job_id=job.id, status=JobStatus.RUNNING)
        update_job(
            session=session,
            job_id=job.id,
            status=JobStatus.FAILED,
            error="Traceback: ValueError: boom",
        )
    with session_scope(engine) as session:
        assert get_job(session=session, job_id=job.id).error == "Traceback: ValueError: boom"


def test_delete_run_removes_its_metrics_artifacts_and_jobs(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    path.write_bytes(b"w")
    with session_scope(engine) as session:
        run_id = create_run(session=session, model_kind="m", config={}, seed=1).id
        append_metrics(session=session, run_id=run_id, rows=[MetricRow(0, "train", "loss", 1.0)])
        add_artifact(session=session, run_id=run_id, kind="checkpoint", path=path)
        create_job(session=session, kind="train", run_id=run_id)
    with session_scope(engine) as session:
        assert delete_run(session=session, run_id=run_id)
    with session_scope(engine) as session:
        assert count_rows(session=session) == {"datasets": 0, "runs": 0, "jobs": 0}
        assert count_metrics(session=session) == 0
        assert list_artifacts(session=session, run_id=run_id) == []


def test_dataset_used_by_a_run_cannot_be_deleted(engine: Engine) -> None:
    with session_scope(engine) as session:
        dataset = _dataset(session)
        run = create_run(session=session, model_kind="m", config={}, seed=1, dataset_id=dataset.id)
    with pytest.raises(StorageError, match=f"used by runs {run.id}"), session_scope(engine) as s:
        delete_dataset(session=s, name="demo")
    with session_scope(engine) as session:
        assert get_dataset(session=session, name="demo") is not None
        delete_run(session=session, run_id=run.id)
    with session_scope(engine) as session:
        assert delete_dataset(session=session, name="demo")


def test_references_to_missing_rows_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(StorageError, match="No dataset with id 5"):
            create_run(session=session, model_kind="m", config={}, seed=1, dataset_id=5)
        with pytest.raises(StorageError, match="No run with id 9"):
            create_run(session=session, model_kind="m", config={}, seed=1, parent_run_id=9)
        with pytest.raises(StorageError, match="No run with id 9"):
            create_job(session=session, kind="train", run_id=9)
        with pytest.raises(StorageError, match="No run with id 9"):
            append_metrics(session=session, run_id=9, rows=[MetricRow(0, "train", "loss", 1.0)])


def test_runs_with_an_artifact_kind(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    path.write_bytes(b"w")
    with session_scope(engine) as session:
        plain = create_run(session=session, model_kind="m", config={}, seed=1).id
        trained = create_run(session=session, model_kind="m", config={}, seed=1).id
        add_artifact(session=session, run_id=trained, kind="checkpoint", path=path)
        add_artifact(session=session, run_id=plain, kind="history", path=path)
    with session_scope(engine) as session:
        runs = list_runs_with_artifact(session=session, kind="checkpoint")
    assert [r.id for r in runs] == [trained]


@pytest.mark.parametrize(
    "name",
    ["", "   ", "two\nlines", "tab\tin", "bell\a", "trailing ", " leading", "x" * 65],
)
def test_unusable_dataset_names_are_refused_with_the_rule(engine: Engine, name: str) -> None:
    """Issue 13, item 11: an empty name, a newline (which broke `data list`) or 100 kB were
    stored as they came."""
    with session_scope(engine) as session, pytest.raises(StorageError, match="1-64 printable"):
        create_dataset(
            session=session,
            name=name,
            kind="k",
            source="s",
            tickers=[],
            features=[],
            row_count=0,
            content_hash="h",
        )


def test_ordinary_dataset_names_are_kept_as_given(engine: Engine) -> None:
    for name in ("demo", "S&P 500", "ml-100k", "prices.2024", "Données_été"):
        with session_scope(engine) as session:
            made = create_dataset(
                session=session,
                name=name,
                kind="k",
                source="s",
                tickers=[],
                features=[],
                row_count=0,
                content_hash=name,
            )
            assert made.name == name
