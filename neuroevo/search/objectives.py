"""Several objectives: the validation metric against size and speed, within constraints.

``evolution.objectives`` names what a run optimises: ``["metric"]`` (the default, one
objective: the mixer's fitness chooses parents, the validation metric the best net), or the
metric with ``"params"`` (the net's parameters), ``"macs"`` (multiply-accumulates of one
sample's forward pass) and ``"latency_ms"`` (one sample's forward pass, timed on the run's
device), of which less is better. Parameters and multiply-accumulates are read off the genome,
exact and the same on every machine; a latency is measured once per architecture and kept
(:class:`Latency`). With several objectives:

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
    ``[constraints] max_params``, ``max_macs`` and ``max_latency_ms`` bound every net (with
    one objective too): a random net or a mutation that breaks one is drawn again, an
    architecture of ``population.initial`` that breaks one is an error, so no parent and no
    member of the front ever breaks one.
Hypervolume
    The front's progress is its hypervolume (:meth:`Objectives.hypervolume`, by ``moocore``):
    the area (volume) the front dominates up to a fixed reference point: a metric of 0 and
    each cost at its constraint, or where it has none at the largest net the space allows.
    The costs are divided by their reference, so for a metric within [0, 1] the hypervolume is
    within [0, 1] too; history records it per generation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import moocore
import networkx as nx
import numpy as np
import torch
from deap import base, tools

from neuroevo.genome import graph as G
from neuroevo.recipe import OBJECTIVES, Recipe
from neuroevo.storage.checkpoint import CheckpointError
from neuroevo.training import latency
from neuroevo.training.mixer import non_dominated

__all__ = ["Objectives", "TradeOff", "non_dominated"]

#: each cost's constraint key
LIMIT_KEYS = {
    "params": "constraints.max_params",
    "macs": "constraints.max_macs",
    "latency_ms": "constraints.max_latency_ms",
}
#: each cost in words (an error names it so)
WORDS = {"params": "parameters", "macs": "multiply-accumulates", "latency_ms": "ms of latency"}


class Latency:
    """Every batch-1 latency a run measured (:func:`neuroevo.training.latency.measure`), by
    architecture (the learning rate and lineage left out): each is measured once, and a
    checkpoint keeps them (:meth:`state`), so a resumed run reads the same times back."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.times: dict[str, float] = {}

    @staticmethod
    def key(genome: nx.DiGraph) -> str:
        g = G.copy(genome)
        g.graph.update(id=None, parent=None, mutation=None, born=None, lr=1.0)
        g.graph["fresh_weights"] = False
        return G.to_json(g)

    def __call__(self, genome: nx.DiGraph) -> float:
        key = self.key(genome)
        if key not in self.times:
            self.times[key] = round(latency.measure(genome, self.device), 6)
        return self.times[key]

    def state(self) -> dict[str, float]:
        return dict(self.times)

    def load(self, times: Any, where: str) -> None:
        """Take a checkpoint's times back, checked."""
        ok = isinstance(times, dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and v > 0
            for k, v in times.items()
        )  # fmt: skip
        if not ok:
            raise CheckpointError(f"{where}: latency_ms is not a table of positive times")
        self.times = {k: float(v) for k, v in times.items()}


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
    """A run's objectives, constraints and hypervolume reference point; ``latency`` keeps the
    times measured where a latency is an objective or bounded."""

    names: tuple[str, ...]
    limits: dict[str, float]  # cost -> its constraint (0: none)
    largest: Callable[[Callable[[nx.DiGraph], float]], float]  # a measure of the space's largest
    latency: Latency = field(default_factory=Latency)

    @classmethod
    def of(
        cls,
        recipe: Recipe,
        n_in: int,
        n_out: int,
        shape: Sequence[int] | None,
        device: torch.device | str = "cpu",
    ) -> Objectives:
        c = recipe.constraints
        limits = {"params": c.max_params, "macs": c.max_macs, "latency_ms": c.max_latency_ms}
        return cls(
            tuple(recipe.evolution.objectives),
            limits,
            lambda measure: G.largest(recipe.space, n_in, n_out, shape, measure),
            Latency(device),
        )

    @property
    def timed(self) -> bool:
        """Whether the run measures latencies (an objective, or a constraint)."""
        return "latency_ms" in self.names or bool(self.limits["latency_ms"])

    def measure(self, name: str, genome: nx.DiGraph) -> float:
        """Cost ``name`` of ``genome`` (parameters, multiply-accumulates, or milliseconds)."""
        if name == "latency_ms":
            return self.latency(genome)
        return {"params": G.n_parameters, "macs": G.n_macs}[name](genome)

    def reference(self, name: str) -> float:
        """The hypervolume's reference value of cost ``name``: its constraint, or the cost of
        the largest net the space allows."""
        return float(self.limits[name] or self.largest(lambda g: self.measure(name, g)))

    @property
    def several(self) -> bool:
        return len(self.names) > 1

    @property
    def costs(self) -> tuple[str, ...]:
        """The objectives of which less is better, in the recipe's order."""
        return tuple(n for n in self.names if n != "metric")

    def cost_values(self, genome: nx.DiGraph) -> dict[str, float]:
        """Each objective cost of ``genome``."""
        return {name: self.measure(name, genome) for name in self.costs}

    def broken(self, genome: nx.DiGraph) -> str | None:
        """The constraint ``genome`` breaks, in words (None: it keeps them all)."""
        for name, limit in self.limits.items():
            if limit and (value := self.measure(name, genome)) > limit:
                return f"{_shown(value)} {WORDS[name]}, above {LIMIT_KEYS[name]} = {_shown(limit)}"
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
        scale = np.array([1.0, *(self.reference(n) for n in self.costs)])
        minimised = -np.asarray(points, dtype=np.float64) / scale  # the metric negated, costs
        inside = minimised[(minimised < [0.0, *[1.0] * len(self.costs)]).all(axis=1)]
        if not len(inside):
            return 0.0
        return float(moocore.hypervolume(inside, ref=[0.0, *[1.0] * len(self.costs)]))


def _shown(value: float) -> str:
    """A count with thousands separators, a time with three significant digits."""
    return f"{value:,}" if float(value).is_integer() else f"{value:.3g}"
