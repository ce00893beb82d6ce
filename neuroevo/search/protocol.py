"""The search contract: what the run driver (:mod:`neuroevo.runner`) and the end of a run
(:func:`neuroevo.search.final.finish`) use of a search. One population
(:class:`~neuroevo.search.evolution.Evolution`) and several islands
(:class:`~neuroevo.search.islands.Archipelago`) both honour it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from deap import tools

    from neuroevo import tasks
    from neuroevo.recipe import Recipe
    from neuroevo.search.individuals import GenerationSummary
    from neuroevo.search.objectives import Objectives
    from neuroevo.storage.checkpoint import Snapshot
    from neuroevo.training.engine import Engine

__all__ = ["Search"]


class Search(Protocol):
    """A search advanced one generation at a time, checkpointed whole after each."""

    recipe: Recipe
    task: tasks.Task
    device: torch.device
    engine: Engine  # trains a generation's nets (its ``__name__`` goes into the summary)

    @property
    def generation(self) -> int:
        """The generation the population is at (counted from 0)."""
        ...

    @property
    def stop_reason(self) -> str | None:
        """Why a callback asked the search to stop (None: it did not)."""
        ...

    @property
    def hall_of_fame(self) -> tools.HallOfFame:
        """The best nets by validation metric, best first."""
        ...

    @property
    def objectives(self) -> Objectives:
        """The run's objectives and constraints (and the latencies it measured)."""
        ...

    @property
    def front(self) -> tools.ParetoFront:
        """With several objectives, the nets no other beats on every objective (by validation
        metric and costs); empty with one."""
        ...

    @property
    def logbook(self) -> tools.Logbook: ...

    def step(self) -> GenerationSummary:
        """One generation; where the search has islands, ``islands`` of the summary holds
        each island's own."""
        ...

    def stop(self, reason: str = "callback") -> None:
        """End the search after the current generation."""
        ...

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on every callback, with ``evolution=`` this search."""
        ...

    def state_dict(self) -> Snapshot: ...

    def load_state_dict(self, snapshot: Snapshot) -> None: ...

    def close(self) -> None:
        """Release what the search holds (a Ray cluster it started)."""
        ...
