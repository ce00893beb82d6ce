"""Compile a genome into a ``torch.nn.Module``, and pass weights from parent to child.

Parameters are named after node ids, so they follow a node through mutations:
``weight.<u>__<v>`` is the matrix of edge ``u -> v`` and ``bias.<v>`` the bias of node ``v``.
A hidden node computes ``act_v(sum_u W_uv(h_u) + bias.v)``; ``out`` returns raw values
(logits), and the task decides what follows. Shapes: into a dense node (or ``out``) of width
``w``, ``(w, width_u)`` from a flat node and ``(w, channels_u, *positions_u)`` from a spatial
one (its output flattened); into a convolution of ``c`` channels and kernel ``k``,
``(c, channels_u, k)`` or ``(c, channels_u, k, k)`` (the convolution with the node's stride and
``k // 2`` padding, average-pooled to the node's positions where the input was larger; see
:mod:`neuroevo.genome`). A convolution's bias has one value per channel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from neuroevo.genome import graph as G

#: activation name -> function, for every name in neuroevo.genome.space.ACTIVATIONS (and "identity")
ACTIVATION_FUNCTIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "identity": lambda x: x,
}

#: a net's weights by name (see :func:`edge_key`)
State = dict[str, torch.Tensor]


def edge_key(u: str, v: str) -> str:
    return f"{u}__{v}"


def shapes(genome: nx.DiGraph) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in the state dict of ``genome``'s network."""
    out: dict[str, tuple[int, ...]] = {}
    nodes = G.node_shapes(genome)
    for v in G.topological_order(genome)[1:]:
        for u in genome.predecessors(v):
            out[f"weight.{edge_key(u, v)}"] = _edge_shape(genome, nodes, u, v)
        out[f"bias.{v}"] = (nodes[v][0],)
    return out


def _edge_shape(
    genome: nx.DiGraph, nodes: Mapping[str, tuple[int, ...]], u: str, v: str
) -> tuple[int, ...]:
    if G.is_conv(genome, v):
        kernel = genome.nodes[v]["kernel"]
        return (nodes[v][0], nodes[u][0], *([kernel] * (len(nodes[v]) - 1)))
    if u == G.IN:  # the flat input, whatever its shape
        return (nodes[v][0], genome.nodes[G.IN]["width"])
    return (nodes[v][0], *nodes[u])


def _fan_in(shape: tuple[int, ...]) -> int:
    return math.prod(shape[1:])


_CONV = {2: F.conv1d, 3: F.conv2d}
_POOL = {2: F.adaptive_avg_pool1d, 3: F.adaptive_avg_pool2d}
_MAX_POOL = {2: F.max_pool1d, 3: F.max_pool2d}


class GenomeNet(nn.Module):
    """The network a genome describes; build it with :func:`build` or :func:`inherit`."""

    def __init__(self, genome: nx.DiGraph, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        G.validate(genome)
        order = G.topological_order(genome)
        nodes = G.node_shapes(genome)
        self.n_in = G.n_inputs(genome)
        self.n_out = G.n_outputs(genome)
        shape = genome.graph.get("shape")
        self.shape = tuple(shape) if shape is not None else None  # the input's, if spatial
        self.weight = nn.ParameterDict()
        self.bias = nn.ParameterDict()
        # for every node after "in", in order: (node, activation, [predecessors], how), how
        # None for a dense node, else a convolution's (stride, padding, positions, pool), its
        # inputs' convolutions summed on ``positions`` before the activation and the pooling
        self._plan: list[tuple[str, str, list[str], tuple | None]] = []
        for v in order[1:]:
            preds = [u for u in order if genome.has_edge(u, v)]
            edge_shapes = [_edge_shape(genome, nodes, u, v) for u in preds]
            bound = 1.0 / math.sqrt(sum(_fan_in(s) for s in edge_shapes))
            for u, edge_shape in zip(preds, edge_shapes):
                w = torch.empty(edge_shape)
                w.uniform_(-bound, bound, generator=generator)
                self.weight[edge_key(u, v)] = nn.Parameter(w)
            b = torch.empty(nodes[v][0]).uniform_(-bound, bound, generator=generator)
            self.bias[v] = nn.Parameter(b)
            activation = "identity" if v == G.OUT else genome.nodes[v]["activation"]
            how = None
            if G.is_conv(genome, v):
                data = genome.nodes[v]
                positions = G.conv_positions(genome, nodes, v)
                how = (data["stride"], data["kernel"] // 2, positions, data["pool"])
            self._plan.append((v, activation, preds, how))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, n_in) -> (B, n_out); a spatial input is viewed as (B, *shape) for convolutions
        values = {G.IN: x}
        spatial = {G.IN: x.reshape(x.shape[0], *self.shape)} if self.shape else {}
        for v, activation, preds, how in self._plan:
            if how is None:
                z = self.bias[v]
                for u in preds:
                    w = self.weight[edge_key(u, v)]
                    z = z + F.linear(values[u].flatten(1), w.flatten(1))
                values[v] = ACTIVATION_FUNCTIONS[activation](z)
                continue
            stride, padding, positions, pool = how
            dims = len(positions) + 1
            z = self.bias[v].view(-1, *([1] * len(positions)))
            for u in preds:
                h = _CONV[dims](
                    spatial[u], self.weight[edge_key(u, v)], stride=stride, padding=padding
                )
                if tuple(h.shape[2:]) != positions:
                    h = _POOL[dims](h, positions)
                z = z + h
            h = ACTIVATION_FUNCTIONS[activation](z)
            if pool > 1:
                h = _MAX_POOL[dims](h, pool, ceil_mode=True)
            spatial[v] = values[v] = h
        return values[G.OUT]


def build(genome: nx.DiGraph, *, generator: torch.Generator | None = None) -> GenomeNet:
    """A freshly initialised network (PyTorch's default ``nn.Linear`` scale, fan-in over all
    incoming edges of a node), drawn from ``generator``."""
    return GenomeNet(genome, generator=generator)


def inherit(
    child: nx.DiGraph,
    parent_state: Mapping[str, torch.Tensor] | None,
    *,
    generator: torch.Generator | None = None,
) -> GenomeNet:
    """Build ``child`` starting from its parent's trained weights.

    * A tensor whose shape is unchanged is copied.
    * Where a width changed, the overlapping block is copied and the rest stays freshly
      initialised.
    * A new edge between two nodes that both existed in the parent (``add_skip``, or the
      reconnections of ``remove_layer``) starts at **zero**, so it does not change what the net
      computes until it learns to.
    * A convolution's kernel that changed size keeps its centre: the overlap of the old and
      new kernels (centred) is copied for the channels both have, and the new kernel's other
      taps of those channels start at zero, so ``alter_kernel`` to a larger kernel computes
      what the parent computed.
    * Edges and biases of new nodes start fresh.
    * With ``child.graph["fresh_weights"]`` (``reset_weights``) or no parent state, everything
      starts fresh.
    """
    net = build(child, generator=generator)
    if parent_state is None or child.graph.get("fresh_weights"):
        return net
    parent_nodes = {G.IN} | {k[len("bias.") :] for k in parent_state if k.startswith("bias.")}
    with torch.no_grad():
        for name, param in net.named_parameters():
            old = parent_state.get(name)
            if (
                old is not None
                and param.dim() == old.dim()
                and param.dim() >= 3
                and _is_kernel(child, name)
            ):
                _copy_kernel(param, old)
            elif old is not None and param.dim() == old.dim():
                block = tuple(slice(0, min(a, b)) for a, b in zip(param.shape, old.shape))
                param[block] = old[block].to(param.dtype)
            elif old is not None:
                pass  # a node that became a convolution, or stopped being one: fresh
            elif name.startswith("weight."):
                u, v = name[len("weight.") :].split("__")
                if u in parent_nodes and v in parent_nodes:
                    param.zero_()
    return net


def _is_kernel(genome: nx.DiGraph, name: str) -> bool:
    """Whether parameter ``name`` is an edge into a convolution."""
    return name.startswith("weight.") and G.is_conv(genome, name.split("__")[-1])


def _copy_kernel(param: torch.Tensor, old: torch.Tensor) -> None:
    """Overlapping channels copied with the kernels' centres aligned; the new kernel's taps
    outside the old one (for those channels) zero."""
    channels = tuple(slice(0, min(a, b)) for a, b in zip(param.shape[:2], old.shape[:2]))
    new_taps, old_taps = [], []
    for n, o in zip(param.shape[2:], old.shape[2:]):
        k = min(n, o)
        new_taps.append(slice((n - k) // 2, (n - k) // 2 + k))
        old_taps.append(slice((o - k) // 2, (o - k) // 2 + k))
    param[channels] = 0.0
    param[(*channels, *new_taps)] = old[(*channels, *old_taps)].to(param.dtype)
