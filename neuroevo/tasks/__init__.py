"""Built-in tasks and the registry a recipe's ``[task] name`` is looked up in."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from neuroevo.errors import NeuroevoError
from neuroevo.tasks.base import Task
from neuroevo.tasks.logbits import logbits

__all__ = ["Task", "build", "logbits", "names"]

_BUILDERS: dict[str, Callable[..., Task]] = {"logbits": logbits}


def names() -> list[str]:
    return list(_BUILDERS)


def options(name: str) -> dict[str, Any]:
    """The options a task accepts besides ``seed``, with their defaults."""
    signature = inspect.signature(_builder(name))
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.name != "seed" and p.kind is p.KEYWORD_ONLY
    }


def _builder(name: str) -> Callable[..., Task]:
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, _BUILDERS, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise NeuroevoError(f"unknown task {name!r}{hint} (known: {', '.join(_BUILDERS)})")
    return _BUILDERS[name]


def build(name: str, seed: int, **kwargs: Any) -> Task:
    """Build a registered task; splits come from ``seed``."""
    accepted = options(name)
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" (did you mean task.{close[0]}?)" if close else ""
            raise NeuroevoError(
                f"task.{key}: the {name} task has no such option{hint}; "
                f"its options: {', '.join(accepted) or 'none'}"
            )
    return _builder(name)(seed=seed, **kwargs)
