"""Who may do what: the read-only switch and the brake on guessing secrets.

One place that pages, the HTTP API and the job manager share, so a write that a page forgets to
hide is still refused where it happens:

- ``TRENDLAB_READ_ONLY=1`` forbids every action that changes state (see ``ensure_writable``
  and docs/deploy.md for the list); browsing, what-if prediction and recommendations stay;
- ``TRENDLAB_PASSWORD`` gates the pages (pages/access.py) and Streamlit's media, upload and
  metrics routes (sign_ins.py);
- ``Throttle`` slows password and token guessing: after a few failures a client is locked out
  for a while, whatever it sends;
- ``TRENDLAB_TRUSTED_PROXIES`` names the reverse proxies whose ``X-Forwarded-For`` says who
  the client is (``trusted_proxies``); from anyone else the connection's own address counts,
  so a guesser cannot escape its lockout by writing another address in a header.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PASSWORD_ENV = "TRENDLAB_PASSWORD"
READ_ONLY_ENV = "TRENDLAB_READ_ONLY"
TRUSTED_PROXIES_ENV = "TRENDLAB_TRUSTED_PROXIES"


class ReadOnlyError(PermissionError):
    """A write was asked of a read-only deployment."""


def read_only() -> bool:
    """True when this deployment forbids changes (``TRENDLAB_READ_ONLY`` is 1, true or yes)."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes")


def ensure_writable(action: str) -> None:
    """Raise ``ReadOnlyError`` naming ``action`` when the deployment is read-only."""
    if read_only():
        raise ReadOnlyError(f"Read-only deployment: {action} is switched off.")


def trusted_proxies() -> str:
    """``TRENDLAB_TRUSTED_PROXIES`` checked and normalised: comma-separated addresses or
    networks (``10.0.0.2,192.168.0.0/24``), "" when unset. `trendlab serve` hands it to
    uvicorn (``FORWARDED_ALLOW_IPS``), which then takes the client's address from
    ``X-Forwarded-For`` only on connections from these; the API's token lockout and the
    pages' password lockout both key on the address uvicorn gives. ValueError names the
    variable when an entry is not an address ("*" included: trusting everyone is the bug)."""
    raw = os.environ.get(TRUSTED_PROXIES_ENV, "").strip()
    if not raw:
        return ""
    entries = [entry.strip() for entry in raw.split(",")]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{TRUSTED_PROXIES_ENV} lists {entry!r}, which is not an IP address or "
                "network; list the reverse proxies' addresses, e.g. 10.0.0.2,192.168.0.0/24."
            ) from None
    return ",".join(entries)


@dataclass
class Throttle:
    """Counts failed attempts per client and locks a client out after ``max_failures`` within
    ``window_s`` seconds, for ``lockout_s`` seconds. Thread-safe; state lives in the process.

    ``clock`` is injectable so tests need not sleep.
    """

    max_failures: int = 5
    window_s: float = 60.0
    lockout_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 when it may try now)."""
        with self._lock:
            return max(self._locked_until.get(client, 0.0) - self.clock(), 0.0)

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            recent = [t for t in self._failures.get(client, []) if now - t < self.window_s]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._locked_until[client] = now + self.lockout_s
                recent = []
            self._failures[client] = recent
            if len(self._failures) > 10_000:  # bound memory under a spray of client addresses
                self._failures = {client: recent}
            if len(self._locked_until) > 10_000:
                self._locked_until = {k: t for k, t in self._locked_until.items() if t > now}

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
