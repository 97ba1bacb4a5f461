"""Which browsers gave the dashboard's password, and the gate that holds Streamlit's own HTTP
routes to it.

The password form runs over the WebSocket, so only the pages know who signed in. What a page
offers for download or shows as a file (``st.download_button``, ``st.image``: ``/media/...``),
uploads (``/_stcore/upload_file/...``) and ``/_stcore/metrics`` are plain HTTP requests that
Streamlit answers to anyone who has the URL. So, with ``TRENDLAB_PASSWORD`` set:

- ``SignInGate`` (api/server.py) gives every browser an HttpOnly cookie holding a random token;
- a session that gives the password records that token, which its WebSocket carried, here
  (``SIGN_INS.add``, from pages/access.py);
- those routes then answer only a request whose token belongs to a signed-in session that is
  still connected, and 403 to anyone else (no cookie, a browser that never signed in, a tab
  that was closed).

Without a password nothing is gated and no cookie is set.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from streamlit import config
from streamlit.runtime import Runtime

from services.access import PASSWORD_ENV

BROWSER_COOKIE = "trendlab_browser"
GATED_PREFIXES = ("/media/", "/_stcore/upload_file/", "/_stcore/metrics")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def browser_token(cookies: Mapping[str, str]) -> str | None:
    """The browser's token among ``cookies``; None when absent or not one we issue."""
    value = cookies.get(BROWSER_COOKIE)
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def _connected(session_id: str) -> bool:
    return Runtime.exists() and Runtime.instance().is_active_session(session_id)


@dataclass
class SignIns:
    """Browser token -> the ids of its sessions that gave the password. Thread-safe; kept in
    the server process (a restart signs everyone out, as it clears session state).

    ``is_connected`` says whether a session's WebSocket is still open (injectable for tests).
    """

    is_connected: Callable[[str], bool] = _connected
    _sessions: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, token: str | None, session_id: str) -> None:
        """Record that ``session_id``, opened by the browser holding ``token``, signed in."""
        if token is None or not _TOKEN.fullmatch(token):
            return
        with self._lock:
            self._sessions.setdefault(token, set()).add(session_id)
            if len(self._sessions) > 10_000:  # bound memory: forget closed sessions
                for known in list(self._sessions):
                    self._live(known)

    def admits(self, token: str | None) -> bool:
        """True when a session of the browser holding ``token`` signed in and is connected."""
        if token is None:
            return False
        with self._lock:
            return self._live(token)

    def _live(self, token: str) -> bool:
        live = {s for s in self._sessions.get(token, ()) if self.is_connected(s)}
        if live:
            self._sessions[token] = live
        else:
            self._sessions.pop(token, None)
        return bool(live)


SIGN_INS = SignIns()


def _gated(path: str) -> bool:
    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    path = re.sub("/{2,}", "/", path)
    if base:
        if not path.startswith(f"/{base}/"):
            return False
        path = path[len(base) + 1 :]
    return path.startswith(GATED_PREFIXES)


class SignInGate:
    """ASGI middleware in front of Streamlit: refuses media, uploads and metrics to requests
    that ``SIGN_INS`` does not admit, and gives a browser without a token one."""

    def __init__(self, app: ASGIApp, sign_ins: SignIns = SIGN_INS) -> None:
        self.app = app
        self.sign_ins = sign_ins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not os.environ.get(PASSWORD_ENV):
            await self.app(scope, receive, send)
            return
        token = browser_token(HTTPConnection(scope).cookies)
        if _gated(scope["path"]) and not self.sign_ins.admits(token):
            refusal = PlainTextResponse("Sign in on the dashboard first.", status_code=403)
            await refusal(scope, receive, send)
            return
        if token is None:
            send = _setting_cookie(send, secure=scope.get("scheme") == "https")
        await self.app(scope, receive, send)


def _setting_cookie(send: Send, *, secure: bool) -> Send:
    cookie = f"{BROWSER_COOKIE}={secrets.token_urlsafe(32)}; Path=/; HttpOnly; SameSite=Lax"
    if secure:
        cookie += "; Secure"

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).append("set-cookie", cookie)
        await send(message)

    return sending
