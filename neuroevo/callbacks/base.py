"""The callback contract: a class whose hooks do nothing by default and take ``**kwargs``, so
new arguments never break a callback (skorch's habit), and :func:`notify`, which calls one hook
of each callback.

Every hook gets ``evolution=``, the object running the search (an ``Evolution``, or an
``Archipelago`` when the run has islands); ``evolution.stop(reason)`` ends the run after the
current generation. The hooks and what else each gets:

``on_run_begin``
    once, before the first generation (a resumed run: before its next one).
``on_generation_begin(generation, population)``
    before a generation's mixer run (with islands: once per island, in the driver).
``on_mixer_step(generation, step, steps, live)``
    after each mixer step (local runs only: on Ray the islands' workers do not report steps).
``on_generation_end(summary, logbook, islands)``
    after a generation is checkpointed.
``on_final_step(step, steps, ...)``
    during final training (``refit``, ``fold``, ``folds``, ``member`` where they apply).
``on_run_end(result)``
    once, with the :class:`~neuroevo.runner.RunResult`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Callback:
    """Hooks called by the run; each does nothing by default and takes ``**kwargs``, so new
    arguments never break a callback. ``evolution.stop(reason)`` ends the run after the
    current generation."""

    def on_run_begin(self, **kwargs: Any) -> None: ...

    def on_generation_begin(self, **kwargs: Any) -> None: ...

    def on_mixer_step(self, **kwargs: Any) -> None: ...

    def on_generation_end(self, **kwargs: Any) -> None: ...

    def on_final_step(self, **kwargs: Any) -> None: ...

    def on_run_end(self, **kwargs: Any) -> None: ...


def notify(callbacks: Iterable[Callback], hook: str, **kwargs: Any) -> None:
    """Call ``hook`` of every callback with ``kwargs``, in order."""
    for callback in callbacks:
        getattr(callback, hook)(**kwargs)
