"""The callback contract: a class whose hooks do nothing by default and take ``**kwargs``, so
new arguments never break a callback (skorch's habit), and :func:`notify`, which calls one hook
of each callback.

Every hook gets ``evolution=``: the object running the search, which honours
:class:`neuroevo.search.protocol.Search` (``evolution.stop(reason)`` ends the run after the
current generation). In a run without islands it is the one ``Evolution`` in every hook. With
islands, ``on_run_begin``, ``on_generation_end``, ``on_final_step`` and ``on_run_end`` get the
``Archipelago``, while ``on_generation_begin`` and ``on_mixer_step`` come from each island's own
``Evolution`` (``evolution.island`` says which) and fire only on the ``local`` backend: on Ray
the islands train in workers, which call no callbacks. The hooks and what else each gets:

``on_run_begin``
    once, before the first generation (a resumed run: before its next one).
``on_generation_begin(generation, population)``
    before a generation's mixer run.
``on_mixer_step(generation, step, steps, live)``
    after each mixer step.
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
