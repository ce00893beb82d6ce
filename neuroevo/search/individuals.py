"""The individuals evolution moves: DEAP fitness classes (defined at module scope, never by
``creator.create``), an individual of the population, a champion of the hall of fame, a
generation's summary, and a migrant between islands (plain data: genome JSON and safetensors
bytes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch
from deap import base
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from neuroevo.errors import NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.training import mixer, network
from neuroevo.training.network import State


class Fitness(base.Fitness):
    """The mixer's fitness (round survived + score): higher is better."""

    weights = (1.0,)


class MetricFitness(base.Fitness):
    """A net's own validation metric, the order of the hall of fame: higher is better."""

    weights = (1.0,)


class Individual:
    """A genome, the weights it starts its next mixer run from, and what the last run said."""

    def __init__(self, genome: nx.DiGraph, start_from: State | None = None) -> None:
        self.genome = genome
        self.fitness = Fitness()
        self.start_from = start_from  # parent's (or its own, for an elite) weights; None: fresh
        self.state: State | None = None  # weights after the last mixer run
        self.result: mixer.NetResult | None = None

    @property
    def id(self) -> int:
        return self.genome.graph["id"]


class Champion:
    """A net as it was at the end of one generation, kept by the hall of fame."""

    def __init__(
        self, genome: nx.DiGraph, state: State, generation: int, validation_metric: float
    ) -> None:
        self.genome = genome
        self.state = state
        self.generation = generation
        self.validation_metric = validation_metric
        self.fitness = MetricFitness((validation_metric,))

    @classmethod
    def of(cls, ind: Individual, generation: int) -> Champion:
        state = {k: v.detach().clone() for k, v in ind.state.items()}
        return cls(G.copy(ind.genome), state, generation, ind.result.validation_metric)

    @property
    def id(self) -> int:
        return self.genome.graph["id"]


@dataclass
class GenerationSummary:
    generation: int
    best_metric: float | None
    mean_metric: float | None
    best_signature: str
    best_id: int
    elapsed: float
    records: list[dict[str, Any]] = field(repr=False, default_factory=list)
    #: what the report draws of the mixer run: tensors (:meth:`MixerResult.recording`) and
    #: plain data (``generation``, ``ids``, ``retired_at``, ``diverged``, ``race_steps``, ...)
    mixing: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = field(repr=False, default=None)
    #: each island's own summary, where this one is merged over an archipelago's islands
    islands: list[GenerationSummary] = field(repr=False, default_factory=list)


@dataclass(frozen=True)
class Migrant:
    """A net on its way to another island: its genome as JSON and its weights as safetensors
    bytes (plain data that any transport carries; nothing is pickled)."""

    genome: str
    weights: bytes
    island: int  # where it comes from

    @classmethod
    def of(cls, genome: nx.DiGraph, state: State, island: int) -> Migrant:
        tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        return cls(G.to_json(genome), save_tensors(tensors), island)

    def unpack(self, space: Any) -> tuple[nx.DiGraph, State]:
        """The genome (validated against ``space``) and its weights, checked against it."""
        genome = G.from_json(self.genome, source=f"a migrant from island {self.island}")
        G.validate(genome, space)
        state = load_tensors(self.weights)
        expected = network.shapes(genome)
        if {k: tuple(v.shape) for k, v in state.items()} != expected:
            raise NeuroevoError(
                f"a migrant from island {self.island}: its weights do not match its genome"
            )
        return genome, state

    @property
    def size(self) -> int:
        """Bytes on the wire: genome JSON and weights."""
        return len(self.genome.encode()) + len(self.weights)
