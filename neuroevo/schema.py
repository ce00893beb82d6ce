"""One schema per setting: a recipe key's default, bounds, help and whether it may change on
resume, written once as :func:`setting` metadata on a field of a section dataclass (its type is
the field's annotation). The range checks (:func:`check`), the keys a resume may change
(:func:`resumable`), the keys that moved between sections (:func:`moved`) and the reference the
docs and the CLI show (:func:`rows`) all derive from it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neuroevo.errors import InvalidSetting
from neuroevo.registry import did_you_mean


@dataclass(frozen=True)
class Setting:
    """What a recipe key promises besides its type and default."""

    help: str = ""
    low: float | None = None  # the least value (inclusive)
    high: float | None = None  # the largest (inclusive); keeps a mistyped number from
    # exhausting the machine (threads, memory, days of compute)
    choices: tuple[str, ...] = ()  # the values a string may take
    resume: bool = False  # may change when a run is resumed: it extends it or changes no result
    was: str = ""  # the section that held the key before; a recipe may still give it there
    checked_by: str = ""  # where the key's range is checked instead of here (bounds as text)


def setting(default: Any = dataclasses.MISSING, *, factory: Any = None, **spec: Any) -> Any:
    """A dataclass field with its :class:`Setting` (``like=`` another one to start from)."""
    like = spec.pop("like", None)
    meta = {"setting": dataclasses.replace(like, **spec) if like else Setting(**spec)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings(cls: type) -> dict[str, Setting]:
    """``cls``'s fields that carry a :class:`Setting`, by name."""
    return {
        f.name: f.metadata["setting"] for f in dataclasses.fields(cls) if "setting" in f.metadata
    }


def check(key: str, value: Any, spec: Setting) -> None:
    """Raise :class:`~neuroevo.errors.InvalidSetting` naming ``key`` where ``value`` is outside
    ``spec``'s bounds or choices: the one range check of every key that has them."""
    if spec.choices and value not in spec.choices:
        raise InvalidSetting(
            key,
            f"must be one of {', '.join(map(repr, spec.choices))}, got {value!r}"
            f"{did_you_mean(value, spec.choices, show=str)}",
        )
    if spec.low is not None and value < spec.low:
        raise InvalidSetting(key, f"must be at least {spec.low}, got {value}")
    if spec.high is not None and value > spec.high:
        raise InvalidSetting(key, f"must be at most {spec.high:g}, got {value:g}")


def check_section(section: str, obj: Any, names: Mapping[str, str] | None = None) -> None:
    """:func:`check` every field of the dataclass ``obj`` (the ``[section]`` table); ``names``
    maps a dotted key to the name its value was given under (a key that moved)."""
    for name, spec in settings(type(obj)).items():
        key = f"{section}.{name}"
        check((names or {}).get(key, key), getattr(obj, name), spec)


def resumable(sections: Mapping[str, type]) -> frozenset[tuple[str, str]]:
    """``(section, key)`` of every key that may change when a run is resumed."""
    return frozenset(
        (section, name)
        for section, cls in sections.items()
        for name, spec in settings(cls).items()
        if spec.resume
    )


def moved(sections: Mapping[str, type]) -> dict[tuple[str, str], str]:
    """``(old section, key)`` -> the section that holds the key now."""
    return {
        (spec.was, name): section
        for section, cls in sections.items()
        for name, spec in settings(cls).items()
        if spec.was
    }


@dataclass(frozen=True)
class Row:
    """One key of the reference: what a docs page lists."""

    key: str
    type: str
    default: Any
    bounds: str
    help: str
    resume: bool


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _bounds(spec: Setting) -> str:
    if spec.choices:
        return ", ".join(map(repr, spec.choices))
    if spec.low is not None or spec.high is not None:
        low = "" if spec.low is None else f"{spec.low:,}"
        return f"{low} to {spec.high:,}" if spec.high is not None else f"at least {low}"
    return spec.checked_by


def rows(sections: Mapping[str, type]) -> list[Row]:
    """Every key of ``sections`` (name -> dataclass) with its type, default, bounds and help."""
    out = []
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            spec = f.metadata.get("setting", Setting())
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            default = None if default is dataclasses.MISSING else default
            out.append(
                Row(
                    f"{section}.{f.name}",
                    _type_name(hints[f.name]),
                    default,
                    _bounds(spec),
                    spec.help,
                    spec.resume,
                )
            )
    return out


#: what each type a recipe key may have is called in an error
TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def coerce(value: Any, expected: Any, key: str) -> Any:
    """``value`` (as TOML parsed it) as the type ``expected`` (a field's annotation: ``int``,
    ``float``, ``str``, ``bool`` or ``tuple[X, ...]``; an integer is a number, a boolean is not);
    :class:`~neuroevo.errors.InvalidSetting` naming ``key`` otherwise."""
    if typing.get_origin(expected) is tuple:
        (item_type, _) = typing.get_args(expected)
        if not isinstance(value, list):
            raise InvalidSetting(
                key,
                f"expected a list of {TYPE_NAMES[item_type][2:]}s, "
                f"got {json.dumps(value, default=str)}",
            )
        return tuple(coerce(v, item_type, key) for v in value)
    ok = (
        isinstance(value, bool)
        if expected is bool
        else not isinstance(value, bool)
        and (isinstance(value, (int, float)) if expected is float else isinstance(value, expected))
    )
    if expected is float and ok and not math.isfinite(value):
        ok = False
    if not ok:
        raise InvalidSetting(
            key, f"expected {TYPE_NAMES[expected]}, got {json.dumps(value, default=str)}"
        )
    return float(value) if expected is float else value
