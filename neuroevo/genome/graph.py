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

This module knows nothing of torch: it is the bottom layer of neuroevo.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from typing import Any

import networkx as nx

from neuroevo.errors import InvalidGenome
from neuroevo.genome.space import ACTIVATIONS, SearchSpace

IN = "in"
OUT = "out"
CONV = "conv"
FORMAT = "neuroevo.genome"
FORMAT_VERSION = 1

_HIDDEN_ID = re.compile(r"^h([1-9][0-9]*)$")
_LINEAGE = ("id", "parent", "mutation", "born")


# --------------------------------------------------------------------------- construction


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
        _check_shape(g)
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


def copy(genome: nx.DiGraph) -> nx.DiGraph:
    """A deep copy (attribute dicts included): changing it never changes ``genome``."""
    return genome.copy()  # node, edge and graph attribute values are immutable scalars


# --------------------------------------------------------------------------- queries


def _order_key(node: str) -> int:
    if node == IN:
        return -1
    if node == OUT:
        return 1 << 62
    match = _HIDDEN_ID.match(node)
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
    hidden = [space.width_max] * space.layers_max
    if shape is None:
        return n_parameters(mlp(n_in, n_out, hidden, ACTIVATIONS[0], shape=None))
    conv = (space.channels_max, max(space.kernel_sizes), min(space.strides), min(space.pools))
    return max(
        n_parameters(mlp(n_in, n_out, hidden, ACTIVATIONS[0], shape=shape, convs=[conv] * k))
        for k in range(space.conv_layers_min, space.conv_layers_max + 1)
    )


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
        if _unconnected(trial) is None:
            removable.append((u, v))
    return removable


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


# --------------------------------------------------------------------------- invariants


def _unconnected(genome: nx.DiGraph) -> str | None:
    """A message about the first node off every in -> out path, or None."""
    from_in = nx.descendants(genome, IN) | {IN}
    to_out = nx.ancestors(genome, OUT) | {OUT}
    for node in topological_order(genome):
        if node not in from_in:
            return f"node {node!r} cannot be reached from 'in'"
        if node not in to_out:
            return f"node {node!r} does not lead to 'out'"
    return None


def validate(genome: Any, space: SearchSpace | None = None) -> None:
    """Check every invariant of a genome; raise :class:`InvalidGenome` naming the first broken.

    Structural invariants always: a simple directed graph (no duplicate edges), ``in`` without
    predecessors, ``out`` without successors, well-formed node ids and attributes, acyclic,
    every node on a path from ``in`` to ``out``. With ``space``: widths, depth, activations and
    learning rate inside it.
    """
    if not isinstance(genome, nx.DiGraph) or genome.is_multigraph():
        raise InvalidGenome(
            "graph-type", f"a genome is a networkx.DiGraph, got {type(genome).__name__}"
        )
    for node in (IN, OUT):
        if node not in genome:
            raise InvalidGenome("endpoints", f"node {node!r} is missing")
        _check_width(genome, node, None)
    if genome.in_degree(IN):
        raise InvalidGenome("endpoints", "node 'in' has incoming edges")
    if genome.out_degree(OUT):
        raise InvalidGenome("endpoints", "node 'out' has outgoing edges")

    next_node = genome.graph.get("next_node")
    if isinstance(next_node, bool) or not isinstance(next_node, int) or next_node < 1:
        raise InvalidGenome("node-id", f"graph attribute next_node is {next_node!r}")
    for node in genome.nodes:
        if node in (IN, OUT):
            continue
        match = _HIDDEN_ID.match(node) if isinstance(node, str) else None
        if match is None:
            raise InvalidGenome("node-id", f"hidden node id {node!r} is not of the form 'h<n>'")
        if int(match.group(1)) >= next_node:
            raise InvalidGenome(
                "node-id", f"hidden node {node!r} is not below next_node={next_node}"
            )
        kind = genome.nodes[node].get("kind")
        if kind == CONV:
            _check_conv(genome, node, space)
        elif kind is not None:
            raise InvalidGenome("kind", f"node {node!r} has kind {kind!r} (known: 'conv')")
        else:
            _check_width(genome, node, space)
        act = genome.nodes[node].get("activation")
        allowed = space.activations if space is not None else ACTIVATIONS
        if act not in allowed:
            raise InvalidGenome(
                "activation",
                f"node {node!r} has activation {act!r} (allowed: {', '.join(allowed)})",
            )

    if not nx.is_directed_acyclic_graph(genome):
        cycle = nx.find_cycle(genome)
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise InvalidGenome("acyclic", f"cycle {path}")
    problem = _unconnected(genome)
    if problem is not None:
        raise InvalidGenome("connected", problem)
    _check_shape(genome)
    for u, v in genome.edges:
        if is_conv(genome, v) and not is_spatial(genome, u):
            raise InvalidGenome(
                "conv", f"edge {u!r} -> {v!r}: a convolution's inputs are 'in' or convolutions"
            )

    lr = genome.graph.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise InvalidGenome("lr", f"learning rate must be a positive number, got {lr!r}")
    if space is not None:
        if not space.lr_min <= lr <= space.lr_max:
            raise InvalidGenome(
                "lr", f"learning rate {lr!r} is outside [{space.lr_min}, {space.lr_max}]"
            )
        n_hidden = depth(genome)
        if not space.layers_min <= n_hidden <= space.layers_max:
            raise InvalidGenome(
                "depth",
                f"{n_hidden} hidden layers, outside [{space.layers_min}, {space.layers_max}]",
            )
        n_conv = len(conv_nodes(genome))
        if n_conv and not space.conv_layers_min <= n_conv <= space.conv_layers_max:
            raise InvalidGenome(
                "depth",
                f"{n_conv} convolutions, outside [{space.conv_layers_min}, "
                f"{space.conv_layers_max}]",
            )


def check_plain(genome: nx.DiGraph) -> None:
    """Every attribute (of the graph, its nodes and edges) is plain JSON with finite numbers,
    so the genome can be saved in a checkpoint and a history line exactly."""
    items = [("graph", genome.graph)]
    items += [(f"node {n!r}", d) for n, d in genome.nodes(data=True)]
    items += [(f"edge {u!r}->{v!r}", d) for u, v, d in genome.edges(data=True)]
    for where, attrs in items:
        for key, value in attrs.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidGenome(
                    "json", f"{where} attribute {key!r} is not plain JSON data ({exc})"
                ) from None


def shape_problem(shape: Any, n_inputs: int) -> str | None:
    """What is wrong with ``shape`` as the shape of ``n_inputs`` input values, or None: it is
    ``[channels, length]`` or ``[channels, height, width]`` of positive integers holding
    exactly ``n_inputs`` values."""
    ok = (
        isinstance(shape, (list, tuple))
        and len(shape) in (2, 3)
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    )
    if not ok:
        shown = list(shape) if isinstance(shape, (list, tuple)) else shape
        return (
            "expected [channels, length] or [channels, height, width] (positive integers), "
            f"got {shown!r}"
        )
    if features(shape) != n_inputs:
        return f"{list(shape)} holds {features(shape)} values, but the data has {n_inputs} inputs"
    return None


def _check_shape(genome: nx.DiGraph) -> None:
    shape = genome.graph.get("shape")
    if shape is None:
        return
    problem = shape_problem(shape, genome.nodes[IN]["width"])
    if problem is None and not isinstance(shape, list):  # JSON keeps it a list
        problem = f"expected a list, got {shape!r}"
    if problem is not None:
        raise InvalidGenome("shape", f"the input shape: {problem}")


def _check_conv(genome: nx.DiGraph, node: str, space: SearchSpace | None) -> None:
    data = genome.nodes[node]
    if genome.graph.get("shape") is None:
        raise InvalidGenome("conv", f"node {node!r} is a convolution but the input has no shape")
    for key in ("channels", "kernel", "stride", "pool"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidGenome("conv", f"node {node!r} has {key} {value!r}")
    if data["kernel"] % 2 == 0:
        raise InvalidGenome("conv", f"node {node!r} has an even kernel {data['kernel']}")
    if "width" in data:
        raise InvalidGenome("conv", f"node {node!r} is a convolution with a width")
    if space is None:
        return
    if not space.channels_min <= data["channels"] <= space.channels_max:
        raise InvalidGenome(
            "conv",
            f"node {node!r} has {data['channels']} channels, outside "
            f"[{space.channels_min}, {space.channels_max}]",
        )
    if data["kernel"] not in space.kernel_sizes:
        raise InvalidGenome(
            "conv", f"node {node!r} has kernel {data['kernel']}, not in {list(space.kernel_sizes)}"
        )
    if data["stride"] not in space.strides:
        raise InvalidGenome(
            "conv", f"node {node!r} has stride {data['stride']}, not in {list(space.strides)}"
        )
    if data["pool"] not in space.pools:
        raise InvalidGenome(
            "conv", f"node {node!r} has pool {data['pool']}, not in {list(space.pools)}"
        )


def _check_width(genome: nx.DiGraph, node: str, space: SearchSpace | None) -> None:
    width = genome.nodes[node].get("width")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise InvalidGenome("width", f"node {node!r} has width {width!r}")
    if space is not None and node not in (IN, OUT):
        if not space.width_min <= width <= space.width_max:
            raise InvalidGenome(
                "width",
                f"node {node!r} has width {width}, outside [{space.width_min}, {space.width_max}]",
            )


# --------------------------------------------------------------------------- JSON


def to_dict(genome: nx.DiGraph) -> dict[str, Any]:
    """networkx node-link data plus a format tag; plain JSON types only."""
    data = nx.node_link_data(genome, edges="edges")
    return {"format": FORMAT, "version": FORMAT_VERSION, **data}


def from_dict(data: Any, *, source: str = "genome") -> nx.DiGraph:
    """Rebuild a genome from :func:`to_dict`'s output; structural errors name ``source``."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidGenome("format", f"{source}: not a neuroevo genome (format tag missing)")
    if data.get("version") != FORMAT_VERSION:
        raise InvalidGenome(
            "format", f"{source}: genome format version {data.get('version')!r} is not supported"
        )
    if data.get("multigraph") or not data.get("directed"):
        raise InvalidGenome("graph-type", f"{source}: a genome is a simple directed graph")
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    try:
        genome = nx.node_link_graph(body, directed=True, multigraph=False, edges="edges")
    except (KeyError, TypeError, ValueError, AttributeError, nx.NetworkXError) as exc:
        raise InvalidGenome("format", f"{source}: malformed node-link data ({exc})") from None
    for key in ("lr", "next_node", "fresh_weights", *_LINEAGE):
        if key not in genome.graph:
            raise InvalidGenome("format", f"{source}: graph attribute {key!r} is missing")
    for _, attributes in genome.nodes(data=True):
        if attributes.get("kind") == CONV:
            attributes.setdefault("pool", 1)  # written before convolutions could pool
    validate(genome)
    return genome


def to_json(genome: nx.DiGraph, *, indent: int | None = None) -> str:
    return json.dumps(to_dict(genome), indent=indent, sort_keys=True, allow_nan=False)


def from_json(text: str, *, source: str = "genome") -> nx.DiGraph:
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidGenome("format", f"{source}: nests lists or objects too deeply") from None
    except ValueError as exc:  # not JSON, or a number of more than 4,300 digits
        raise InvalidGenome("format", f"{source}: not valid JSON ({exc})") from None
    return from_dict(data, source=source)


def equal(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """Same graph attributes, same nodes with the same attributes, same edges."""
    return (
        a.graph == b.graph
        and dict(a.nodes(data=True)) == dict(b.nodes(data=True))
        and set(a.edges) == set(b.edges)
    )
