"""Mutation operators: the built-ins and the registry users add their own to.

A mutation operator is a function ``(genome, rng, space) -> genome`` taking an explicit
``random.Random``. Registering it with :func:`mutation` wraps it so that every call:

* hands the operator a copy, so the parent is never changed, even by a careless operator;
* records the lineage on the child (``parent`` = the parent's id, ``mutation`` = the name; the
  caller assigns ``id`` and ``born``);
* validates the child against every invariant and the search space, and turns a violation
  into a :class:`MutationError` that names the operator.

An operator that cannot apply raises :class:`MutationNotApplicable`; the caller draws another.

User operators are registered with the decorator, or named in a recipe as
``"package.module:function"`` (see :func:`resolve`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import networkx as nx

from neuroevo.errors import (
    InvalidGenome,
    MutationError,
    MutationNotApplicable,
    NeuroevoError,
    UnknownMutation,
)
from neuroevo.genome import graph as G
from neuroevo.genome.space import SearchSpace
from neuroevo.registry import Registry

Operator = Callable[[nx.DiGraph, random.Random, SearchSpace], nx.DiGraph]


class Mutation:
    """A named, checked mutation operator. Call it like the function it wraps."""

    def __init__(self, name: str, func: Operator) -> None:
        self.name = name
        self.func = func
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<mutation {self.name}>"

    def __call__(self, genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
        if not isinstance(rng, random.Random):
            raise TypeError(f"mutation {self.name!r}: rng must be a random.Random instance")
        child = G.copy(genome)
        child.graph["fresh_weights"] = False
        try:
            result = self.func(child, rng, space)
        except MutationNotApplicable:
            raise
        except NeuroevoError as exc:
            raise MutationError(f"mutation {self.name!r} failed: {exc}") from exc
        except (Exception, SystemExit) as exc:  # SystemExit too: a plugin must not end the run
            raise MutationError(
                f"mutation {self.name!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result, nx.DiGraph):
            raise MutationError(
                f"mutation {self.name!r} returned {type(result).__name__}, not a genome "
                "(a networkx.DiGraph)"
            )
        result.graph.update(parent=genome.graph.get("id"), mutation=self.name, id=None, born=None)
        try:
            G.validate(result, space)
            G.check_plain(result)
        except InvalidGenome as exc:
            raise MutationError(f"mutation {self.name!r} broke the genome: {exc}") from None
        return result


def _wrap(name: str, func: Operator) -> Mutation:
    return func if isinstance(func, Mutation) else Mutation(name, func)


_REGISTRY: Registry[Mutation] = Registry("mutation", wrap=_wrap, error=UnknownMutation)


def register_mutation(
    name_or_func: str | Operator | None = None, *, name: str | None = None
) -> Any:
    """Register a mutation operator under a name (its function name by default).

    Use as ``@register_mutation``, ``@register_mutation("name")`` or
    ``@register_mutation(name="name")``. A name already taken is an error. The decorated name
    becomes the :class:`Mutation` wrapper.
    """
    return _REGISTRY.decorator(name_or_func, name=name)


#: the decorator's earlier name, kept
mutation = register_mutation


unregister = _REGISTRY.unregister
registered = _REGISTRY.registered
names = _REGISTRY.names


def resolve(name: str) -> Mutation:
    """The operator for a registered name or a ``"package.module:function"`` reference.

    An importable function that is not registered is wrapped (and checked) under the reference
    as its name. Unknown names raise :class:`UnknownMutation` listing the nearest known names.
    """
    return _REGISTRY.resolve(name)


# --------------------------------------------------------------------------- built-ins


def _pick_width(rng: random.Random, space: SearchSpace) -> int:
    width = round(G.log_uniform(rng, space.width_min, space.width_max))
    return min(max(width, space.width_min), space.width_max)


def _sorted_edges(genome: nx.DiGraph) -> list[tuple[str, str]]:
    position = {n: i for i, n in enumerate(G.topological_order(genome))}
    return sorted(genome.edges, key=lambda e: (position[e[0]], position[e[1]]))


def insert_layer(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Split a random edge ``u -> v`` into ``u -> new -> v`` (``v`` dense or ``out``: a dense
    layer goes after convolutions, never before one); width and activation random."""
    if G.depth(genome) >= space.layers_max:
        raise MutationNotApplicable(f"already {space.layers_max} hidden layers (the maximum)")
    u, v = rng.choice([e for e in _sorted_edges(genome) if not G.is_conv(genome, e[1])])
    node = G.add_hidden(genome, _pick_width(rng, space), rng.choice(space.activations))
    genome.remove_edge(u, v)
    genome.add_edge(u, node)
    genome.add_edge(node, v)
    return genome


def remove_layer(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Remove a random dense hidden layer and connect each of its inputs to each of its
    outputs."""
    hidden = G.dense_nodes(genome)
    if not hidden:
        raise MutationNotApplicable("no hidden layer to remove")
    if len(hidden) <= space.layers_min:
        raise MutationNotApplicable(f"only {len(hidden)} hidden layers (the minimum)")
    return _bridge(genome, rng.choice(hidden))


def _bridge(genome: nx.DiGraph, node: str) -> nx.DiGraph:
    """``genome`` without ``node``, each of its inputs connected to each of its outputs."""
    preds, succs = list(genome.predecessors(node)), list(genome.successors(node))
    genome.remove_node(node)
    for p in preds:
        for s in succs:
            genome.add_edge(p, s)  # adding an existing edge is a no-op: no duplicates
    return genome


def alter_width(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Scale one dense hidden layer's width by a random factor in [1/2, 2]; it always
    changes."""
    hidden = G.dense_nodes(genome)
    if not hidden:
        raise MutationNotApplicable("no hidden layer to resize")
    if space.width_min == space.width_max:
        raise MutationNotApplicable("the space allows a single width")
    node = rng.choice(hidden)
    genome.nodes[node]["width"] = _rescale(
        genome.nodes[node]["width"], space.width_min, space.width_max, rng
    )
    return genome


def _rescale(old: int, low: int, high: int, rng: random.Random) -> int:
    """``old`` times a random factor in [1/2, 2], within [low, high], never ``old``."""
    new = round(old * 2.0 ** rng.uniform(-1.0, 1.0))
    new = min(max(new, low), high)
    if new == old:  # rounding or clamping ate the change: take one step where there is room
        up_ok, down_ok = old < high, old > low
        new = old + 1 if up_ok and (not down_ok or rng.random() < 0.5) else old - 1
    return new


def alter_activation(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Give one hidden layer another activation allowed by the space (weights are kept)."""
    hidden = G.hidden_nodes(genome)
    if not hidden:
        raise MutationNotApplicable("no hidden layer")
    candidates = [
        (node, act)
        for node in hidden
        for act in space.activations
        if act != genome.nodes[node]["activation"]
    ]
    if not candidates:
        raise MutationNotApplicable("the space allows a single activation")
    node, act = rng.choice(candidates)
    genome.nodes[node]["activation"] = act
    return genome


def alter_learning_rate(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Scale the learning rate by a random factor in [1/2, 2], clamped to the space."""
    if space.lr_min == space.lr_max:
        raise MutationNotApplicable("the space allows a single learning rate")
    genome.graph["lr"] = space.clamp_lr(genome.graph["lr"] * 2.0 ** rng.uniform(-1.0, 1.0))
    return genome


def add_skip(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Add an edge ``u -> v`` (u before v in topological order) between unconnected nodes.
    Into a convolution only from ``in`` or a convolution at least as large along every axis
    as the node's smallest input, so the node keeps its size (and, the new edge starting at
    zero, what it computes)."""
    order = G.topological_order(genome)
    shapes = G.node_shapes(genome) if genome.graph.get("shape") is not None else {}

    def allowed(u: str, v: str) -> bool:
        if not G.is_conv(genome, v):
            return True
        if not G.is_spatial(genome, u):
            return False
        inputs = [shapes[p][1:] for p in genome.predecessors(v)]
        return all(size >= min(sizes) for size, sizes in zip(shapes[u][1:], zip(*inputs)))

    candidates = [
        (u, v)
        for i, u in enumerate(order[:-1])
        for v in order[i + 1 :]
        if not genome.has_edge(u, v) and allowed(u, v)
    ]
    if not candidates:
        raise MutationNotApplicable("every forward pair of nodes is already connected")
    genome.add_edge(*rng.choice(candidates))
    return genome


def remove_skip(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Remove an edge whose removal keeps every node on a path from ``in`` to ``out``."""
    candidates = G.edges_keeping_paths(genome)
    if not candidates:
        raise MutationNotApplicable("no edge can be removed without cutting a node off")
    genome.remove_edge(*rng.choice(candidates))
    return genome


def _convolutions(genome: nx.DiGraph) -> list[str]:
    if genome.graph.get("shape") is None:
        raise MutationNotApplicable("the input has no shape: no convolutions")
    nodes = G.conv_nodes(genome)
    if not nodes:
        raise MutationNotApplicable("no convolution")
    return nodes


def insert_conv(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Split a random edge ``u -> v`` leaving ``in`` or a convolution into ``u -> new -> v``,
    ``new`` a convolution with random channels, kernel, stride, pooling and activation (its
    weights fresh)."""
    if genome.graph.get("shape") is None:
        raise MutationNotApplicable("the input has no shape: no convolutions")
    if len(G.conv_nodes(genome)) >= space.conv_layers_max:
        raise MutationNotApplicable(
            f"already {space.conv_layers_max} convolutions (space.conv_layers_max)"
        )
    u, v = rng.choice([e for e in _sorted_edges(genome) if G.is_spatial(genome, e[0])])
    node = G.add_conv(
        genome,
        G.random_channels(rng, space),
        rng.choice(space.kernel_sizes),
        rng.choice(space.strides),
        rng.choice(space.activations),
        G.random_pool(rng, space),
    )
    genome.remove_edge(u, v)
    genome.add_edge(u, node)
    genome.add_edge(node, v)
    return genome


def remove_conv(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Remove a random convolution and connect each of its inputs to each of its outputs."""
    nodes = _convolutions(genome)
    if len(nodes) <= space.conv_layers_min:
        raise MutationNotApplicable(f"only {len(nodes)} convolutions (space.conv_layers_min)")
    return _bridge(genome, rng.choice(nodes))


def alter_channels(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Scale one convolution's channels by a random factor in [1/2, 2]; it always changes
    (the channels both have keep their weights)."""
    nodes = _convolutions(genome)
    if space.channels_min == space.channels_max:
        raise MutationNotApplicable("the space allows a single channel count")
    node = rng.choice(nodes)
    data = genome.nodes[node]
    data["channels"] = _rescale(data["channels"], space.channels_min, space.channels_max, rng)
    return genome


def _alter(genome, rng, key: str, values: tuple[int, ...]) -> nx.DiGraph:
    nodes = _convolutions(genome)
    candidates = [(n, v) for n in nodes for v in values if v != genome.nodes[n][key]]
    if not candidates:
        raise MutationNotApplicable(f"the space allows a single {key}")
    node, value = rng.choice(candidates)
    genome.nodes[node][key] = value
    return genome


def alter_kernel(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Give one convolution another (odd) kernel size of ``space.kernel_sizes``; its kernels
    keep their centres (a larger kernel computes what the smaller one did)."""
    return _alter(genome, rng, "kernel", space.kernel_sizes)


def alter_stride(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Give one convolution another stride of ``space.strides`` (the positions of it and of
    the nodes after it change)."""
    return _alter(genome, rng, "stride", space.strides)


def alter_pool(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Give one convolution another max-pooling window of ``space.pools`` (1: none; the
    positions of it and of the nodes after it change, its weights stay)."""
    return _alter(genome, rng, "pool", space.pools)


def reset_weights(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Same architecture, weights start fresh."""
    genome.graph["fresh_weights"] = True
    return genome


def identity(genome: nx.DiGraph, rng: random.Random, space: SearchSpace) -> nx.DiGraph:
    """Same architecture, same weights: the child keeps training."""
    return genome


insert_layer = mutation(insert_layer)
remove_layer = mutation(remove_layer)
alter_width = mutation(alter_width)
alter_activation = mutation(alter_activation)
alter_learning_rate = mutation(alter_learning_rate)
add_skip = mutation(add_skip)
remove_skip = mutation(remove_skip)
reset_weights = mutation(reset_weights)
identity = mutation(identity)
insert_conv = mutation(insert_conv)
remove_conv = mutation(remove_conv)
alter_channels = mutation(alter_channels)
alter_kernel = mutation(alter_kernel)
alter_stride = mutation(alter_stride)
alter_pool = mutation(alter_pool)

_REGISTRY.seal_builtins()
BUILTINS: tuple[str, ...] = _REGISTRY.builtins
#: the built-ins that change convolutions (they apply only where the input has a shape)
CONV_OPERATORS: tuple[str, ...] = (
    "insert_conv",
    "remove_conv",
    "alter_channels",
    "alter_kernel",
    "alter_stride",
    "alter_pool",
)


def drift(genome: nx.DiGraph, rng: random.Random, space: SearchSpace, times: int) -> nx.DiGraph:
    """``genome`` after ``times`` built-in mutations drawn from ``rng`` (those that do not
    apply are skipped): the architectures a few generations of evolution make, for tests and
    benchmarks.

    >>> g = drift(G.mlp(4, 2, [8]), random.Random(1), SearchSpace(), 5)
    >>> G.validate(g)
    """
    for _ in range(times):
        try:
            genome = resolve(rng.choice(BUILTINS))(genome, rng, space)
        except MutationNotApplicable:
            continue
    return genome
