"""Compile a genome into a ``torch.nn.Module``, and pass weights from parent to child.

Parameters are named after node ids, so they follow a node through mutations:
``weight.<u>__<v>`` is the matrix of edge ``u -> v`` (shape ``(width_v, width_u)``) and
``bias.<v>`` the bias of node ``v``. A hidden node computes
``act_v(sum_u weight.u__v @ h_u + bias.v)``; ``out`` returns raw values (logits), and the task
decides what follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from neuroevo import genome as G

#: activation name -> function, for every name in neuroevo.space.ACTIVATIONS (and "identity")
ACTIVATION_FUNCTIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "identity": lambda x: x,
}


def edge_key(u: str, v: str) -> str:
    return f"{u}__{v}"


def shapes(genome: nx.DiGraph) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in the state dict of ``genome``'s network."""
    out: dict[str, tuple[int, ...]] = {}
    for v in G.topological_order(genome)[1:]:
        width = genome.nodes[v]["width"]
        for u in genome.predecessors(v):
            out[f"weight.{edge_key(u, v)}"] = (width, genome.nodes[u]["width"])
        out[f"bias.{v}"] = (width,)
    return out


class GenomeNet(nn.Module):
    """The network a genome describes; build it with :func:`build` or :func:`inherit`."""

    def __init__(self, genome: nx.DiGraph, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        G.validate(genome)
        order = G.topological_order(genome)
        self.n_in = G.n_inputs(genome)
        self.n_out = G.n_outputs(genome)
        self.weight = nn.ParameterDict()
        self.bias = nn.ParameterDict()
        # (node, activation name, [predecessors]) for every node after "in", in order
        self._plan: list[tuple[str, str, list[str]]] = []
        for v in order[1:]:
            preds = [u for u in order if genome.has_edge(u, v)]
            fan_in = sum(genome.nodes[u]["width"] for u in preds)
            bound = 1.0 / math.sqrt(fan_in)
            width = genome.nodes[v]["width"]
            for u in preds:
                w = torch.empty(width, genome.nodes[u]["width"])
                w.uniform_(-bound, bound, generator=generator)
                self.weight[edge_key(u, v)] = nn.Parameter(w)
            b = torch.empty(width).uniform_(-bound, bound, generator=generator)
            self.bias[v] = nn.Parameter(b)
            activation = "identity" if v == G.OUT else genome.nodes[v]["activation"]
            self._plan.append((v, activation, preds))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, n_in) -> (B, n_out)
        values = {G.IN: x}
        for v, activation, preds in self._plan:
            z = self.bias[v]
            for u in preds:
                z = z + F.linear(values[u], self.weight[edge_key(u, v)])
            values[v] = ACTIVATION_FUNCTIONS[activation](z)
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
            if old is not None:
                block = tuple(slice(0, min(a, b)) for a, b in zip(param.shape, old.shape))
                param[block] = old[block].to(param.dtype)
            elif name.startswith("weight."):
                u, v = name[len("weight.") :].split("__")
                if u in parent_nodes and v in parent_nodes:
                    param.zero_()
    return net
