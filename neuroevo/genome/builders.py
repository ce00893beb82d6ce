"""Building genomes: an empty one, nodes added with never-used ids, a plain MLP (with a chain
of convolutions first where the input has a shape), a random one inside a search space, and
the size of the largest net a space allows. Imports no torch."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx

from neuroevo.errors import InvalidGenome
from neuroevo.genome.space import ACTIVATIONS, SearchSpace
from neuroevo.genome.structure import CONV, IN, OUT, n_parameters
from neuroevo.genome.validation import check_shape


def empty(n_in: int, n_out: int, *, lr: float, shape: Sequence[int] | None = None) -> nx.DiGraph:
    """A genome with only ``in`` and ``out`` and no edge yet (not valid until connected);
    ``shape``: the input's ``(channels, length)`` or ``(channels, height, width)``."""
    for name, value in (("n_in", n_in), ("n_out", n_out)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidGenome("io-width", f"{name} must be a positive integer, got {value!r}")
    g = nx.DiGraph(
        lr=float(lr),
        id=None,
        parent=None,
        mutation=None,
        born=None,
        next_node=1,
        fresh_weights=False,
    )
    if shape is not None:
        g.graph["shape"] = [int(v) for v in shape]
    g.add_node(IN, width=n_in)
    g.add_node(OUT, width=n_out)
    if shape is not None:
        check_shape(g)
    return g


def add_hidden(genome: nx.DiGraph, width: int, activation: str) -> str:
    """Add an unconnected dense hidden node with a never-used id; return the id."""
    return _add(genome, width=int(width), activation=activation)


def add_conv(
    genome: nx.DiGraph, channels: int, kernel: int, stride: int, activation: str, pool: int = 1
) -> str:
    """Add an unconnected convolution with a never-used id; return the id."""
    return _add(
        genome,
        kind=CONV,
        channels=int(channels),
        kernel=int(kernel),
        stride=int(stride),
        pool=int(pool),
        activation=activation,
    )


def _add(genome: nx.DiGraph, **attributes: Any) -> str:
    number = genome.graph["next_node"]
    node = f"h{number}"
    genome.graph["next_node"] = number + 1
    genome.add_node(node, **attributes)
    return node


def mlp(
    n_in: int,
    n_out: int,
    hidden: Sequence[int],
    activation: str = "relu",
    *,
    lr: float = 1e-3,
    shape: Sequence[int] | None = None,
    convs: Sequence[Sequence[int]] = (),
) -> nx.DiGraph:
    """A plain multi-layer perceptron: ``in -> h1 -> ... -> out``; with ``convs`` (each
    ``(channels, kernel, stride)`` or ``(channels, kernel, stride, pool)``, the input's
    ``shape`` given) a chain of convolutions first.

    >>> from neuroevo.genome.structure import signature
    >>> signature(mlp(16, 16, [56, 56], "sigmoid", lr=0.003))
    '16-[56 sigmoid]-[56 sigmoid]-16 lr=3.0e-03'
    >>> signature(mlp(64, 10, [32], shape=[1, 8, 8], convs=[(16, 3, 1), (32, 3, 2)]))
    '1x8x8-[c16 k3 s1 relu]-[c32 k3 s2 relu]-[32 relu]-10 lr=1.0e-03'
    >>> signature(mlp(64, 10, [32], shape=[1, 8, 8], convs=[(16, 3, 1, 2)]))
    '1x8x8-[c16 k3 s1 p2 relu]-[32 relu]-10 lr=1.0e-03'
    """
    if activation not in ACTIVATIONS:
        raise InvalidGenome(
            "activation", f"unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})"
        )
    g = empty(n_in, n_out, lr=lr, shape=shape)
    previous = IN
    if convs and shape is None:
        raise InvalidGenome("conv", "convolutions need the input's shape")
    for conv in convs:
        channels, kernel, stride, *pool = conv
        node = add_conv(g, channels, kernel, stride, activation, *pool)
        g.add_edge(previous, node)
        previous = node
    for width in hidden:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise InvalidGenome("width", f"hidden widths must be positive integers, got {width!r}")
        node = add_hidden(g, width, activation)
        g.add_edge(previous, node)
        previous = node
    g.add_edge(previous, OUT)
    return g


def random_genome(
    n_in: int,
    n_out: int,
    space: SearchSpace,
    rng: random.Random,
    *,
    shape: Sequence[int] | None = None,
) -> nx.DiGraph:
    """A random MLP inside ``space``: depth uniform, widths and learning rate log-uniform,
    one activation per layer drawn from the allowed ones. With the input's ``shape``, a chain
    of ``conv_layers_min..conv_layers_max`` (uniform) random convolutions first."""
    depth = rng.randint(space.layers_min, space.layers_max)
    g = empty(n_in, n_out, lr=log_uniform(rng, space.lr_min, space.lr_max), shape=shape)
    previous = IN
    if shape is not None:
        for _ in range(rng.randint(space.conv_layers_min, space.conv_layers_max)):
            node = add_conv(
                g,
                random_channels(rng, space),
                rng.choice(space.kernel_sizes),
                rng.choice(space.strides),
                rng.choice(space.activations),
                random_pool(rng, space),
            )
            g.add_edge(previous, node)
            previous = node
    for _ in range(depth):
        width = round(log_uniform(rng, space.width_min, space.width_max))
        width = min(max(width, space.width_min), space.width_max)
        node = add_hidden(g, width, rng.choice(space.activations))
        g.add_edge(previous, node)
        previous = node
    g.add_edge(previous, OUT)
    return g


def random_channels(rng: random.Random, space: SearchSpace) -> int:
    channels = round(log_uniform(rng, space.channels_min, space.channels_max))
    return min(max(channels, space.channels_min), space.channels_max)


def random_pool(rng: random.Random, space: SearchSpace) -> int:
    """A pooling window of ``space.pools``; no draw where there is one (so a run from before
    convolutions could pool, resumed with ``pools = [1]``, draws as it did)."""
    return space.pools[0] if len(space.pools) == 1 else rng.choice(space.pools)


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    if low == high:
        return float(low)
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def largest_parameters(
    space: SearchSpace, n_in: int, n_out: int, shape: Sequence[int] | None = None
) -> int:
    """The parameters (:func:`n_parameters`) of the largest plain net ``space`` allows between
    ``n_in`` inputs and ``n_out`` outputs: ``space.layers_max`` dense layers of
    ``space.width_max``, after (where the input has a ``shape``) a chain of convolutions of
    ``space.channels_max`` channels, the largest kernel and the smallest stride and pool, of
    whichever count in ``conv_layers_min..conv_layers_max`` has the most. Built as a graph
    only (nothing is allocated). Skip edges (``add_skip``) can add more: this measures what
    the space's bounds ask for, so that a mistyped bound fails before a net is built."""
    return largest(space, n_in, n_out, shape, n_parameters)


def largest(
    space: SearchSpace,
    n_in: int,
    n_out: int,
    shape: Sequence[int] | None,
    measure: Callable[[nx.DiGraph], int],
) -> int:
    """``measure`` (parameters, multiply-accumulates) of the largest plain net ``space``
    allows, as :func:`largest_parameters` builds it."""
    hidden = [space.width_max] * space.layers_max
    if shape is None:
        return measure(mlp(n_in, n_out, hidden, ACTIVATIONS[0], shape=None))
    conv = (space.channels_max, max(space.kernel_sizes), min(space.strides), min(space.pools))
    return max(
        measure(mlp(n_in, n_out, hidden, ACTIVATIONS[0], shape=shape, convs=[conv] * k))
        for k in range(space.conv_layers_min, space.conv_layers_max + 1)
    )
