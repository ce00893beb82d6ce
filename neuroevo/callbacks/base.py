"""The callback contract: a class whose hooks do nothing by default and take ``**kwargs``, so
new arguments never break a callback (skorch's habit), and :func:`notify`, which calls one hook
of each callback.

Every hook gets ``evolution=``: the run's search, which honours
:class:`neuroevo.search.protocol.Search` (``evolution.stop(reason)`` ends the run after the
current generation), and it is the same object in every hook of a run: the one
``Evolution``, or with islands the ``Archipelago`` (``evolution.islands`` lists its islands'
own ``Evolution``). The hooks of one island's generation (``on_generation_begin`` and
``on_mixer_step``) also get ``island=`` (0 without islands). On the ``ray`` backend those two
do not fire: the islands train in Ray workers, which call no callbacks; the others fire in
the driver as on the ``local`` backend. The hooks and what else each gets:

``on_run_begin(recipe, task, out, engine, device)``
    once, before the first generation (a resumed run: before its next one).
``on_generation_begin(generation, population, island)``
    before a generation's mixer run.
``on_mixer_step(generation, step, steps, live, island)``
    after each mixer step.
``on_generation_end(summary, logbook, islands)``
    after a generation is checkpointed.
``on_final_step(step, steps, nets, ...)``
    after each step of the end of the run's training of ``nets`` nets together (``steps``:
    the longest's; ``refit``, and ``folds`` for a bagged refit, where they apply).
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
