"""Frozen dataclasses to JSON-able values and back, driven by type hints.

The facts travel through the ledger as JSON; this keeps ``to_json`` and
``from_json`` in one small place instead of one pair per dataclass. Supports
the shapes the facts use: nested dataclasses, ``X | None``, ``tuple[X, ...]``,
``dict[str, X]``, ``Literal`` strings and plain scalars.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union, cast

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        last: Exception | None = None
        for option in options:
            try:
                return _decode(option, value)
            except (TypeError, ValueError, KeyError) as exc:
                last = exc
        raise ValueError(f"no type of {tp} fits {value!r}") from last
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list for {tp}, got {value!r}")
        item = args[0] if args else Any
        return tuple(_decode(item, v) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {tp}, got {value!r}")
        return {k: _decode(args[1], v) for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{value!r} is not one of {args}")
        return value
    if tp is Any:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_jsonable(tp, value)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise TypeError(f"expected {tp.__name__}, got {value!r}")
    return value


def from_jsonable(cls: type[T], data: Any) -> T:
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {data!r}")
    hints = _hints(cast(Any, cls))
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name])
    return cls(**kwargs)
