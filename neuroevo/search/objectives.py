"""Several objectives: the validation metric against size, within constraints.

``evolution.objectives`` names what a run optimises: ``["metric"]`` (the default, one
objective: the mixer's fitness chooses parents, the validation metric the best net), or the
metric with ``"params"`` (the net's parameters) and ``"macs"`` (multiply-accumulates of one
sample's forward pass), of which fewer is better. Both costs are read off the genome, so they
are exact and the same on every machine. With several objectives:

Selection
    An individual's fitness is its mixer fitness and its costs (:class:`TradeOff`). The elites
    are DEAP's NSGA-II choice (``selNSGA2``: the first non-dominated fronts, the last one cut
    by crowding distance); parents come from ``selTournamentDCD``: of two nets the one that
    dominates the other, else the one in the less crowded part of the front. A tournament is
    two nets (``evolution.tournament_size`` is for one objective).
The front
    A DEAP ``ParetoFront`` of nets as they were at the end of a generation, by their own
    validation metric (comparable across generations, unlike the mixer's relative fitness) and
    their costs, kept across generations: a net stays while no net seen since is at least as
    good on every objective and better on one. The end of the run trains the whole front
    (:mod:`neuroevo.search.final`).
The race
    The mixer's race (``mixer.race_points``) never retires a net that no other live net
    dominates on (its current score, its costs): the small nets that trail the leader but
    are the best of their size finish their run (:func:`neuroevo.training.mixer.run_population`'s
    ``costs``).
Constraints
    ``[constraints] max_params`` and ``max_macs`` bound every net (with one objective too): a
    random net or a mutation that breaks one is drawn again, an architecture of
    ``population.initial`` that breaks one is an error, so no parent and no member of the
    front ever breaks one.
Hypervolume
    The front's progress is its hypervolume (:meth:`Objectives.hypervolume`, by ``moocore``):
    the area (volume) the front dominates up to a fixed reference point: a metric of 0 and
    each cost at its constraint, or where it has none at the largest net the space allows.
    The costs are divided by their reference, so for a metric within [0, 1] the hypervolume is
    within [0, 1] too; history records it per generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import moocore
import networkx as nx
import numpy as np
from deap import base, tools

from neuroevo.errors import NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.recipe import OBJECTIVES, Recipe
from neuroevo.training.mixer import non_dominated

__all__ = ["Objectives", "TradeOff", "non_dominated"]

#: each cost's constraint key
LIMIT_KEYS = {"params": "constraints.max_params", "macs": "constraints.max_macs"}
#: each cost in words (an error names it so)
WORDS = {"params": "parameters", "macs": "multiply-accumulates"}
_MEASURE = {"params": G.n_parameters, "macs": G.n_macs}


class TradeOff(base.Fitness):
    """The metric (or the mixer's fitness) and the costs, each cost stored negated so that
    every objective is maximised; :data:`TRADE_OFFS` holds one class per count of objectives
    (DEAP wants a weight per value)."""

    weights = ()


#: objectives -> the fitness class of that many
TRADE_OFFS = {
    n: type(f"TradeOff{n}", (TradeOff,), {"weights": (1.0,) * n})
    for n in range(2, len(OBJECTIVES) + 1)
}


@dataclass(frozen=True)
class Objectives:
    """A run's objectives, constraints and hypervolume reference point."""

    names: tuple[str, ...]
    limits: dict[str, int]  # cost -> its constraint (0: none)
    reference: dict[str, float]  # cost -> the hypervolume's reference value

    @classmethod
    def of(cls, recipe: Recipe, n_in: int, n_out: int, shape: Sequence[int] | None) -> Objectives:
        limits = {"params": recipe.constraints.max_params, "macs": recipe.constraints.max_macs}
        reference = {
            name: float(limits[name] or G.largest(recipe.space, n_in, n_out, shape, measure))
            for name, measure in _MEASURE.items()
        }
        return cls(tuple(recipe.evolution.objectives), limits, reference)

    @property
    def several(self) -> bool:
        return len(self.names) > 1

    @property
    def costs(self) -> tuple[str, ...]:
        """The objectives of which less is better, in the recipe's order."""
        return tuple(n for n in self.names if n != "metric")

    def cost_values(self, genome: nx.DiGraph) -> dict[str, int]:
        """Each objective cost of ``genome``."""
        return {name: _MEASURE[name](genome) for name in self.costs}

    def broken(self, genome: nx.DiGraph) -> str | None:
        """The constraint ``genome`` breaks, in words (None: it keeps them all)."""
        for name, limit in self.limits.items():
            if limit and (value := _MEASURE[name](genome)) > limit:
                return f"{value:,} {WORDS[name]}, above {LIMIT_KEYS[name]} = {limit:,}"
        return None

    def values(self, metric: float, genome: nx.DiGraph) -> tuple[float, ...]:
        """``metric`` and the costs of ``genome`` negated: every value maximised."""
        return (metric, *(-float(v) for v in self.cost_values(genome).values()))

    def fitness(self, metric: float, genome: nx.DiGraph) -> TradeOff:
        return TRADE_OFFS[len(self.names)](self.values(metric, genome))

    def new_front(self) -> tools.ParetoFront:
        """An empty front of champions (one entry per individual: its best generation)."""
        return tools.ParetoFront(similar=lambda a, b: a.id == b.id)

    def hypervolume(self, points: Sequence[Sequence[float]]) -> float:
        """The hypervolume of ``points`` (:meth:`values`: the metric, the costs negated) up to
        the reference point (see the module); points beyond it add nothing."""
        if not points:
            return 0.0
        scale = np.array([1.0, *(self.reference[n] for n in self.costs)])
        minimised = -np.asarray(points, dtype=np.float64) / scale  # the metric negated, costs
        inside = minimised[(minimised < [0.0, *[1.0] * len(self.costs)]).all(axis=1)]
        if not len(inside):
            return 0.0
        return float(moocore.hypervolume(inside, ref=[0.0, *[1.0] * len(self.costs)]))

    def check_initial(self, genome: nx.DiGraph, where: str) -> None:
        """Refuse an architecture of ``population.initial`` that breaks a constraint."""
        problem = self.broken(genome)
        if problem:
            raise NeuroevoError(f"{where}: {problem}; drop it or raise the constraint")
