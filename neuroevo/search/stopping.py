"""When a search stops: each rule a small object asked after every generation (as Ray Tune's
stoppers), answering "stop now?" with its reason, which ``summary.json`` records as
``stopped_by``.

The rules, asked in this order (the first that answers stops the run):

:class:`Requested`   a callback called ``evolution.stop(reason)``: that reason
:class:`Generations` ``evolution.generations`` are completed: ``"generations"``
:class:`TimeBudget`  the next generation, as long as the mean one so far, would end past
                     ``evolution.time_budget`` seconds of search: ``"time_budget"``
:class:`TimeLimit`   the next generation (as long as the mean one so far, or the last three's
                     where longer) would leave the end of the run less time than it needs
                     within ``run.time_limit`` seconds of the whole run: ``"time_limit"``

Every time here is read from :func:`now`, one clock for the whole run (the search, the end of
the run's deadline, the phases recorded in ``summary.json``); the tests put a deterministic
clock in its place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from neuroevo.search import final
from neuroevo.training.alone import Deadline

if TYPE_CHECKING:
    from neuroevo.recipe import Recipe
    from neuroevo.search.protocol import Search

__all__ = [
    "Clock",
    "Generations",
    "Requested",
    "Stopper",
    "TimeBudget",
    "TimeLimit",
    "EndSeconds",
    "first_reason",
    "now",
    "rules",
]


def now() -> float:
    """The run's clock, in seconds (a monotonic one)."""
    return time.perf_counter()


@dataclass
class Clock:
    """The run's time: this process's start, the seconds run before it (a resumed run) and
    each generation's duration."""

    started: float = field(default_factory=lambda: now())
    before: float = 0.0
    durations: list[float] = field(default_factory=list)

    @staticmethod
    def now() -> float:
        return now()

    def seconds(self) -> float:
        """Seconds of the run so far, over every process that ran it."""
        return self.before + now() - self.started

    def deadline(self, seconds: float) -> Deadline:
        """The moment the run has lasted ``seconds``, on this clock."""
        return Deadline(self.started - self.before + seconds, now)


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


@dataclass
class TimeLimit:
    """The next generation (as long as the mean one so far, or the last three's mean where
    longer) would leave the end of the run less than it needs of the run's ``seconds``. The
    end needs at most ``share`` of them, less where ``measure(search, clock)`` says it needs
    less; that measurement (a few steps of the end's trainings) is taken only once the search
    is within ``share`` of the limit, and the last one is kept as ``reserved``, the seconds the
    search left for the end."""

    seconds: float
    share: float
    measure: Callable[[Search, Clock], float]
    reserved: float | None = None

    def check(self, search: Search, clock: Clock) -> str | None:
        # nets grow and machines get busier: the last generations, where they took longer
        recent = clock.durations[-3:]
        mean = max(sum(clock.durations) / len(clock.durations), sum(recent) / len(recent))
        most = self.share * self.seconds
        if clock.seconds() + mean + most <= self.seconds:
            return None  # room for a generation and the longest end there may be
        self.reserved = min(most, self.measure(search, clock))
        return "time_limit" if clock.seconds() + mean + self.reserved > self.seconds else None


@dataclass
class EndSeconds:
    """The seconds the end of the run would take if the search stopped now: its trainings'
    measured speed (:func:`neuroevo.search.final.estimate`) over ``final.final_steps`` steps
    each (the most it trains), with the room :data:`neuroevo.search.final.FILL` leaves, and
    the time of the measurement (the end takes it again). Measured again only when the nets
    the end would keep change (a few steps of a bagged refit of conv nets take seconds)."""

    kept: list[int] | None = None
    seconds: float = 0.0

    def __call__(self, search: Search, clock: Clock) -> float:
        kept = [c.id for c in final.kept(search)]
        if kept != self.kept:
            began = clock.now()
            speed = final.estimate(search, clock.now)
            took = clock.now() - began
            self.kept = kept
            self.seconds = speed.seconds(search.recipe.final.final_steps) / final.FILL + took
        return self.seconds


def rules(recipe: Recipe) -> list[Stopper]:
    """The recipe's stopping rules, in the order they are asked."""
    found: list[Stopper] = [Requested(), Generations(recipe.evolution.generations)]
    if recipe.evolution.time_budget:
        found.append(TimeBudget(recipe.evolution.time_budget))
    if recipe.run.time_limit:
        found.append(TimeLimit(recipe.run.time_limit, recipe.final.time_share, EndSeconds()))
    return found


def first_reason(stoppers: list[Stopper], search: Search, clock: Clock) -> str | None:
    """The reason of the first rule that stops the search now, or None."""
    return next((r for s in stoppers if (r := s.check(search, clock))), None)
