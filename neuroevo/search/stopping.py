"""When a search stops: each rule a small object asked after every generation (as Ray Tune's
stoppers), answering "stop now?" with its reason, which ``summary.json`` records as
``stopped_by``.

The rules, asked in this order (the first that answers stops the run):

:class:`Requested`   a callback called ``evolution.stop(reason)``: that reason
:class:`Generations` ``evolution.generations`` are completed: ``"generations"``
:class:`TimeBudget`  the next generation, as long as the mean one so far, would end past
                     ``evolution.time_budget`` seconds of search: ``"time_budget"``
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from neuroevo.recipe import Recipe
    from neuroevo.search.protocol import Search

__all__ = ["Clock", "Generations", "Requested", "Stopper", "TimeBudget", "first_reason", "rules"]


@dataclass
class Clock:
    """The search's time: this process's start, the seconds searched before it (a resumed
    run) and each generation's duration."""

    started: float = field(default_factory=time.perf_counter)
    before: float = 0.0
    durations: list[float] = field(default_factory=list)

    def seconds(self) -> float:
        """Seconds of search so far, over every process that ran it."""
        return self.before + time.perf_counter() - self.started


class Stopper(Protocol):
    def check(self, search: Search, clock: Clock) -> str | None:
        """The reason to stop now, or None to go on."""
        ...


class Requested:
    """A callback asked the search to stop (``evolution.stop(reason)``)."""

    def check(self, search: Search, clock: Clock) -> str | None:
        return search.stop_reason or None


@dataclass
class Generations:
    """``generations`` generations are completed."""

    generations: int

    def check(self, search: Search, clock: Clock) -> str | None:
        return "generations" if search.generation + 1 >= self.generations else None


@dataclass
class TimeBudget:
    """The next generation would end past ``seconds`` of search (judged by the mean
    generation so far)."""

    seconds: float

    def check(self, search: Search, clock: Clock) -> str | None:
        mean = sum(clock.durations) / len(clock.durations)
        return "time_budget" if clock.seconds() + mean > self.seconds else None


def rules(recipe: Recipe) -> list[Stopper]:
    """The recipe's stopping rules, in the order they are asked."""
    found: list[Stopper] = [Requested(), Generations(recipe.evolution.generations)]
    if recipe.evolution.time_budget:
        found.append(TimeBudget(recipe.evolution.time_budget))
    return found


def first_reason(stoppers: list[Stopper], search: Search, clock: Clock) -> str | None:
    """The reason of the first rule that stops the search now, or None."""
    return next((r for s in stoppers if (r := s.check(search, clock))), None)
