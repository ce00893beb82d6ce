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
from collections.abc import Callable, Mapping
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
    above: float | None = None  # a bound the value must exceed (exclusive)
    below: float | None = None  # a bound the value must stay under (exclusive)
    choices: tuple[str, ...] = ()  # the values a string may take
    min_items: int = 0  # a list's fewest items; its bounds and choices hold for each item
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
    ``spec``'s bounds or choices (for a list, its length and each item's): the one range check
    of every key that has them."""
    if isinstance(value, tuple):
        if len(value) < spec.min_items:
            raise InvalidSetting(key, f"must list at least {spec.min_items} value(s)")
        for item in value:
            bound = _broken(item, spec)
            if bound:
                raise InvalidSetting(key, f"each must be {bound}, got {_shown(item, spec)}")
    else:
        bound = _broken(value, spec)
        if bound:
            raise InvalidSetting(key, f"must be {bound}, got {_shown(value, spec)}")


def _broken(value: Any, spec: Setting) -> str:
    """The bound ``value`` breaks, in words ("at least 1"), or "" where it keeps them all."""
    if spec.choices:
        return "" if value in spec.choices else "one of " + ", ".join(map(repr, spec.choices))
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""  # the type is checked where the value is read
    low = (spec.low is not None and value < spec.low) or (
        spec.above is not None and not value > spec.above
    )
    high = (spec.high is not None and value > spec.high) or (
        spec.below is not None and not value < spec.below
    )
    if spec.above is not None or spec.below is not None:
        return _range(spec, _plain) if low or high else ""  # an open interval is said whole
    if low:
        return f"at least {_plain(spec.low)}"
    return f"at most {_plain(spec.high)}" if high else ""


def _shown(value: Any, spec: Setting) -> str:
    if spec.choices:
        return f"{value!r}{did_you_mean(value, spec.choices, show=str)}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(spec: Setting, number: Callable[[float], str]) -> str:
    """``spec``'s numeric bounds in words ("above 0 and at most 1000"), each number as
    ``number`` writes it."""
    low = high = ""
    if spec.low is not None:
        low = f"at least {number(spec.low)}"
    elif spec.above is not None:
        low = f"above {number(spec.above)}"
    if spec.high is not None:
        high = f"at most {number(spec.high)}"
    elif spec.below is not None:
        high = f"below {number(spec.below)}"
    return " and ".join(w for w in (low, high) if w)


def _plain(x: float) -> str:
    """A bound in an error: 1000, 1e+07, 0.5."""
    return f"{x:g}"


def _grouped(x: float) -> str:
    """A bound in the reference: 1,000, 10,000,000, 0.5, 1e-08."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


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
        return f"list of {_type_name(typing.get_args(hint)[0])}s"
    if dataclasses.is_dataclass(hint):
        return "table"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _bounds(spec: Setting) -> str:
    """``spec``'s bounds as the reference shows them: "'a', 'b'", "at least 1 and at most
    1,000", each item's for a list, and what is checked elsewhere."""
    words = ", ".join(map(repr, spec.choices)) if spec.choices else _range(spec, _grouped)
    if spec.min_items:
        each = f", each {'one of ' if spec.choices else ''}{words}" if words else ""
        words = f"at least {spec.min_items} item(s){each}"
    return "; ".join(w for w in (words, spec.checked_by) if w)


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
