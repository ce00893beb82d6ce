"""The genome: a network architecture as a ``networkx.DiGraph``.

Nodes
    ``"in"`` (the input, ``width`` = number of inputs), ``"out"`` (the output layer, ``width`` =
    number of outputs, raw values) and hidden nodes ``"h1"``, ``"h2"``, ... A dense hidden node
    has ``width`` and ``activation``; a convolution (``kind = "conv"``, only where the input
    has a ``shape``) has ``channels``, ``kernel`` (odd), ``stride``, ``pool`` (the window of
    the max pooling after its activation, 1 for none) and ``activation``. A
    hidden id is taken from the genome's ``next_node`` counter, which only grows along a
    lineage, so an id is never reused and weights can follow a node through mutations.
Edges
    ``u -> v`` feeds ``u``'s output into ``v``: ``h_v = act_v(sum_u W_uv h_u + b_v)``, where
    ``W_uv h_u`` is a matrix product into a dense node (a convolution's output flattened) and
    a convolution into a convolution. A convolution's inputs come from ``in`` or other
    convolutions only.
Shapes
    ``in`` has the input's ``shape``: ``(channels, length)`` or ``(channels, height, width)``.
    A convolution with stride ``s`` pads by ``kernel // 2`` (odd kernels: "same") and sums
    its inputs' convolutions on ``ceil(S / s)`` positions along each spatial axis, ``S`` the
    smallest size among its inputs; an input larger than that is brought to it by average
    pooling after its convolution (so a skip from an earlier, larger node is well defined,
    and a new skip never changes a node's size). With ``pool = p`` its activations are then
    max-pooled over windows of ``p`` with step ``p`` (a last, partial window kept), leaving
    ``ceil(ceil(S / s) / p)`` positions. Sizes therefore stay positive.
Graph attributes
    ``lr`` (learning rate), lineage (``id``, ``parent``, ``mutation``, ``born``), ``next_node``,
    ``shape`` (the input's shape, or None for a flat input) and ``fresh_weights`` (true when the
    genome's weights must start fresh instead of being inherited from its parent, as after
    ``reset_weights``).

This module holds the nodes, their order and shapes and the queries on them; it knows
nothing of torch: it is the bottom layer of neuroevo.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import networkx as nx

IN = "in"
OUT = "out"
CONV = "conv"

#: a hidden node's id: ``h<n>``, ``n`` from the genome's ``next_node`` counter
HIDDEN_ID = re.compile(r"^h([1-9][0-9]*)$")


def copy(genome: nx.DiGraph) -> nx.DiGraph:
    """A deep copy (attribute dicts included): changing it never changes ``genome``."""
    return genome.copy()  # node, edge and graph attribute values are immutable scalars


def _order_key(node: str) -> int:
    if node == IN:
        return -1
    if node == OUT:
        return 1 << 62
    match = HIDDEN_ID.match(node)
    return int(match.group(1)) if match else 1 << 61


def topological_order(genome: nx.DiGraph) -> list[str]:
    """Nodes in a deterministic topological order (ties broken by node number)."""
    return list(nx.lexicographical_topological_sort(genome, key=_order_key))


def hidden_nodes(genome: nx.DiGraph) -> list[str]:
    """Hidden node ids (dense and convolutions) in topological order."""
    return [n for n in topological_order(genome) if n not in (IN, OUT)]


def is_conv(genome: nx.DiGraph, node: str) -> bool:
    return genome.nodes[node].get("kind") == CONV


def dense_nodes(genome: nx.DiGraph) -> list[str]:
    """Dense hidden node ids in topological order."""
    return [n for n in hidden_nodes(genome) if not is_conv(genome, n)]


def conv_nodes(genome: nx.DiGraph) -> list[str]:
    """Convolution node ids in topological order."""
    return [n for n in hidden_nodes(genome) if is_conv(genome, n)]


def is_spatial(genome: nx.DiGraph, node: str) -> bool:
    """Whether ``node``'s output has channels and positions: a convolution, or ``in`` where
    the input has a shape."""
    return is_conv(genome, node) or (node == IN and genome.graph.get("shape") is not None)


def depth(genome: nx.DiGraph) -> int:
    """The number of dense hidden nodes (what ``SearchSpace.layers_min/max`` bound)."""
    return len(dense_nodes(genome))


def node_shapes(genome: nx.DiGraph) -> dict[str, tuple[int, ...]]:
    """Every node's output shape (without the batch): ``(width,)`` for ``in`` without a shape
    and for dense nodes, ``(channels, *positions)`` for ``in`` with one and for
    convolutions (see the module's docstring)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for node in topological_order(genome):
        data = genome.nodes[node]
        if node == IN:
            shape = genome.graph.get("shape")
            shapes[node] = tuple(shape) if shape is not None else (data["width"],)
        elif data.get("kind") == CONV:
            pool = data["pool"]
            positions = conv_positions(genome, shapes, node)
            shapes[node] = (data["channels"], *(-(-size // pool) for size in positions))
        else:
            shapes[node] = (data["width"],)
    return shapes


def conv_positions(
    genome: nx.DiGraph, shapes: dict[str, tuple[int, ...]], node: str
) -> tuple[int, ...]:
    """The positions convolution ``node`` sums its inputs on (before its pooling), given the
    output ``shapes`` of its inputs: ``ceil(S / stride)`` per axis, ``S`` the smallest input."""
    inputs = [shapes[u][1:] for u in genome.predecessors(node)]
    stride = genome.nodes[node]["stride"]
    return tuple(-(-min(sizes) // stride) for sizes in zip(*inputs))


def features(shape: Sequence[int]) -> int:
    """The values of one sample of ``shape``."""
    return math.prod(shape)


def n_inputs(genome: nx.DiGraph) -> int:
    return genome.nodes[IN]["width"]


def n_outputs(genome: nx.DiGraph) -> int:
    return genome.nodes[OUT]["width"]


def n_parameters(genome: nx.DiGraph) -> int:
    """The number of trainable scalars of the network: one matrix (a kernel, into a
    convolution) per edge, one bias per node after ``in`` (per channel for a convolution)."""
    shapes = node_shapes(genome)
    total = 0
    for v in topological_order(genome)[1:]:
        if is_conv(genome, v):
            data = genome.nodes[v]
            taps = data["kernel"] ** (len(shapes[v]) - 1)
            total += data["channels"] * (
                1 + taps * sum(shapes[u][0] for u in genome.predecessors(v))
            )
        else:
            width = shapes[v][0]
            total += width * (1 + sum(features(shapes[u]) for u in genome.predecessors(v)))
    return total


def n_macs(genome: nx.DiGraph) -> int:
    """The multiply-accumulates of one sample's forward pass: per edge into a dense node its
    inputs' values times its width, per edge into a convolution the kernel's taps times both
    channel counts at each position it sums on (before pooling). Biases, activations and
    pooling are not counted."""
    shapes = node_shapes(genome)
    total = 0
    for u, v in genome.edges:
        if is_conv(genome, v):
            positions = conv_positions(genome, shapes, v)
            taps = genome.nodes[v]["kernel"] ** len(positions)
            total += shapes[v][0] * shapes[u][0] * taps * features(positions)
        else:
            total += shapes[v][0] * features(shapes[u])
    return total


def edges_keeping_paths(genome: nx.DiGraph) -> list[tuple[str, str]]:
    """Edges whose removal keeps every node on a path from ``in`` to ``out``."""
    removable = []
    for u, v in sorted(genome.edges, key=lambda e: (_order_key(e[0]), _order_key(e[1]))):
        # u keeps a way to out only if it has another successor; v keeps a way from in only
        # if it has another predecessor. Then every other node's paths stay as they were
        # unless they went through u -> v, which the reachability check below settles.
        if genome.out_degree(u) < 2 or genome.in_degree(v) < 2:
            continue
        trial = genome.copy()
        trial.remove_edge(u, v)
        if unconnected(trial) is None:
            removable.append((u, v))
    return removable


def unconnected(genome: nx.DiGraph) -> str | None:
    """A message about the first node off every in -> out path, or None."""
    from_in = nx.descendants(genome, IN) | {IN}
    to_out = nx.ancestors(genome, OUT) | {OUT}
    for node in topological_order(genome):
        if node not in from_in:
            return f"node {node!r} cannot be reached from 'in'"
        if node not in to_out:
            return f"node {node!r} does not lead to 'out'"
    return None


def signature(genome: nx.DiGraph) -> str:
    """A one-line text description, e.g. ``16-[56 relu]-[56 relu]-16 skip(in>2) lr=3.0e-03``.

    Hidden layers are numbered 1.. in topological order. Edges from one node to the next in
    that order form the plain chain; ``skip(a>b)`` lists the other edges and ``cut(a>b)`` the
    chain edges that are missing (nodes side by side rather than one after the other).
    """
    order = topological_order(genome)
    label = {IN: "in", OUT: "out"}
    label.update({node: str(i) for i, node in enumerate(order[1:-1], start=1)})
    shape = genome.graph.get("shape")
    parts = ["x".join(map(str, shape)) if shape is not None else str(genome.nodes[IN]["width"])]
    for node in order[1:-1]:
        data = genome.nodes[node]
        if data.get("kind") == CONV:
            pool = f" p{data['pool']}" if data["pool"] > 1 else ""
            parts.append(
                f"[c{data['channels']} k{data['kernel']} s{data['stride']}{pool} "
                f"{data['activation']}]"
            )
        else:
            parts.append(f"[{data['width']} {data['activation']}]")
    parts.append(str(genome.nodes[OUT]["width"]))
    text = "-".join(parts)
    chain = set(zip(order, order[1:]))
    position = {node: i for i, node in enumerate(order)}
    by_position = lambda e: (position[e[0]], position[e[1]])  # noqa: E731
    skips = sorted((e for e in genome.edges if e not in chain), key=by_position)
    cuts = sorted((e for e in chain if not genome.has_edge(*e)), key=by_position)
    if skips:
        text += " skip(" + ",".join(f"{label[u]}>{label[v]}" for u, v in skips) + ")"
    if cuts:
        text += " cut(" + ",".join(f"{label[u]}>{label[v]}" for u, v in cuts) + ")"
    return text + f" lr={genome.graph['lr']:.1e}"


def equal(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """Same graph attributes, same nodes with the same attributes, same edges."""
    return (
        a.graph == b.graph
        and dict(a.nodes(data=True)) == dict(b.nodes(data=True))
        and set(a.edges) == set(b.edges)
    )
