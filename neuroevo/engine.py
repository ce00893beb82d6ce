"""Engines: how a generation's nets are trained together in one mixer run.

The seam between evolution and training. An engine takes :class:`Member` objects (a genome,
the weights it starts from, the seed of its fresh initialisation) and the run's data and mixer
settings, and returns the mixer's result with every member's trained weights. Evolution knows
nothing of how: :func:`loop`, the reference, builds one ``torch.nn.Module`` per genome and runs
:func:`neuroevo.mixer.run` over them; a batched engine that stacks nets into a few tensor
operations plugs in here (``Evolution(engine=...)``) and is checked against it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import torch

from neuroevo import mixer, network

Batch = tuple[torch.Tensor, torch.Tensor]
State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Member:
    """One net of a generation: its genome (learning rate included), the weights it starts
    from (its parent's, or its own for an elite; None: fresh) and the seed of the generator
    that draws its fresh weights."""

    genome: nx.DiGraph
    start_from: State | None
    init_seed: int


@dataclass
class EngineResult:
    mixer: mixer.MixerResult
    states: list[State]  # each member's weights after the run, in order


def loop(
    members: Sequence[Member],
    *,
    kind: str,
    train: Batch,
    valid: Batch,
    steps: int,
    seed: int,
    config: mixer.MixerConfig,
    on_step: Callable[[int, int], None] | None = None,
) -> EngineResult:
    """The reference engine: one module per genome, trained by :func:`neuroevo.mixer.run`."""
    nets = [
        network.inherit(
            m.genome, m.start_from, generator=torch.Generator().manual_seed(m.init_seed)
        )
        for m in members
    ]
    result = mixer.run(
        nets,
        [m.genome.graph["lr"] for m in members],
        kind=kind,
        train=train,
        valid=valid,
        steps=steps,
        seed=seed,
        config=config,
        evaluate_on=valid,
        on_step=on_step,
    )
    states = [{k: v.detach() for k, v in net.state_dict().items()} for net in nets]
    return EngineResult(mixer=result, states=states)
