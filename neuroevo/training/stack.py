"""Stacked nets: a population packed into a few tensors, trained by batched matrix products.

The batched engine's population (:class:`Stack`, a :class:`neuroevo.training.mixer.Population`).
Dense nets are stacked as below; nets with convolutions go to groups of their own kind
(:mod:`neuroevo.training.spatial`), side by side with the dense groups in one population.

Layout
    A net's nodes take *slots*: ``in`` is slot 0, its hidden nodes slots 1, 2, ... in the
    genome's topological order, ``out`` the slot after its group's deepest net. The nets are
    split into *groups*. In a group every slot is as wide as its widest net, and every edge
    ``s -> t`` that any of its nets has is one tensor ``(g, width_s, width_t)`` stacked over the
    group's ``g`` nets (biases ``(g, width_t)``). A slot runs ``baddbmm`` over its incoming
    edges, then its activation (selected per net by masks where the group's nets differ).
Padding
    Where a net lacks an edge, is narrower than its slot, or has no node in a slot, its entries
    are zero and a mask zeroes their gradients after every backward pass. They stay exactly
    zero under Adam (zero gradient, zero moments, zero step), so a padded unit or an absent
    edge never reaches a real unit, and each net's loss and gradients are its own.
Groups (the cost model)
    One padded group costs few operations but multiplies the work of its small nets; one
    group per net is the loop again. The nets are sorted by (depth, widest layer, size), and
    the split into contiguous runs of that order minimising the estimated time of a step is
    found by dynamic programming. The estimate of a group: a fixed time per edge and per slot
    (the tensor operations' own overhead, which dominates small nets), the padded
    multiply-adds at a measured rate, and the padded activation values at each activation's
    measured cost (every activation present in a slot runs on all of its values). The
    constants are fixed, not measured at run time, so the split and with it every result
    depend only on the population and the batch size.
Adam
    One fused Adam call per learning rate, on the stacked tensors or the nets' views of them
    (:mod:`neuroevo.training.adam`): the kernel ``torch.optim.Adam(fused=True)`` runs in the
    loop, so Adam's semantics (and per-net step counts) are the loop's.
Retirement
    :meth:`Stack.retire` takes the leaving nets' weights out and repacks the others (with
    their Adam moments), so their compute stops.

State dicts go in and come out named as :mod:`neuroevo.training.network` names them
(``weight.u__v`` of shape ``(width_v, width_u)``, ``bias.v``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import torch

from neuroevo.genome import graph as G
from neuroevo.training import adam, kinds, spatial
from neuroevo.training.network import ACTIVATION_FUNCTIONS, State, edge_key

#: The cost model's constants, measured on one CPU thread with torch 2.13 (per training step
#: with its validation forward): the fixed time of an edge (a batched product forward, two
#: backward, one more forward for validation) and of a hidden slot (bias, activation and its
#: backward), the rate of batched products, and the time per value of each activation
#: (forward, backward and the validation forward) and of the per-net selection between two.
EDGE_SECONDS = 14e-6
SLOT_SECONDS = 10e-6
FLOP_RATE = 80e9
ACTIVATION_SECONDS = {"relu": 0.8e-9, "sigmoid": 1.0e-9, "gelu": 2.0e-9, "tanh": 4.4e-9}
SELECT_SECONDS = 0.8e-9
#: activations per forward pass when predicting: large sets go through in chunks of rows
#: that keep a group's hidden values this small (fast in cache, bounded in memory)
PREDICT_VALUES = 1 << 20


@dataclass(frozen=True)
class Layout:
    """A net as slots: ``nodes[i]`` is at position ``i`` (``in`` first, ``out`` last),
    ``edges`` are pairs of positions, ``activations[i]`` is the hidden node's activation
    (``None`` for ``in`` and ``out``)."""

    nodes: tuple[str, ...]
    widths: tuple[int, ...]
    activations: tuple[str | None, ...]
    edges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, genome: nx.DiGraph) -> Layout:
        nodes = tuple(G.topological_order(genome))
        position = {n: i for i, n in enumerate(nodes)}
        return cls(
            nodes=nodes,
            widths=tuple(genome.nodes[n]["width"] for n in nodes),
            activations=tuple(
                None if n in (G.IN, G.OUT) else genome.nodes[n]["activation"] for n in nodes
            ),
            edges=tuple(sorted((position[u], position[v]) for u, v in genome.edges)),
        )

    @property
    def depth(self) -> int:
        return len(self.nodes) - 2

    def slot(self, position: int, group_depth: int) -> int:
        """The slot of the node at ``position`` in a group whose deepest net has
        ``group_depth`` hidden nodes (``out`` goes last)."""
        return group_depth + 1 if position == len(self.nodes) - 1 else position


# --------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class Shape:
    """What nets stacked in one group share: the depth of the deepest, each slot's width
    (``width[0]`` the inputs, ``width[depth + 1]`` the outputs), the union of their edges as
    slot pairs, and the activations present in each hidden slot."""

    depth: int
    width: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]  # sorted by target slot, then source slot
    activations: tuple[frozenset[str], ...]

    @classmethod
    def of(cls, layouts: Sequence[Layout]) -> Shape:
        depth = max(lay.depth for lay in layouts)
        width = [0] * (depth + 2)
        edges: set[tuple[int, int]] = set()
        acts: list[set[str]] = [set() for _ in range(depth + 2)]
        for lay in layouts:
            for i, w in enumerate(lay.widths):
                s = lay.slot(i, depth)
                width[s] = max(width[s], w)
                if lay.activations[i] is not None:
                    acts[s].add(lay.activations[i])
            edges.update((lay.slot(a, depth), lay.slot(b, depth)) for a, b in lay.edges)
        return cls(
            depth=depth,
            width=tuple(width),
            edges=tuple(sorted(edges, key=lambda e: (e[1], e[0]))),
            activations=tuple(frozenset(a) for a in acts),
        )


def _estimate(layouts: Sequence[Layout], batch: int) -> float:
    """Estimated seconds of one training step (with its validation forward) of one group."""
    shape = Shape.of(layouts)
    depth, width, edges = shape.depth, shape.width, shape.edges
    activations = {s: names for s, names in enumerate(shape.activations) if names}
    g = len(layouts)
    seconds = len(edges) * EDGE_SECONDS + depth * SLOT_SECONDS
    seconds += 8 * batch * g * sum(width[s] * width[t] for s, t in edges) / FLOP_RATE
    for s, names in activations.items():
        per_value = sum(ACTIVATION_SECONDS[n] for n in names)
        per_value += SELECT_SECONDS * (len(names) - 1)
        seconds += batch * g * width[s] * per_value
    return seconds


def plan(layouts: Sequence[Layout], batch: int) -> list[list[int]]:
    """Split nets into groups (lists of indices into ``layouts``) minimising the estimated
    step time (see the module's notes)."""
    order = sorted(
        range(len(layouts)),
        key=lambda i: (layouts[i].depth, max(layouts[i].widths[1:-1], default=0), i),
    )
    n = len(order)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end):
            cost = best[start] + _estimate([layouts[order[i]] for i in range(start, end)], batch)
            if cost < best[end]:
                best[end], cut[end] = cost, start
    groups = []
    end = n
    while end:
        groups.append(sorted(order[cut[end] : end]))
        end = cut[end]
    return groups[::-1]


# --------------------------------------------------------------------------- one group


class _Group(adam.PerNet):
    """Nets of one group, stacked: weights, moments, masks and per-net Adam views."""

    def __init__(
        self,
        index: list[int],
        layouts: list[Layout],
        states: list[State],
        moments: list[tuple[State, State]] | None,
        step: float,
        lrs: list[float],
        device: torch.device,
    ) -> None:
        self.index = index
        self.layouts = layouts
        self.lrs = lrs
        g = len(index)
        shape = Shape.of(layouts)
        self.depth = shape.depth
        out = shape.depth + 1
        self.width = width = shape.width
        self.values = max(width)  # per row and net, for predict
        self.edges = shape.edges
        self._edge_pos = {e: i for i, e in enumerate(self.edges)}
        acts = shape.activations
        # tensors: one weight per edge, then one bias per slot 1..out
        shapes = [(g, width[s], width[t]) for s, t in self.edges]
        shapes += [(g, width[t]) for t in range(1, out + 1)]
        self._stack_tensors(shapes, states, moments, step, device)
        # activations: one function per slot, or (function, where-mask) pairs
        self.activation: list[list[tuple[str, torch.Tensor | None]]] = [[] for _ in range(out)]
        for t in range(1, out):
            names = sorted(acts[t])
            first = names[-1]
            self.activation[t] = [(first, None)]
            for name in names[:-1]:
                use = [t <= lay.depth and lay.activations[t] == name for lay in layouts]
                mask = torch.tensor(use, device=device).view(g, 1, 1)
                self.activation[t].append((name, mask))
        self.incoming: list[list[int]] = [[] for _ in range(out + 1)]
        for e, (_, t) in enumerate(self.edges):
            self.incoming[t].append(e)

    def _blocks(self, lay: Layout):
        """(state-dict name, tensor position, block) of every tensor of one net."""
        depth, edge_pos = self.depth, self._edge_pos
        for a, b in lay.edges:
            s, t = lay.slot(a, depth), lay.slot(b, depth)
            name = f"weight.{edge_key(lay.nodes[a], lay.nodes[b])}"
            yield name, edge_pos[s, t], (slice(0, lay.widths[a]), slice(0, lay.widths[b]))
        for b in range(1, len(lay.nodes)):
            t = lay.slot(b, depth)
            name = f"bias.{lay.nodes[b]}"
            yield name, len(self.edges) + t - 1, (slice(0, lay.widths[b]),)

    @staticmethod
    def _orient(name: str, value: torch.Tensor) -> torch.Tensor:
        """A weight is stacked as ``(width_u, width_v)``, the state dict's transposed."""
        return value.t() if name.startswith("weight.") else value

    def forward(self, x: torch.Tensor, *, keep: bool = False) -> torch.Tensor:
        """Raw outputs ``(g, B, m)`` of the group's nets for inputs ``x`` ``(B, n_in)`` (or
        each net its own, ``(g, B, n_in)``); with ``keep``, what :meth:`backward` needs is
        kept."""
        g = len(self.index)
        nodes: list[torch.Tensor] = [x.expand(g, *x.shape) if x.dim() == 2 else x]
        before: list[torch.Tensor | None] = [None]  # values before the activation
        n_edges = len(self.edges)
        for t in range(1, self.depth + 2):
            z = self.tensors[n_edges + t - 1].unsqueeze(1)
            for e in self.incoming[t]:
                z = torch.baddbmm(z, nodes[self.edges[e][0]], self.tensors[e])
            h = z
            if t <= self.depth:
                (name, _), *others = self.activation[t]
                h = ACTIVATION_FUNCTIONS[name](z)
                for other, mask in others:
                    h = torch.where(mask, ACTIVATION_FUNCTIONS[other](z), h)
            nodes.append(h)
            before.append(z)
        if keep:
            self._kept = (nodes, before)
        return nodes[-1]

    def backward(self, grad_out: torch.Tensor) -> None:
        """Gradients of the loss (whose gradient in the outputs of the last kept forward is
        ``grad_out``) into ``self.grads``, masked: by hand, with the kernels autograd uses,
        without its per-operation bookkeeping."""
        nodes, before = self._kept
        n_edges = len(self.edges)
        grad_h: list[torch.Tensor | None] = [None] * len(nodes)
        grad_h[-1] = grad_out
        for t in range(self.depth + 1, 0, -1):
            grad = grad_h[t]
            if t <= self.depth:
                (name, _), *others = self.activation[t]
                local = _BACKWARD[name](grad, nodes[t], before[t])
                for other, mask in others:
                    local = torch.where(mask, _BACKWARD[other](grad, nodes[t], before[t]), local)
                grad = local
            torch.sum(grad, dim=1, out=self.grads[n_edges + t - 1])
            for e in self.incoming[t]:
                s = self.edges[e][0]
                torch.bmm(nodes[s].transpose(1, 2), grad, out=self.grads[e])
                if s == 0:
                    continue
                back = torch.bmm(grad, self.tensors[e].transpose(1, 2))
                grad_h[s] = back if grad_h[s] is None else grad_h[s].add_(back)
        self._kept = None
        for t, m in zip(self.grads, self.masks):
            if m is not None:
                t.mul_(m)


#: activation name -> its backward: (gradient in the output, output, input) -> gradient in the
#: input, by the kernels autograd uses for it
_BACKWARD = {
    "relu": lambda grad, h, z: torch.ops.aten.threshold_backward(grad, h, 0),
    "sigmoid": lambda grad, h, z: torch.ops.aten.sigmoid_backward(grad, h),
    "tanh": lambda grad, h, z: torch.ops.aten.tanh_backward(grad, h),
    "gelu": lambda grad, h, z: torch.ops.aten.gelu_backward(grad, z),
    "identity": lambda grad, h, z: grad,
}


# --------------------------------------------------------------------------- the population


class Stack:
    """A mixer population of nets stacked into groups (see the module's notes).

    ``genomes`` give the architectures and learning rates, ``states`` the weights to start
    from (as :func:`neuroevo.training.network.inherit` made them), ``batch`` the training batch size
    (for the cost models); ``groups`` pins the first split of the dense nets (lists of net
    indices) instead of the cost model's.
    """

    def __init__(
        self,
        genomes: Sequence[nx.DiGraph],
        states: Sequence[State],
        *,
        kind: str,
        batch: int,
        device: torch.device | str = "cpu",
        groups: list[list[int]] | None = None,
    ) -> None:
        self.task = kinds.get(kind)
        self.device = torch.device(device)
        self.batch = batch
        self.genomes = list(genomes)
        self.layouts: list[Layout | spatial.SpatialLayout] = [
            spatial.SpatialLayout.of(g) if G.conv_nodes(g) else Layout.of(g) for g in genomes
        ]
        self.lrs = [float(g.graph["lr"]) for g in genomes]
        self._params = [G.n_parameters(g) for g in genomes]
        self._final: dict[int, State] = {}
        self.groups: list[_Group | spatial.SpatialGroup] = []
        self._pack(
            list(range(len(genomes))),
            {i: {k: v.detach() for k, v in s.items()} for i, s in enumerate(states)},
            None,
            0.0,
            groups,
        )

    @property
    def live(self) -> list[int]:
        """The nets in the stack, ascending (kept at each packing, read at every step)."""
        return self._live

    def _pack(self, index, states, moments, step: float, groups=None) -> None:
        """Stack the nets ``index`` into groups: the dense nets as :func:`plan` splits them
        (or as ``groups`` pins them), the nets with convolutions by their convolutions' key
        (:func:`neuroevo.training.spatial.groups`)."""
        dense = [i for i in index if isinstance(self.layouts[i], Layout)]
        convs = [i for i in index if not isinstance(self.layouts[i], Layout)]
        if groups is None:
            groups = [
                [dense[j] for j in grp]
                for grp in plan([self.layouts[i] for i in dense], self.batch)
            ]
        split = [(_Group, grp) for grp in groups]
        split += [
            (spatial.SpatialGroup, [convs[j] for j in grp])
            for grp in spatial.groups([self.layouts[i] for i in convs], self.batch)
        ]
        self.groups = [
            kind(
                ids,
                [self.layouts[i] for i in ids],
                [states[i] for i in ids],
                [moments[i] for i in ids] if moments is not None else None,
                step,
                [self.lrs[i] for i in ids],
                self.device,
            )
            for kind, ids in split
        ]
        order = [i for grp in self.groups for i in grp.index]
        self._live = sorted(order)
        position = {i: p for p, i in enumerate(order)}
        self._to_sorted = torch.tensor([position[i] for i in sorted(order)], device=self.device)
        # where each group's nets are among the live ones (for inputs given per net)
        rank = {i: r for r, i in enumerate(self._live)}
        self._rows = [
            torch.tensor([rank[i] for i in grp.index], device=self.device) for grp in self.groups
        ]
        self._from_sorted = torch.tensor([rank[i] for i in order], device=self.device)

    # the Population protocol

    @torch.no_grad()
    def train_step(self, x, y, live, keep_outputs, *, scale: float = 1.0, each: bool = False):
        """One step of every live net (the mixer's call). ``each``: ``x`` and ``y`` hold one
        batch per live net (the first axis, in ``live``'s order), else one batch for all;
        ``scale`` multiplies every net's learning rate for this step."""
        if each:
            outs = [grp.forward(x[rows], keep=True) for grp, rows in zip(self.groups, self._rows)]
            y = y[self._from_sorted]
        else:
            outs = [grp.forward(x, keep=True) for grp in self.groups]
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        if len(live) != out.shape[0]:
            raise RuntimeError(f"the mixer's {len(live)} live nets are not the stack's")
        losses = self.task.losses(out, y)
        finite = torch.isfinite(losses)
        trained = None if bool(finite.all()) else finite.tolist()
        grad = self.task.losses_grad(out, y)  # a net whose loss is not finite takes no step
        start = 0
        for grp, part in zip(self.groups, grad.split([len(grp.index) for grp in self.groups])):
            end = start + len(grp.index)
            grp.backward(part)
            grp.adam_step(None if trained is None else trained[start:end], scale)
            start = end
        outputs = out[self._to_sorted] if keep_outputs else None
        return losses[self._to_sorted], outputs

    @torch.no_grad()
    def predict(self, x, live):
        if list(live) != self._live:
            return Stack(  # retired nets among them: stack those nets' weights anew
                [self.genomes[i] for i in live],
                [self.state(i) for i in live],
                kind=self.task.name,
                batch=self.batch,
                device=self.device,
            ).predict(x, list(range(len(live))))
        outs = []
        for grp in self.groups:
            rows = max(16, PREDICT_VALUES // (len(grp.index) * grp.values))
            chunks = [grp.forward(x[i : i + rows]) for i in range(0, x.shape[0], rows)]
            outs.append(torch.cat(chunks, dim=1))
        return torch.cat(outs)[self._to_sorted]

    def retire(self, index):
        if not index:
            return
        leaving = set(index)
        states, moments = {}, {}
        step = self.groups[0].step.item()
        for grp in self.groups:
            for n, i in enumerate(grp.index):
                if i in leaving:
                    self._final[i] = grp.unpack(n)
                else:
                    states[i] = grp.unpack(n)
                    moments[i] = (grp.unpack(n, grp.exp_avg), grp.unpack(n, grp.exp_avg_sq))
        remaining = sorted(states)
        if remaining:
            self._pack(remaining, states, moments, step)
        else:
            self.groups, self._live = [], []

    def n_parameters(self):
        return list(self._params)

    # reading the weights back

    def state(self, i: int) -> State:
        """Net ``i``'s current weights (its last ones if it retired), named as
        :mod:`neuroevo.training.network` names them."""
        if i in self._final:
            return self._final[i]
        for grp in self.groups:
            if i in grp.index:
                return grp.unpack(grp.index.index(i))
        raise KeyError(i)

    def states(self) -> list[State]:
        return [self.state(i) for i in range(len(self.layouts))]
