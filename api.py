"""The HTTP API, served under /api on the dashboard's own port (see server.py).

Like a page, each handler gathers input, calls core/ and services/, and answers; it shares the
server's database engine. FastAPI validates parameters (422 names them, briefly, without
echoing the input) and publishes the OpenAPI document at /api/openapi.json, behind the same
token as every route; no HTML documentation pages (theirs load scripts from a CDN).
Bodies over TRENDLAB_API_MAX_BODY_MB get 413; a client that keeps guessing the token gets 429.
"""

from __future__ import annotations

import hmac
import math
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.checkpoints import CheckpointError
from core.market.predict import TABULAR_COLUMNS, PredictionInputError
from core.recsys.serving import MAX_LIMIT, Recommendation, UnknownUser
from services import catalog, facts
from services.access import ReadOnlyError, Throttle
from services.home import DataHome, StorageError, data_home, database
from services.recsys import active_run, load_serving, recommender_report
from services.runs import UnknownRun, run_predictor

MAX_RUN_ID = 2**63 - 1  # the database's BIGINT
MODEL_COLUMNS = frozenset(["date", "ticker", *TABULAR_COLUMNS])  # all any market model reads
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items (1-100).")]


class Item(BaseModel):
    rank: int
    item_id: str
    score: float
    why: str = Field(description="What the user's profile shares with the item.")
    details: dict[str, Any] = Field(description="The item's own fields (name, type, ...).")


class Recommendations(BaseModel):
    user_id: str | None
    engine: str = Field(description="two_tower, content or popularity.")
    reason: str = Field(description="Why this engine served the request.")
    run_id: int | None
    items: list[Item]


class ProfileRequest(BaseModel):
    profile: dict[str, str] = Field(
        description="User fields, e.g. skills 'python;ml', interests 'ai', bio, location."
    )
    limit: int = Field(10, ge=1, le=MAX_LIMIT)
    filters: dict[str, str] = Field(default_factory=dict, description="e.g. type: job")


class PredictRequest(BaseModel):
    run_id: int = Field(ge=1, le=MAX_RUN_ID)
    rows: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10_000,
        description="Feature rows (the dataset's columns; date and ticker for sequences).",
    )


class SweepRequest(BaseModel):
    """What `trendlab sweep --via-server` sends: the sweep to start on this server."""

    model: str = Field(max_length=100, description="A registered market model.")
    dataset: str = Field(max_length=200)
    trials: int = Field(8, ge=1, le=1000)
    parallel: int = Field(2, ge=1, le=64)
    space: dict[str, dict[str, Any]] | None = Field(
        None, description="Dotted path -> {low, high, log} or {choices}; default: suggested."
    )
    training: dict[str, Any] = Field(default_factory=dict, description="Partial training config.")
    architecture: dict[str, Any] = Field(default_factory=dict, description="Partial model config.")


class Health(BaseModel):
    status: str
    schema_version: int
    active_recommender: int | None


def _context() -> tuple[DataHome, Any]:
    home = data_home()
    return home, database(home)


def _answer(result: Recommendation, run_id: int | None) -> Recommendations:
    fields = [c for c in result.items.columns if c not in ("rank", "item_id", "score", "why")]
    return Recommendations(
        user_id=result.user_id,
        engine=result.engine,
        reason=result.reason,
        run_id=run_id,
        items=[
            Item(
                rank=int(row["rank"]),
                item_id=str(row["item_id"]),
                score=float(row["score"]),
                why=str(row["why"]),
                details={c: row[c] for c in fields},
            )
            for row in result.items.to_dict("records")
        ],
    )


def _plain(value: Any) -> Any:
    """``value`` with NaN and infinities as null: JSON cannot carry them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _short(text: str, limit: int = 300) -> str:
    """A message as answered: what a client sent may appear in it, and may be 100 kB."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


TOKEN_ENV = "TRENDLAB_API_TOKEN"
bearer = HTTPBearer(auto_error=False)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """With TRENDLAB_API_TOKEN set, every route needs `Authorization: Bearer <token>`. A client
    address that sends five wrong tokens within a minute is refused (429) for a minute,
    whatever it sends; the right token clears its count. The address is the connection's, or
    what a proxy in TRENDLAB_TRUSTED_PROXIES forwards (services.access.trusted_proxies).
    Async: it only compares strings, so it runs on the event loop, not a pool thread."""
    expected = os.environ.get(TOKEN_ENV)
    if not expected:
        return
    throttle: Throttle = request.app.state.token_throttle
    client = request.client.host if request.client else "unknown"
    wait_s = throttle.wait_s(client)
    if wait_s > 0:
        raise HTTPException(
            429,
            "too many wrong bearer tokens; try again later",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        if credentials:  # a missing token guesses nothing
            throttle.failed(client)
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    throttle.succeeded(client)


MAX_ERRORS_SHOWN = 10


def lone_surrogates(value: Any, where: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """Problems, as RequestValidationError lists them, for each text in ``value`` (keys
    included) that is not Unicode: JSON's \\ud800 escapes decode to lone surrogates, which
    nothing downstream can encode (pyarrow, the database, the answer itself). Stops after
    MAX_ERRORS_SHOWN + 1; walks with a stack, since bodies nest as deep as JSON parses."""
    problems: list[dict[str, Any]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [(where, value)]
    while stack and len(problems) <= MAX_ERRORS_SHOWN:
        loc, item = stack.pop()
        if isinstance(item, str):
            texts = [(loc, item, "text")]
        elif isinstance(item, dict):
            texts = [(loc, key, "a key") for key in item if isinstance(key, str)]
            stack.extend(((*loc, key), v) for key, v in reversed(item.items()) if _text(key))
        elif isinstance(item, list):
            texts = []
            stack.extend(((*loc, i), v) for i, v in reversed(list(enumerate(item))))
        else:
            continue
        problems.extend(
            {
                "type": "string_unicode",
                "loc": at,
                "msg": f"{what} that is not valid Unicode (a lone surrogate, \\ud800-\\udfff)",
                "input": None,
            }
            for at, text, what in texts
            if not _text(text)
        )
    return problems[: MAX_ERRORS_SHOWN + 1]


def _text(value: object) -> bool:
    """True unless ``value`` is a str that UTF-8 cannot encode (it holds a lone surrogate)."""
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def decoded_input(request: Request) -> None:
    """Every route's input through one check before any handler sees it: path and query
    parameters and a JSON body hold only Unicode text, or the request gets 422 naming where
    (as any other malformed input does; see answer_validation_error). The body is the one
    FastAPI has already parsed for the route (Starlette keeps it on the request)."""
    problems = [
        *lone_surrogates(dict(request.path_params), ("path",)),
        *lone_surrogates(dict(request.query_params), ("query",)),
    ]
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT", "PATCH") and kind.endswith("json"):
        try:
            body = await request.json()
        except ValueError:  # FastAPI has answered it already, or the route takes no body
            body = None
        problems += lone_surrogates(body, ("body",))
    if problems:
        raise RequestValidationError(problems)


def _message(problem: dict[str, Any]) -> str:
    reason = (problem.get("ctx") or {}).get("error")  # what the JSON parser tripped on
    return f"{problem['msg']}: {reason}" if isinstance(reason, str) else str(problem["msg"])


async def answer_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with where (loc) and what (msg) for each problem, never the input itself: it may
    be 100 kB, or NaN, which JSON cannot carry."""
    problems = error.errors()
    detail = [
        {
            "type": str(problem.get("type", "")),
            "loc": [p if isinstance(p, int) else _short(str(p), 60) for p in problem["loc"]],
            "msg": _short(_message(problem)),
        }
        for problem in problems[:MAX_ERRORS_SHOWN]
    ]
    if len(problems) > MAX_ERRORS_SHOWN:
        more = len(problems) - MAX_ERRORS_SHOWN
        detail.append({"type": "more", "loc": [], "msg": f"and {more} more problem(s)"})
    return JSONResponse(status_code=422, content={"detail": detail})


MAX_BODY_ENV = "TRENDLAB_API_MAX_BODY_MB"
DEFAULT_MAX_BODY_MB = 64.0  # 10,000 predict rows of a whole dataset row (~4 kB each) are ~40 MB


def max_body_bytes() -> int:
    """The request body cap from TRENDLAB_API_MAX_BODY_MB (megabytes, default 64)."""
    raw = os.environ.get(MAX_BODY_ENV, "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_BODY_MB
    except ValueError:
        megabytes = math.nan
    if not (math.isfinite(megabytes) and megabytes > 0):
        raise ValueError(f"{MAX_BODY_ENV} must be a positive number of megabytes, not {raw!r}")
    return int(megabytes * 2**20)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the cap. An HTTPException, so that FastAPI's body reader
    passes it on (it turns other errors into 400) and answers it as JSON."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over the {max_bytes / 2**20:g} MB limit")


class BodySizeLimit:
    """A pure ASGI middleware: a body over ``max_bytes`` gets 413, at once when Content-Length
    declares it, otherwise as soon as the streamed (chunked) bytes pass the cap, so no more of
    it is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                await _refuse(scope, receive, send, HTTPException(400, "bad Content-Length"))
                return
            if too_large:
                await _refuse(scope, receive, send, BodyTooLarge(self.max_bytes))
                return
        received = 0
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as error:  # an app that does not answer HTTPExceptions itself
            if response_started:
                raise
            await _refuse(scope, receive, send, error)


async def _refuse(scope: Scope, receive: Receive, send: Send, error: HTTPException) -> None:
    response = JSONResponse({"detail": error.detail}, status_code=error.status_code)
    await response(scope, receive, send)


def create_api(*, throttle: Throttle | None = None) -> FastAPI:
    """The API app; ``throttle`` counts wrong tokens (a fresh one per app by default)."""
    api = FastAPI(
        title="Trendlab API",
        version="1",
        description="Recommendations and market-model predictions from the Trendlab server.",
        dependencies=[Depends(require_token), Depends(decoded_input)],
        # FastAPI's own document and pages would answer without the token (below, with it).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    api.state.token_throttle = throttle or Throttle()
    api.add_middleware(BodySizeLimit, max_bytes=max_body_bytes())
    api.add_exception_handler(RequestValidationError, answer_validation_error)

    @api.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> JSONResponse:
        return JSONResponse(api.openapi())

    @api.get("/health")
    def health() -> Health:
        _, engine = _context()
        return Health(
            status="ok",
            schema_version=catalog.schema(engine=engine),
            active_recommender=active_run(engine=engine),
        )

    @api.get("/recommendations/startups/for-developer/{user_id}")
    def for_developer(
        user_id: str,
        limit: Limit = 10,
        engine_name: Annotated[
            str,
            Query(alias="engine", pattern="^(auto|two_tower|ease|item_knn|content|popularity)$"),
        ] = "auto",
        type: Annotated[str | None, Query(description="collaboration, job, investment")] = None,
        sector: str | None = None,
        stage: str | None = None,
        location: str | None = None,
    ) -> Recommendations:
        """Seed 004's endpoint: the top startups for a known developer, routed by history."""
        home, engine = _context()
        filters = {
            k: v
            for k, v in {
                "type": type,
                "sector": sector,
                "stage": stage,
                "location": location,
            }.items()
            if v
        }
        run_id = active_run(engine=engine)
        try:
            recommender = load_serving(engine=engine, home=home, run_id=run_id)
            result = recommender.recommend(
                user_id, limit=limit, engine=engine_name, filters=filters
            )
        except UnknownUser as error:
            raise HTTPException(404, _short(str(error))) from None
        except StorageError as error:
            raise HTTPException(503, _short(str(error))) from None
        except ValueError as error:
            raise HTTPException(422, _short(str(error))) from None
        return _answer(result, run_id)

    @api.get("/recommendations/engines")
    def engines() -> dict[str, Any]:
        """The serving run's engines on its test users: every metric with its 95 % interval,
        the paired verdict of the two-tower model against each baseline, and which engine
        serves warm and hot users, and why."""
        _, engine = _context()
        run_id = active_run(engine=engine)
        if run_id is None:
            raise HTTPException(404, "No recommender is trained yet.")
        try:
            report = recommender_report(engine=engine, run_id=run_id)
        except StorageError as error:
            raise HTTPException(503, _short(str(error))) from None
        return _plain(
            {
                "run_id": run_id,
                "primary_metric": report.get("primary_metric"),
                "engines": {
                    name: {
                        "metrics": figures,
                        "intervals": report.get("intervals", {}).get("all_users", {}).get(name),
                        "verdict": report.get("comparison", {}).get("against", {}).get(name),
                    }
                    for name, figures in report["all_users"].items()
                },
                "comparison": report.get("comparison"),
                "serve": report.get("serve"),
            }
        )

    @api.post("/recommendations")
    def for_profile(request: ProfileRequest) -> Recommendations:
        """A new user described by a profile: content-based (the cold-start route)."""
        home, engine = _context()
        run_id = active_run(engine=engine)
        try:
            recommender = load_serving(engine=engine, home=home, run_id=run_id)
            result = recommender.recommend_profile(
                request.profile, limit=request.limit, filters=request.filters
            )
        except StorageError as error:
            raise HTTPException(503, _short(str(error))) from None
        except ValueError as error:
            raise HTTPException(422, _short(str(error))) from None
        return _answer(result, run_id)

    # What the read-only CLI commands print (services.facts): `trendlab runs list` and the
    # like ask these while this server holds the DuckDB file.
    @api.get("/info")
    def info() -> dict[str, Any]:
        home, engine = _context()
        return _plain(facts.info(home=home, engine=engine))

    @api.get("/datasets")
    def datasets() -> list[dict[str, Any]]:
        return _plain(facts.datasets(engine=_context()[1]))

    @api.get("/datasets/{name}")
    def dataset(name: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
        found = facts.dataset(engine=_context()[1], name=name)
        if found is None:
            raise HTTPException(404, "No such dataset.")
        return _plain(found)

    @api.get("/runs")
    def runs() -> list[dict[str, Any]]:
        return _plain(facts.runs(engine=_context()[1]))

    @api.get("/runs/{run_id}")
    def run(run_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID)]) -> dict[str, Any]:
        found = facts.run(engine=_context()[1], run_id=run_id)
        if found is None:
            raise HTTPException(404, f"No run {run_id}.")
        return _plain(found)

    @api.get("/sweeps/{sweep_id}")
    def sweep(sweep_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID)]) -> dict[str, Any]:
        from services.sweeps import sweep_info

        home, engine = _context()
        found = sweep_info(engine=engine, home=home, sweep_id=sweep_id)
        if found is None:
            raise HTTPException(404, f"No sweep {sweep_id}.")
        return _plain(found.to_dict())

    @api.post("/sweeps", status_code=201)
    def start_sweep(request: SweepRequest) -> dict[str, int]:
        """Start a sweep that this server's job manager drives (403 when read-only)."""
        from core.registry import TRAINABLE
        from services.jobs import start_job_manager
        from services.sweeps import SweepError, suggested_space
        from services.sweeps import start_sweep as start

        home, _ = _context()
        spec = TRAINABLE.get(request.model)
        if spec is None:
            raise HTTPException(422, "Unknown model.")
        try:
            sweep_id = start(
                start_job_manager(home),
                model_name=request.model,
                dataset_name=request.dataset,
                space=request.space or suggested_space(request.model),
                trials=request.trials,
                parallel=request.parallel,
                training=spec.training_config_class.from_dict(request.training, partial=True),
                model_config=spec.config_class.from_dict(request.architecture, partial=True),
            )
        except ReadOnlyError as error:
            raise HTTPException(403, _short(str(error))) from None
        except (SweepError, ValueError) as error:  # a wrong space or config (ConfigError)
            raise HTTPException(422, _short(str(error))) from None
        except StorageError as error:  # an unknown dataset
            raise HTTPException(404, _short(str(error))) from None
        return {"sweep_id": sweep_id}

    @api.post("/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        """Scores of a market model's run for feature rows (the Predictor path)."""
        import pandas as pd

        _, engine = _context()
        try:
            predictor = run_predictor(engine=engine, run_id=request.run_id)
        except UnknownRun:
            raise HTTPException(404, f"No run {request.run_id}.") from None
        except (StorageError, CheckpointError) as error:  # unfinished, missing or altered
            raise HTTPException(409, _short(str(error))) from None
        # Only the columns a model reads: 10,000 rows of one made-up key each would otherwise
        # build a 10,000 x 10,000 frame (800 MB) from a 200 kB body.
        rows = [{k: v for k, v in row.items() if k in MODEL_COLUMNS} for row in request.rows]
        try:
            table = predictor.predict_frame(pd.DataFrame(rows, index=range(len(rows))))
        except PredictionInputError as error:
            raise HTTPException(422, _short(str(error))) from None
        table = table.astype(object).where(table.notna(), None)
        return {
            "run_id": request.run_id,
            "model": predictor.spec.name,
            "predictions": table.to_dict("records"),
        }

    return api
