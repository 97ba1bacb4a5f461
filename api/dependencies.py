"""What every route goes through before its handler: the bearer-token check with its
lock-out, the Unicode check of all input, the 422 answer to malformed input, and the
request body cap (a pure ASGI middleware)."""

from __future__ import annotations

import hmac
import math
import os
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.shared import short
from services.access import Throttle

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
            "loc": [p if isinstance(p, int) else short(str(p), 60) for p in problem["loc"]],
            "msg": short(_message(problem)),
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
