"""The genome's invariants: :func:`validate` checks a genome's structure (and, given a
:class:`~neuroevo.genome.space.SearchSpace`, its bounds) and raises
:class:`~neuroevo.errors.InvalidGenome` naming the first broken; :func:`check_plain` that it
holds plain JSON data only. Imports no torch."""

from __future__ import annotations

import json
import math
from typing import Any

import networkx as nx

from neuroevo.errors import InvalidGenome
from neuroevo.genome.space import ACTIVATIONS, SearchSpace
from neuroevo.genome.structure import (
    CONV,
    HIDDEN_ID,
    IN,
    OUT,
    conv_nodes,
    depth,
    features,
    is_conv,
    is_spatial,
    unconnected,
)


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
    _check_endpoints(genome)
    _check_nodes(genome, space)
    _check_edges(genome)
    _check_lr(genome, space)
    if space is not None:
        _check_depth(genome, space)


def _check_endpoints(genome: nx.DiGraph) -> None:
    for node in (IN, OUT):
        if node not in genome:
            raise InvalidGenome("endpoints", f"node {node!r} is missing")
        _check_width(genome, node, None)
    if genome.in_degree(IN):
        raise InvalidGenome("endpoints", "node 'in' has incoming edges")
    if genome.out_degree(OUT):
        raise InvalidGenome("endpoints", "node 'out' has outgoing edges")


def _check_nodes(genome: nx.DiGraph, space: SearchSpace | None) -> None:
    """Hidden node ids below ``next_node``, each node's kind, attributes and activation."""
    next_node = genome.graph.get("next_node")
    if isinstance(next_node, bool) or not isinstance(next_node, int) or next_node < 1:
        raise InvalidGenome("node-id", f"graph attribute next_node is {next_node!r}")
    for node in genome.nodes:
        if node in (IN, OUT):
            continue
        match = HIDDEN_ID.match(node) if isinstance(node, str) else None
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


def _check_edges(genome: nx.DiGraph) -> None:
    """Acyclic, every node on an ``in`` -> ``out`` path, the input's shape, and convolutions
    fed by ``in`` or convolutions only."""
    if not nx.is_directed_acyclic_graph(genome):
        cycle = nx.find_cycle(genome)
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise InvalidGenome("acyclic", f"cycle {path}")
    problem = unconnected(genome)
    if problem is not None:
        raise InvalidGenome("connected", problem)
    check_shape(genome)
    for u, v in genome.edges:
        if is_conv(genome, v) and not is_spatial(genome, u):
            raise InvalidGenome(
                "conv", f"edge {u!r} -> {v!r}: a convolution's inputs are 'in' or convolutions"
            )


def _check_lr(genome: nx.DiGraph, space: SearchSpace | None) -> None:
    lr = genome.graph.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise InvalidGenome("lr", f"learning rate must be a positive number, got {lr!r}")
    if space is not None and not space.lr_min <= lr <= space.lr_max:
        raise InvalidGenome(
            "lr", f"learning rate {lr!r} is outside [{space.lr_min}, {space.lr_max}]"
        )


def _check_depth(genome: nx.DiGraph, space: SearchSpace) -> None:
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
            f"{n_conv} convolutions, outside [{space.conv_layers_min}, {space.conv_layers_max}]",
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


def check_shape(genome: nx.DiGraph) -> None:
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
