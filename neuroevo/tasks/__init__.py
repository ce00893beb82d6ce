"""Built-in tasks, and the registry a recipe's ``[task] name`` is looked up in.

A task builder is a function taking ``seed`` and its options as keyword arguments and returning
a :class:`Task` (:func:`from_arrays` makes one from arrays). Register your own with
``@neuroevo.register_task``, or name it in a recipe as ``"package.module:function"``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from neuroevo.errors import NeuroevoError
from neuroevo.registry import Registry, did_you_mean
from neuroevo.tasks import files, sklearn_sets
from neuroevo.tasks.base import Task, TaskError, from_arrays, with_shape
from neuroevo.tasks.logbits import logbits

__all__ = [
    "Task",
    "TaskError",
    "build",
    "from_arrays",
    "names",
    "options",
    "register_task",
    "task",
]

_REGISTRY: Registry[Callable[..., Task]] = Registry("task")
for _name, _func in {
    "logbits": logbits,
    **sklearn_sets.BUILDERS,
    "csv": files.csv,
    "npz": files.npz,
}.items():
    _REGISTRY.register(_name, _func)
_REGISTRY.seal_builtins()
BUILTINS = _REGISTRY.builtins


def register_task(
    name_or_func: str | Callable[..., Task] | None = None, *, name: str | None = None
) -> Any:
    """Register a task builder: ``@register_task``, ``@register_task("name")`` or
    ``@register_task(name="name")``."""
    return _REGISTRY.decorator(name_or_func, name=name)


#: the decorator's earlier name, kept
task = register_task


unregister = _REGISTRY.unregister
names = _REGISTRY.names
_builder = _REGISTRY.resolve


def options(name: str) -> dict[str, Any] | None:
    """The options a task accepts besides ``seed``, with their defaults (None: any)."""
    params = inspect.signature(_builder(name)).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {
        **{
            p.name: (None if p.default is p.empty else p.default)
            for p in params
            if p.name != "seed" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        },
        "shape": [],  # every task's: the inputs' shape, for convolutions (empty: flat)
    }


def build(name: str, seed: int, **kwargs: Any) -> Task:
    """Build a task; its splits come from ``seed``. A builder's own failure names the task."""
    accepted = options(name)
    shape = kwargs.pop("shape", None)  # every task's option, applied here
    for key in kwargs:
        if accepted is not None and key not in accepted:
            hint = did_you_mean(key, accepted, show=lambda k: f"task.{k}")
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
    result = with_shape(result, shape, "task.shape")
    result.check()
    return result
