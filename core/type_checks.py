"""Plain values checked against type hints, the way configs read YAML.

``matches`` tells whether a value fits a hint (a ``Literal``, a union, a list or mapping of
hinted items, or a plain class; a float must be finite and no bool passes for a number),
``describe`` says in words what a hint allows, and ``coerce`` reads YAML scalars leniently.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(describe(a) for a in get_args(hint))
    if origin is list:
        return f"a list of {describe(get_args(hint)[0])}"
    if origin is dict:
        key, value = get_args(hint)
        return f"a mapping of {describe(key)} to {describe(value)}"
    if hint is type(None):
        return "null"
    if hint is float:
        return "a number"
    if hint is int:
        return "an integer"
    if hint is bool:
        return "true or false"
    if hint is str:
        return "a string"
    return getattr(hint, "__name__", str(hint))


def matches(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(matches(value, a) for a in get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(matches(v, get_args(hint)[0]) for v in value)
    if origin is dict:
        key, item = get_args(hint)
        return isinstance(value, dict) and all(
            matches(k, key) and matches(v, item) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def coerce(value: Any, hint: Any) -> Any:
    """Lenient reading of YAML scalars: PyYAML reads ``1e-5`` as a string, ints stand for floats."""
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if get_origin(hint) is list and isinstance(value, list):
        return [coerce(v, get_args(hint)[0]) for v in value]
    if get_origin(hint) is dict and isinstance(value, dict):
        key, item = get_args(hint)
        return {coerce(k, key): coerce(v, item) for k, v in value.items()}
    return value
