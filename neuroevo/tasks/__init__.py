"""Built-in tasks, and the registry a recipe's ``[task] name`` is looked up in.

A task builder is a function taking ``seed`` and its options as keyword arguments and returning
a :class:`Task` (:func:`from_arrays` makes one from arrays). Register your own with
``@neuroevo.task``, or name it in a recipe as ``"package.module:function"``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from neuroevo.errors import NeuroevoError
from neuroevo.tasks import files, sklearn_sets
from neuroevo.tasks.base import Task, TaskError, from_arrays
from neuroevo.tasks.logbits import logbits

__all__ = ["Task", "TaskError", "build", "from_arrays", "names", "options", "task"]

_BUILDERS: dict[str, Callable[..., Task]] = {
    "logbits": logbits,
    **sklearn_sets.BUILDERS,
    "csv": files.csv,
    "npz": files.npz,
}
BUILTINS = tuple(_BUILDERS)


def task(name_or_func: str | Callable[..., Task] | None = None, *, name: str | None = None) -> Any:
    """Register a task builder: ``@task``, ``@task("name")`` or ``@task(name="name")``."""
    if callable(name_or_func):
        return _register(name or name_or_func.__name__, name_or_func)
    chosen = name_or_func if name_or_func is not None else name

    def decorate(func: Callable[..., Task]) -> Callable[..., Task]:
        return _register(chosen or func.__name__, func)

    return decorate


def _register(name: str, func: Callable[..., Task]) -> Callable[..., Task]:
    if not isinstance(name, str) or not name.isidentifier():
        raise NeuroevoError(f"a task name must be an identifier, got {name!r}")
    if name in _BUILDERS:
        raise NeuroevoError(f"a task named {name!r} is already registered")
    _BUILDERS[name] = func
    return func


def unregister(name: str) -> None:
    """Remove a registered user task (built-ins cannot be removed)."""
    if name in BUILTINS:
        raise NeuroevoError(f"the built-in task {name!r} cannot be unregistered")
    _BUILDERS.pop(name, None)


def names() -> list[str]:
    return list(_BUILDERS)


def _builder(name: str) -> Callable[..., Task]:
    if name in _BUILDERS:
        return _BUILDERS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:  # a user module that fails to import
            raise NeuroevoError(
                f"task {name!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})"
            ) from None
        func = getattr(module, attr, None)
        if not callable(func):
            raise NeuroevoError(f"task {name!r}: {module_name} has no function {attr!r}")
        return func
    close = difflib.get_close_matches(name, _BUILDERS, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise NeuroevoError(
        f"unknown task {name!r}{hint} (known: {', '.join(_BUILDERS)}; "
        "user tasks as 'package.module:function')"
    )


def options(name: str) -> dict[str, Any] | None:
    """The options a task accepts besides ``seed``, with their defaults (None: any)."""
    params = inspect.signature(_builder(name)).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {
        p.name: (None if p.default is p.empty else p.default)
        for p in params
        if p.name != "seed" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def build(name: str, seed: int, **kwargs: Any) -> Task:
    """Build a task; its splits come from ``seed``. A builder's own failure names the task."""
    accepted = options(name)
    for key in kwargs:
        if accepted is not None and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" (did you mean task.{close[0]}?)" if close else ""
            raise NeuroevoError(
                f"task.{key}: the {name} task has no such option{hint}; "
                f"its options: {', '.join(accepted) or 'none'}"
            )
    try:
        result = _builder(name)(seed=seed, **kwargs)
    except NeuroevoError:
        raise
    except (Exception, SystemExit) as exc:
        if name in BUILTINS:  # our own failure: an internal error, not the user's
            raise
        raise TaskError(f"task {name!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, Task):
        raise TaskError(
            f"task {name!r} returned {type(result).__name__}, not a Task "
            "(neuroevo.tasks.from_arrays makes one from arrays)"
        )
    result.check()
    return result
