"""Engines: how a generation's nets are trained together in one mixer run.

The seam between evolution and training. An engine takes :class:`Member` objects (a genome,
the weights it starts from, the seed of its fresh initialisation) and the run's data and mixer
settings, and returns the mixer's result with every member's trained weights (on the CPU).
Evolution knows nothing of how. Both engines start every net from the same weights
(:func:`neuroevo.training.network.inherit`) and drive it with the same mixer
(:func:`neuroevo.training.mixer.run_population`):

``loop``
    The reference: one ``torch.nn.Module`` per genome, trained in a loop over the nets.
``batched``
    The nets stacked into a few tensors (:mod:`neuroevo.training.stack`): a step is a handful of
    batched matrix products whatever the population's size. Equal to the loop up to float
    rounding (the tests check losses, weights after 20 steps and fitness order). Nets with
    convolutions are stacked too, their convolutions as grouped convolutions
    (:mod:`neuroevo.training.spatial`).

:func:`choose` maps the recipe's ``mixer.engine`` (``auto``, ``batched``, ``loop``) to one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch

from neuroevo.errors import InvalidSetting
from neuroevo.genome import graph as G
from neuroevo.training import mixer, network, stack
from neuroevo.training.network import State

Batch = tuple[torch.Tensor, torch.Tensor]


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


Engine = Callable[..., EngineResult]


def start(members: Sequence[Member], device: torch.device) -> list[network.GenomeNet]:
    """Every member's net with its starting weights (drawn on the CPU, so the same on any
    device), moved to ``device``."""
    return [
        network.inherit(
            m.genome, m.start_from, generator=torch.Generator().manual_seed(m.init_seed)
        ).to(device)
        for m in members
    ]


def on(device: torch.device, data: Batch) -> Batch:
    """``(x, y)`` on ``device``."""
    return data[0].to(device), data[1].to(device)


def _cpu(state: State) -> State:
    return {k: v.detach().to("cpu") for k, v in state.items()}


def _train(
    make: Callable[..., mixer.Population],
    members: Sequence[Member],
    *,
    kind: str,
    train: Batch,
    valid: Batch,
    steps: int,
    seed: int,
    config: mixer.MixerConfig,
    on_step: Callable[[int, int], None] | None = None,
    device: torch.device | str = "cpu",
    costs: Sequence[Sequence[float]] | None = None,
) -> EngineResult:
    """Start every member's net, put them in the population ``make`` builds, and run the
    mixer over it; every engine's arguments are these, ``make`` aside."""
    device = torch.device(device)
    population = make(members, start(members, device), kind=kind, config=config)
    valid = on(device, valid)
    result = mixer.run_population(
        population,
        len(members),
        kind=kind,
        train=on(device, train),
        valid=valid,
        steps=steps,
        seed=seed,
        config=config,
        evaluate_on=valid,
        on_step=on_step,
        costs=costs,
    )
    return EngineResult(mixer=result, states=[_cpu(s) for s in population.states()])


def _modules(members, nets, *, kind, config) -> mixer.Modules:
    return mixer.Modules(nets, [m.genome.graph["lr"] for m in members], kind)


def _stacked(members, nets, *, kind, config) -> stack.Stack:
    return stack.Stack(
        [m.genome for m in members],
        [net.state_dict() for net in nets],
        kind=kind,
        batch=config.batch_size,
        device=nets[0].bias[G.OUT].device,
    )


def loop(members: Sequence[Member], **settings: Any) -> EngineResult:
    """The reference engine: one module per genome, in a loop
    (:class:`neuroevo.training.mixer.Modules`).
    ``settings``: ``kind``, ``train``, ``valid``, ``steps``, ``seed``, ``config``, and
    optionally ``on_step``, ``device`` and ``costs`` (each member's, where the race keeps a
    front: :func:`neuroevo.training.mixer.run_population`)."""
    return _train(_modules, members, **settings)


def batched(members: Sequence[Member], **settings: Any) -> EngineResult:
    """The batched engine: the members stacked (:class:`neuroevo.training.stack.Stack`);
    ``settings`` as :func:`loop` takes them."""
    return _train(_stacked, members, **settings)


ENGINES: dict[str, Engine] = {"batched": batched, "loop": loop}
#: what ``mixer.engine`` accepts
CHOICES = ("auto", *ENGINES)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads (``run.threads``: results depend on it), then restore."""
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


_DEVICE = re.compile(r"^(cpu|auto|cuda(:[0-9]+)?)$")


def check_device(name: str) -> None:
    """Refuse a ``run.device`` that is not ``cpu``, ``cuda``, ``cuda:N`` or ``auto``."""
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise InvalidSetting(
            "run.device", f"must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {name!r}"
        )


def device(name: str) -> torch.device:
    """The device ``run.device`` names on this machine: ``auto`` is the first CUDA device
    where there is one, else the CPU; ``cuda`` where there is none is an error."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.partition(":")[2] or 0)
        if index >= count:
            raise InvalidSetting(
                "run.device",
                f"{name!r} asked for, but this machine has "
                + (f"{count} CUDA device(s)" if count else "no CUDA device")
                + " (use 'cpu' or 'auto')",
            )
    return torch.device(name)


def choose(name: str) -> Engine:
    """The engine ``mixer.engine`` names; ``auto`` is the batched engine, which covers every
    genome, dense or with convolutions, on every device."""
    if name == "auto":
        return batched
    try:
        return ENGINES[name]
    except KeyError:
        raise InvalidSetting(
            "mixer.engine", f"unknown engine {name!r} (known: {', '.join(CHOICES)})"
        ) from None
