"""Stacked nets with convolutions: a group of nets whose convolutions run as one grouped
convolution per edge, trained together (the batched engine's part for spatial genomes).

Which nets share a group
    Nets whose convolutions line up: the same input shape and, convolution by convolution in
    topological order, the same stride, pooling and positions (:attr:`SpatialLayout.key`).
    Channels, kernel sizes, activations, edges and the dense layers after the convolutions
    may differ: they are padded as :mod:`neuroevo.training.stack` pads dense nets.
Layout
    Slot 0 is ``in``, slots ``1..c`` the ``c`` convolutions in topological order, then the
    dense hidden nodes in topological order, ``out`` last (a convolution reads only ``in`` and
    convolutions, so this is a topological order too). A convolution slot's values are kept as
    ``(B, g * channels, *positions)``, net after net along the channels, so that an edge
    between two convolutions is one ``conv`` with ``groups=g`` (an edge from ``in``, which
    every net reads alike, one ``conv`` with ``g`` times the output channels); a dense slot's
    values are ``(g, B, width)`` and its edges batched products, as in the dense stack.
Padding
    A kernel smaller than its slot's sits in the middle of it (padding ``kernel // 2`` either
    way, so the positions and what each one sees are the net's own); the taps around it, the
    channels and units a net lacks and the edges it lacks are zero, and their gradients are
    zeroed after every backward pass, so they stay zero under Adam and never reach a real unit.
Gradients
    By autograd over the group's forward pass (the convolutions' backward kernels are
    torch's); the group's Adam is the dense stack's (:class:`neuroevo.training.adam.PerNet`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import torch
import torch.nn.functional as F

from neuroevo.genome import graph as G
from neuroevo.training import adam
from neuroevo.training.network import ACTIVATION_FUNCTIONS, State, edge_key

_CONV = {1: F.conv1d, 2: F.conv2d}
_POOL = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d}


@dataclass(frozen=True)
class SpatialLayout:
    """A net with convolutions as slots: ``nodes[i]`` at position ``i`` (``in``, the
    convolutions, the dense hidden nodes, ``out``); ``sizes[i]`` its output shape (channels
    and positions, or width), ``kernels[i]`` a convolution's kernel (else 0),
    ``activations[i]`` a hidden node's activation; ``edges`` pairs of positions."""

    nodes: tuple[str, ...]
    n_conv: int
    sizes: tuple[tuple[int, ...], ...]
    kernels: tuple[int, ...]
    activations: tuple[str | None, ...]
    edges: tuple[tuple[int, int], ...]
    #: what nets of one group share: the input's shape, and per convolution its stride,
    #: pooling and the positions it sums its inputs on
    key: tuple

    @classmethod
    def of(cls, genome: nx.DiGraph) -> SpatialLayout:
        convs = G.conv_nodes(genome)
        nodes = (G.IN, *convs, *G.dense_nodes(genome), G.OUT)
        position = {n: i for i, n in enumerate(nodes)}
        shapes = G.node_shapes(genome)
        data = genome.nodes
        key = [tuple(genome.graph["shape"])]
        for v in convs:
            positions = G.conv_positions(genome, shapes, v)
            key.append((data[v]["stride"], data[v]["pool"], positions))
        return cls(
            nodes=nodes,
            n_conv=len(convs),
            sizes=tuple(shapes[n] for n in nodes),
            kernels=tuple(data[n]["kernel"] if n in convs else 0 for n in nodes),
            activations=tuple(None if n in (G.IN, G.OUT) else data[n]["activation"] for n in nodes),
            edges=tuple(sorted((position[u], position[v]) for u, v in genome.edges)),
            key=tuple(key),
        )

    @property
    def depth(self) -> int:
        """Dense hidden nodes."""
        return len(self.nodes) - 2 - self.n_conv

    def slot(self, position: int, group_depth: int) -> int:
        """The slot of the node at ``position`` in a group whose deepest net has
        ``group_depth`` dense hidden nodes (``out`` goes last)."""
        return self.n_conv + group_depth + 1 if position == len(self.nodes) - 1 else position


#: The cost model's constants, measured on one CPU thread with torch 2.13 (per training step
#: with its validation forward, as :mod:`neuroevo.training.stack`'s): the fixed time of an
#: edge into a convolution and of a dense edge, and the rate of the padded multiply-adds.
CONV_EDGE_SECONDS = 300e-6
DENSE_EDGE_SECONDS = 14e-6
FLOP_RATE = 50e9


def _estimate(layouts: Sequence[SpatialLayout], batch: int) -> float:
    """Estimated seconds of one training step (with its validation forward) of one group:
    the edges' fixed times and the padded multiply-adds (a group is as wide as its widest
    net in every slot and its kernels as large as its largest)."""
    depth = max(lay.depth for lay in layouts)
    n_conv = layouts[0].n_conv
    size: dict[int, tuple[int, ...]] = {}
    kernel: dict[int, int] = {}
    edges: set[tuple[int, int]] = set()
    for lay in layouts:
        for i, shape in enumerate(lay.sizes):
            t = lay.slot(i, depth)
            size[t] = (max(size[t][0], shape[0]) if t in size else shape[0], *shape[1:])
            kernel[t] = max(kernel.get(t, 0), lay.kernels[i])
        edges.update((lay.slot(a, depth), lay.slot(b, depth)) for a, b in lay.edges)
    positions = {t: layouts[0].key[t][2] for t in range(1, n_conv + 1)}
    macs, seconds = 0, 0.0
    for s, t in edges:
        if t <= n_conv:
            taps = kernel[t] ** len(positions[t])
            macs += size[t][0] * size[s][0] * taps * math.prod(positions[t])
            seconds += CONV_EDGE_SECONDS
        else:
            macs += size[t][0] * (math.prod(size[s]) if s else math.prod(layouts[0].key[0]))
            seconds += DENSE_EDGE_SECONDS
    return seconds + 8 * batch * len(layouts) * macs / FLOP_RATE


def groups(layouts: Sequence[SpatialLayout], batch: int) -> list[list[int]]:
    """Indices into ``layouts`` split into groups minimising the estimated step time: only
    nets of one :attr:`SpatialLayout.key` share a group; within a key the nets are sorted by
    their channels and widths and the split into contiguous runs of that order is found by
    dynamic programming, as the dense stack splits its nets. (One group of nets with 16 and
    64 channels pads the small ones' work fourfold; separate groups pay each convolution's
    fixed time again.)"""
    by_key: dict[tuple, list[int]] = {}
    for i, lay in enumerate(layouts):
        by_key.setdefault(lay.key, []).append(i)
    out: list[list[int]] = []
    for members in by_key.values():
        order = sorted(members, key=lambda i: (sum(s[0] for s in layouts[i].sizes), i))
        n = len(order)
        best = [0.0] + [math.inf] * n
        cut = [0] * (n + 1)
        for end in range(1, n + 1):
            for start in range(end):
                run = [layouts[order[i]] for i in range(start, end)]
                cost = best[start] + _estimate(run, batch)
                if cost < best[end]:
                    best[end], cut[end] = cost, start
        split = []
        end = n
        while end:
            split.append(sorted(order[cut[end] : end]))
            end = cut[end]
        out += split[::-1]
    return out


class SpatialGroup(adam.PerNet):
    """Nets of one :attr:`SpatialLayout.key`, stacked: weights (in the state dict's
    orientation, the net first), moments, masks and per-net Adam views. The interface is the
    dense stack's group's (``forward``, ``backward``, ``adam_step``, ``unpack``)."""

    def __init__(
        self,
        index: list[int],
        layouts: list[SpatialLayout],
        states: list[State],
        moments: list[tuple[State, State]] | None,
        step: float,
        lrs: list[float],
        device: torch.device,
    ) -> None:
        self.index, self.layouts, self.lrs = index, layouts, lrs
        g = len(index)
        first = layouts[0]
        self.n_conv = c = first.n_conv
        self.depth = max(lay.depth for lay in layouts)
        out = c + self.depth + 1
        self.in_shape = first.key[0]
        self.conv = [None, *first.key[1:]]  # slot -> (stride, pool, positions)
        size: list[tuple[int, ...]] = [()] * (out + 1)
        self.kernel = [0] * (out + 1)
        edges: set[tuple[int, int]] = set()
        acts: list[set[str]] = [set() for _ in range(out + 1)]
        for lay in layouts:
            for i, s in enumerate(lay.sizes):
                t = lay.slot(i, self.depth)
                size[t] = (max(size[t][0], s[0]) if size[t] else s[0], *s[1:])
                self.kernel[t] = max(self.kernel[t], lay.kernels[i])
                if lay.activations[i] is not None:
                    acts[t].add(lay.activations[i])
            edges.update((lay.slot(a, self.depth), lay.slot(b, self.depth)) for a, b in lay.edges)
        self.size = size
        self.edges = tuple(sorted(edges, key=lambda e: (e[1], e[0])))
        self._edge_pos = {e: i for i, e in enumerate(self.edges)}
        self.values = max(math.prod(s) for s in size[1:])  # per row and net, for predict
        shapes = [(g, *self._edge_shape(s, t)) for s, t in self.edges]
        shapes += [(g, size[t][0]) for t in range(1, out + 1)]
        self._stack_tensors(shapes, states, moments, step, device)
        self.incoming: list[list[int]] = [[] for _ in range(out + 1)]
        for e, (_, t) in enumerate(self.edges):
            self.incoming[t].append(e)
        self.activation = [self._activations(t, acts[t], device) for t in range(out)]

    def _edge_shape(self, s: int, t: int) -> tuple[int, ...]:
        """An edge's stacked weight (less the net axis), as the state dict has it."""
        size = self.size
        if t <= self.n_conv:  # into a convolution: (channels, channels in, *kernel)
            return (size[t][0], size[s][0], *[self.kernel[t]] * (len(size[t]) - 1))
        if s == 0:  # the flat input, whatever its shape
            return (size[t][0], math.prod(self.in_shape))
        return (size[t][0], *size[s])

    def _activations(self, t: int, names: set[str], device) -> list:
        """Slot ``t``'s activation, or (function, where-mask) pairs where its nets differ;
        the mask is per channel for a convolution, per net for a dense slot."""
        if not names:
            return []
        names_sorted = sorted(names)
        chosen: list[tuple[str, torch.Tensor | None]] = [(names_sorted[-1], None)]
        for name in names_sorted[:-1]:
            # a hidden node's slot is its position: net n has one in slot t below its out
            use = [t < len(lay.nodes) - 1 and lay.activations[t] == name for lay in self.layouts]
            mask = torch.tensor(use, device=device)
            if t <= self.n_conv:
                dims = len(self.size[t]) - 1
                mask = mask.repeat_interleave(self.size[t][0]).view(1, -1, *[1] * dims)
            else:
                mask = mask.view(-1, 1, 1)
            chosen.append((name, mask))
        return chosen

    def _blocks(self, lay: SpatialLayout):
        """(state-dict name, tensor position, block) of every tensor of one net."""
        depth = self.depth
        for a, b in lay.edges:
            s, t = lay.slot(a, depth), lay.slot(b, depth)
            name = f"weight.{edge_key(lay.nodes[a], lay.nodes[b])}"
            rows, cols = slice(0, lay.sizes[b][0]), slice(0, lay.sizes[a][0])
            if t <= self.n_conv:
                k, full = lay.kernels[b], self.kernel[t]
                taps = slice((full - k) // 2, (full - k) // 2 + k)
                block = (rows, cols, *[taps] * (len(lay.sizes[b]) - 1))
            elif a == 0:
                block = (rows, slice(0, math.prod(self.in_shape)))
            else:
                block = (rows, cols, *[slice(None)] * (len(lay.sizes[a]) - 1))
            yield name, self._edge_pos[s, t], block
        for b in range(1, len(lay.nodes)):
            t = lay.slot(b, depth)
            yield f"bias.{lay.nodes[b]}", len(self.edges) + t - 1, (slice(0, lay.sizes[b][0]),)

    def _activate(self, t: int, z: torch.Tensor) -> torch.Tensor:
        (name, _), *others = self.activation[t]
        h = ACTIVATION_FUNCTIONS[name](z)
        for other, mask in others:
            h = torch.where(mask, ACTIVATION_FUNCTIONS[other](z), h)
        return h

    def forward(self, x: torch.Tensor, *, keep: bool = False) -> torch.Tensor:
        """Raw outputs ``(g, B, m)`` of the group's nets for inputs ``x`` ``(B, n_in)`` (or
        each net its own, ``(g, B, n_in)``); with ``keep``, the graph :meth:`backward` needs
        is kept."""
        if not keep:
            with torch.no_grad():
                return self._forward(x, self.tensors)
        # leaves that share the weights' memory: autograd differentiates in them, Adam
        # updates the weights in place
        leaves = [t.detach().requires_grad_() for t in self.tensors]
        with torch.enable_grad():
            out = self._forward(x, leaves)
        self._kept = (out, leaves)
        return out.detach()

    def _forward(self, x: torch.Tensor, tensors: list[torch.Tensor]) -> torch.Tensor:
        g, rows = len(self.index), x.shape[-2]
        n_edges = len(self.edges)
        if x.dim() == 2:  # one input for all nets
            spatial = {0: x.reshape(rows, *self.in_shape)}
            dense: dict[int, torch.Tensor] = {0: x.expand(g, *x.shape)}
            shared = True
        else:  # each net its own: the nets' channels side by side, convolved in groups
            channels, *positions = self.in_shape
            side = x.reshape(g, rows, channels, *positions).transpose(0, 1)
            spatial = {0: side.reshape(rows, g * channels, *positions)}
            dense = {0: x}
            shared = False
        for t in range(1, self.n_conv + 1):
            stride, pool, positions = self.conv[t]
            dims, channels, kernel = len(positions), self.size[t][0], self.kernel[t]
            z = tensors[n_edges + t - 1].reshape(1, g * channels, *[1] * dims)
            for e in self.incoming[t]:
                s = self.edges[e][0]
                w = tensors[e]
                w = w.reshape(g * channels, w.shape[2], *w.shape[3:])
                h = _CONV[dims](
                    spatial[s],
                    w,
                    stride=stride,
                    padding=kernel // 2,
                    groups=1 if s == 0 and shared else g,
                )
                if tuple(h.shape[2:]) != positions:
                    h = _POOL[dims](h, positions)
                z = z + h
            h = self._activate(t, z)
            if pool > 1:
                h = _MAX_POOL[dims](h, pool, ceil_mode=True)
            spatial[t] = h
        last = self.n_conv + self.depth + 1
        for t in range(self.n_conv + 1, last + 1):
            z = tensors[n_edges + t - 1].unsqueeze(1)
            for e in self.incoming[t]:
                s = self.edges[e][0]
                if 0 < s <= self.n_conv:
                    h = spatial[s].reshape(rows, g, -1).transpose(0, 1)
                else:
                    h = dense[s]
                z = torch.baddbmm(z, h, tensors[e].flatten(2).transpose(1, 2))
            dense[t] = self._activate(t, z) if t < last else z
        return dense[last]

    def backward(self, grad_out: torch.Tensor) -> None:
        """Gradients of the loss (whose gradient in the outputs of the last kept forward is
        ``grad_out``) into ``self.grads``, masked."""
        (out, leaves), self._kept = self._kept, None
        grads = torch.autograd.grad(out, leaves, grad_out, allow_unused=True)
        with torch.no_grad():
            for buf, grad, mask in zip(self.grads, grads, self.masks):
                if grad is None:
                    buf.zero_()
                    continue
                buf.copy_(grad)
                if mask is not None:
                    buf.mul_(mask)
