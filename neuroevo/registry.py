"""Named plugins: one registry type for mutation operators and tasks (and later engines or
exporters), and one did-you-mean helper for every message that suggests a name.

A registry maps names to callables. Users add their own with its decorator (``@registry.add``,
``@registry.add("name")``) or name an unregistered function in a recipe as
``"package.module:function"``, which :meth:`Registry.resolve` imports. Built-ins, registered
first and then sealed, cannot be removed.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from neuroevo.errors import NeuroevoError

T = TypeVar("T")


def close_matches(name: str, known: Iterable[str], *, n: int = 1) -> list[str]:
    """The known names closest to ``name`` (at most ``n``), best first."""
    return difflib.get_close_matches(name, list(known), n=n, cutoff=0.6 if n == 1 else 0.5)


def did_you_mean(name: str, known: Iterable[str], *, show: Callable[[str], str] = repr) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name, or ``""`` when none is close."""
    close = close_matches(name, known)
    return f" (did you mean {show(close[0])}?)" if close else ""


class Registry(Generic[T]):
    """Names -> callables of one ``kind`` (``"mutation"``, ``"task"``). ``wrap(name, func)``
    turns a registered or imported function into what the registry hands out; ``error`` is
    the exception for a name that cannot be resolved."""

    def __init__(
        self,
        kind: str,
        *,
        wrap: Callable[[str, Callable], T] = lambda name, func: func,
        error: type[NeuroevoError] = NeuroevoError,
    ) -> None:
        self.kind = kind
        self._wrap = wrap
        self._error = error
        self._items: dict[str, T] = {}
        self.builtins: tuple[str, ...] = ()

    def seal_builtins(self) -> None:
        """Everything registered so far is built in and cannot be unregistered."""
        self.builtins = tuple(self._items)

    def register(self, name: str, func: Callable) -> T:
        if not isinstance(name, str) or not name.isidentifier():
            raise NeuroevoError(f"a {self.kind} name must be an identifier, got {name!r}")
        if name in self._items:
            raise NeuroevoError(f"a {self.kind} named {name!r} is already registered")
        item = self._wrap(name, func)
        self._items[name] = item
        return item

    def decorator(self, name_or_func: str | Callable | None = None, *, name: str | None = None):
        """``@add``, ``@add("name")`` or ``@add(name="name")``: register under a name (the
        function's own by default)."""
        if callable(name_or_func):
            return self.register(name or name_or_func.__name__, name_or_func)
        chosen = name_or_func if name_or_func is not None else name

        def decorate(func: Callable) -> T:
            return self.register(chosen or func.__name__, func)

        return decorate

    def unregister(self, name: str) -> None:
        """Remove a registered user item (built-ins cannot be removed)."""
        if name in self.builtins:
            raise NeuroevoError(f"the built-in {self.kind} {name!r} cannot be unregistered")
        self._items.pop(name, None)

    @contextmanager
    def registered(self, func: Callable, name: str | None = None) -> Iterator[T]:
        """Register ``func`` for the duration of a ``with`` block (handy in tests)."""
        chosen = name or func.__name__
        item = self.register(chosen, func)
        try:
            yield item
        finally:
            self._items.pop(chosen, None)

    def names(self) -> list[str]:
        """Registered names, built-ins first."""
        return list(self._items)

    def resolve(self, name: str) -> T:
        """The item registered under ``name``, or the function a ``"package.module:function"``
        reference names (imported, wrapped, not registered). Unknown names list the nearest."""
        if name in self._items:
            return self._items[name]
        if ":" not in name:
            close = close_matches(name, self._items, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise self._error(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self._items)}; "
                f"user {self.kind}s as 'package.module:function')"
            )
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:  # a user module that fails to import
            raise self._error(
                f"{self.kind} {name!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})"
            ) from None
        target: Any = getattr(module, attr, None)
        if target is None:
            public = [a for a in dir(module) if not a.startswith("_")]
            close = close_matches(attr, public, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise self._error(f"{self.kind} {name!r}: {module_name} has no {attr!r}{hint}")
        if not callable(target):
            raise self._error(f"{self.kind} {name!r} is not callable")
        return target if target in self._items.values() else self._wrap(name, target)
