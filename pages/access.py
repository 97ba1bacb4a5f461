"""Access control for demo deployments: a password gate and a read-only mode.

Both are off unless their environment variables are set (the container requires them):

- ``TRENDLAB_PASSWORD``: every page asks for it once per browser session (app.py calls
  ``require_password`` before any page runs); a session that gave it records its browser's
  cookie, so Streamlit's media, upload and metrics routes answer that browser alone
  (sign_ins.py);
- ``TRENDLAB_READ_ONLY=1``: browsing, what-if prediction and recommendations stay; building
  or uploading datasets, uploads of configs or rows, and starting jobs are switched off.

The HTTP API takes its own bearer token (``TRENDLAB_API_TOKEN``, see api/dependencies.py).
"""

from __future__ import annotations

import hmac
import os

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from api.sign_ins import SIGN_INS, browser_token
from services.access import PASSWORD_ENV, Throttle, read_only


def signed_in() -> bool:
    """True when no password is set, or this browser session has given it."""
    return not os.environ.get(PASSWORD_ENV) or bool(st.session_state.get("signed_in"))


PASSWORD_GUESSES = Throttle()
"""Shared by every session of this server: after 5 wrong passwords in a minute from one
address, that address waits a minute. The address is the connection's (loopback ones count as
one), or what a proxy in TRENDLAB_TRUSTED_PROXIES forwards (services.access.trusted_proxies)."""


def require_password() -> None:
    """Show the sign-in form and stop the page until this session has given the password."""
    expected = os.environ.get(PASSWORD_ENV)
    if signed_in():
        if expected:
            _admit_this_browser()
        return
    st.title("Trendlab")
    st.caption("This deployment is private.")
    with st.form("sign-in"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        address = st.context.ip_address
        client = address if isinstance(address, str) and address else "unknown"
        wait = PASSWORD_GUESSES.wait_s(client)
        if wait:
            st.error(f"Too many wrong passwords; try again in {wait:.0f} s.")
        elif hmac.compare_digest(given.encode(), (expected or "").encode()):
            PASSWORD_GUESSES.succeeded(client)
            st.session_state["signed_in"] = True
            _admit_this_browser()
            st.rerun()
        else:
            PASSWORD_GUESSES.failed(client)
            st.error("That password is not right.")
    st.stop()


def _admit_this_browser() -> None:
    """Let this session's browser fetch its downloads. Every gated run records it, so a
    WebSocket that reconnects with a new cookie keeps them; without the cookie (AppTest,
    cookies blocked) the pages work and downloads get 403."""
    context = get_script_run_ctx()
    if context is not None:
        SIGN_INS.add(browser_token(st.context.cookies), context.session_id)


def refused(action: str) -> bool:
    """In read-only mode, say that ``action`` is switched off and return True."""
    if read_only():
        st.info(f"Read-only demo: {action} is switched off in this deployment.")
        return True
    return False
