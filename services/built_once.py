"""A memo for what a server builds on first use (a recommender, a market model): like
``functools.lru_cache``, but the first callers of one key wait for a single build instead of
each building it. Twenty clients asking a cold server for recommendations otherwise build the
same recommender twenty times over on two cores, and wait for all of it (2 s; 0.3 s once)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


def built_once(maxsize: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Memoise a function of hashable positional arguments, keeping ``maxsize`` results."""

    def decorate(build: Callable[..., T]) -> Callable[..., T]:
        cached = functools.lru_cache(maxsize=maxsize)(build)
        guard = threading.Lock()
        building: dict[tuple[Hashable, ...], threading.Lock] = {}

        @functools.wraps(build)
        def memoised(*args: Hashable) -> T:
            with guard:
                lock = building.setdefault(args, threading.Lock())
            with lock:  # one build per key; later callers find it cached
                result = cached(*args)
            with guard:
                building.pop(args, None)
            return result

        return memoised

    return decorate
