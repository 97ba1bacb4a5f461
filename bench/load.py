"""The load test of issue 23, shared by tests/api/test_api_load.py (10 s) and the bench case
``api.load_20_clients`` (30 s): keep-alive clients on /api/health, /api/predict and the
recommendations endpoint of a real `trendlab serve` on a loopback port while a training job
runs, then a check that every metric row the job reported is in the database.

The data home is built before the server starts (DuckDB: the server alone writes once it
runs): a tiny recommender run, a tiny market run to predict with, and the training job
queued through ``JobManager.submit_training``; the server's job manager starts it at start-up.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.market.config import DataConfig
from core.market.models import model_spec
from core.market.sources import synthetic_data
from core.recsys.config import recsys_configs
from core.recsys.synthetic import RecsysSpec, generate_recsys
from services.datasets import save_market_dataset
from services.jobs.manager import JobManager
from services.jobs.worker import EVENTS
from services.market.evaluation import run_dataset
from services.market.runs import execute_run, start_run
from services.recsys.runs import train_recsys_run
from services.runs import epoch_rows
from storage import DataHome, open_engine
from storage.recsys import save_recsys_dataset
from storage.repository import count_metrics, get_job, get_run, session_scope
from tests.conftest import running_server

CLIENTS = 20
MODEL = "compact_dual_tower"
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
REQUEST_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 600.0
SERVER_ENV = {
    "TRENDLAB_JOB_RUNNER": "1",
    "TRENDLAB_MAX_JOBS": "1",
    "TRENDLAB_API_TOKEN": "",  # auth off: every answer is the handler's own
    "TRENDLAB_DB_URL": "",
    "TRENDLAB_RAY_ADDRESS": "",
}


@dataclass(frozen=True)
class LoadHome:
    """A data home ready for the load: what each endpoint is asked, and the queued job."""

    home: DataHome
    predict_body: bytes
    users: list[str]
    job_id: int
    job_run_id: int


@dataclass
class Tally:
    """What the clients saw: status counts and latencies per endpoint, connection errors."""

    statuses: dict[str, Counter] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses.setdefault(endpoint, Counter())[status] += 1
            self.seconds.setdefault(endpoint, []).append(seconds)

    def failed(self, endpoint: str, error: BaseException) -> None:
        with self.lock:
            self.errors[f"{endpoint}: {type(error).__name__}"] += 1


def prepare(root: Path, *, job_epochs: int) -> LoadHome:
    """Build the data home at ``root``: dataset 'rs' with a tiny recommender (run 1),
    dataset 'small' with a 2-epoch compact dual tower (run 2), and a queued job training the
    same model for ``job_epochs`` epochs (run 3)."""
    home = DataHome(root).ensure()
    engine = open_engine(home.database_url)
    try:
        recsys = generate_recsys(RecsysSpec(users=60, items=50, interactions=900, seed=3))
        save_recsys_dataset(engine=engine, name="rs", data=recsys, description="load test")
        tiny, tiny_training = recsys_configs({"hidden_dims": [16], "embedding_dim": 8, "epochs": 2})
        train_recsys_run(
            engine=engine, home=home, dataset_name="rs", config=tiny, training=tiny_training
        )
        market = synthetic_data(
            ["AAA", "BBB", "CCC"], "2016-01-01", "2020-12-31", seed=3, signal=True, horizons=[7, 30]
        )
        save_market_dataset(
            engine=engine, name="small", data=market, config=DataConfig(), description=""
        )
        spec = model_spec(MODEL)

        def training(epochs: int):
            settings = {"epochs": epochs, "batch_size": 64, "early_stopping_patience": 0}
            return spec.training_config_class.from_dict(settings, partial=True)

        predict_run = start_run(
            engine=engine,
            model_name=MODEL,
            dataset_name="small",
            training=training(2),
            model_config=spec.config_class(),
            baselines=["majority"],
        )
        execute_run(engine=engine, home=home, run_id=predict_run, device="cpu")
        rows = run_dataset(engine=engine, run_id=predict_run).tail(2).drop(columns=["date"])
        body = {"run_id": predict_run, "rows": json.loads(rows.to_json(orient="records"))}
        job_id = JobManager(engine=engine, home=home).submit_training(
            model_name=MODEL,
            dataset_name="small",
            training=training(job_epochs),
            model_config=spec.config_class(),
            baselines=["majority"],
        )
        with session_scope(engine) as session:
            job_run_id = get_job(session=session, job_id=job_id).run_id
    finally:
        engine.dispose()
    users = sorted(recsys.interactions["user_id"].unique())[:10]
    return LoadHome(home, json.dumps(body).encode(), users, job_id, job_run_id)


def _requests(load: LoadHome, client: int):
    """Endlessly (endpoint, method, path, body): health, predict, recommendations in turn,
    each client starting at a different one."""
    endpoints = [
        ("health", "GET", "/api/health", None),
        ("predict", "POST", "/api/predict", load.predict_body),
        ("recommendations", "GET", None, None),
    ]
    n = client
    while True:
        name, method, path, body = endpoints[n % 3]
        if path is None:
            user = load.users[(n // 3) % len(load.users)]
            path = f"/api/recommendations/startups/for-developer/{user}?limit=10"
        yield name, method, path, body
        n += 1


def _client(url: str, load: LoadHome, client: int, until: float, tally: Tally) -> None:
    """One keep-alive connection, reopened only after an error, sending until ``until``."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(
        address.hostname, address.port, timeout=REQUEST_TIMEOUT_S
    )
    headers = {"Content-Type": "application/json"}
    try:
        for name, method, path, body in _requests(load, client):
            if time.monotonic() >= until:
                return
            start = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:  # resets, timeouts
                tally.failed(name, error)
                connection.close()
                continue
            tally.answered(name, response.status, time.perf_counter() - start)
    finally:
        connection.close()


def _run_status(url: str, run_id: int) -> str:
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request("GET", f"/api/runs/{run_id}")
        response = connection.getresponse()
        return json.loads(response.read())["status"] if response.status == 200 else "unknown"
    finally:
        connection.close()


def _watch(url: str, run_id: int, stop: threading.Event, seen: list[str]) -> None:
    """The job's run status twice a second while the load runs."""
    while not stop.wait(0.5):
        try:
            seen.append(_run_status(url, run_id))
        except (OSError, http.client.HTTPException, ValueError):
            seen.append("unknown")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_load(
    root: Path, *, seconds: float, clients: int = CLIENTS, job_epochs: int = 100
) -> dict[str, Any]:
    """Prepare a home at ``root``, serve it, and drive ``clients`` clients for ``seconds``
    while the queued job trains; then wait for the job and compare its metric rows. Returns
    the figures (latencies in ms) plus ``statuses``, ``errors`` and ``job_status``."""
    load = prepare(root, job_epochs=job_epochs)
    tally = Tally()
    seen: list[str] = []
    with running_server(load.home.root, **SERVER_ENV) as url:
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(url, load.job_run_id, stop, seen))
        watcher.start()
        until = time.monotonic() + seconds
        threads = [
            threading.Thread(target=_client, args=(url, load, i, until, tally))
            for i in range(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + REQUEST_TIMEOUT_S + 10)
        elapsed = time.perf_counter() - started
        stop.set()
        watcher.join(timeout=15)
        stuck = sum(thread.is_alive() for thread in threads)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (status := _run_status(url, load.job_run_id)) not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the job's run is still {status} after {JOB_TIMEOUT_S} s")
            time.sleep(0.5)
    reported = _reported_rows(load)
    engine = open_engine(load.home.database_url)
    try:
        with session_scope(engine) as session:
            stored = count_metrics(session=session, run_id=load.job_run_id)
            summary = get_run(session=session, run_id=load.job_run_id).summary_metrics or {}
    finally:
        engine.dispose()
    every = [s for values in tally.seconds.values() for s in values]
    figures: dict[str, Any] = {}
    for name, values in sorted(tally.seconds.items()):
        figures[f"{name}_p50_ms"] = statistics.median(values) * 1000
        figures[f"{name}_p99_ms"] = _percentile(values, 0.99) * 1000
    answers = sum(sum(c.values()) for c in tally.statuses.values())
    figures.update(
        {
            "p50_ms": statistics.median(every) * 1000 if every else float("nan"),
            "p99_ms": _percentile(every, 0.99) * 1000 if every else float("nan"),
            "requests_per_s": answers / elapsed,
            "responses_5xx": sum(
                n for c in tally.statuses.values() for s, n in c.items() if s >= 500
            ),
            "resets": sum(tally.errors.values()),
            "stuck_clients": stuck,
            "job_running_share": seen.count("running") / len(seen) if seen else 0.0,
            "job_epochs": summary.get("epochs", 0),
            "metric_rows_reported": reported,
            "metric_rows_stored": stored,
        }
    )
    return {
        "figures": figures,
        "statuses": {k: dict(v) for k, v in tally.statuses.items()},
        "errors": dict(tally.errors),
        "job_status": status,
    }


def _reported_rows(load: LoadHome) -> int:
    """Metric rows in the epoch events the job's worker wrote (what the server ingests)."""
    path = load.home.jobs / f"job_{load.job_id}" / EVENTS
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sum(len(epoch_rows(e["record"])) for e in events if e["type"] == "epoch")
