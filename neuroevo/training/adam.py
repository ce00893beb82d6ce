"""Stacked nets' tensors and Adam over them: each net's tensors are the rows (first axis) of
stacked tensors, and each net takes the update ``torch.optim.Adam`` would give it, with its own
learning rate.

:class:`PerNet` is what a stacked group (:mod:`neuroevo.training.stack`,
:mod:`neuroevo.training.spatial`) mixes in for its Adam steps: torch's fused kernel (private,
the one ``torch.optim.Adam(fused=True)`` runs) once per learning rate, on the whole tensors
where all nets share one, else on each net's views; the same update written out where the
kernel is missing.
"""

from __future__ import annotations

import math

import torch

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, as the loop uses them
EPS = 1e-8


class PerNet:
    """The stacked tensors of a group of nets and their per-net Adam steps.

    A group sets ``layouts`` and ``lrs`` (one per net) and defines ``_blocks(layout)`` (the
    state-dict name, tensor position and block of each of a net's tensors) and, where its
    stacked orientation differs from the state dict's, ``_orient``; :meth:`_stack_tensors`
    then makes ``tensors``, ``grads``, ``exp_avg``, ``exp_avg_sq`` (the net first), ``masks``
    (None where nothing is padded) and ``step`` (the one step count of every net), and
    :meth:`unpack` reads a net back."""

    layouts: list
    tensors: list[torch.Tensor]
    grads: list[torch.Tensor]
    exp_avg: list[torch.Tensor]
    exp_avg_sq: list[torch.Tensor]
    masks: list[torch.Tensor | None]
    step: torch.Tensor
    lrs: list[float]

    def _blocks(self, layout):
        raise NotImplementedError

    @staticmethod
    def _orient(name: str, value: torch.Tensor) -> torch.Tensor:
        """A state-dict tensor as the group stacks it (and back): as it is."""
        return value

    def _stack_tensors(self, shapes, states, moments, step: float, device) -> None:
        """Zero tensors of ``shapes`` (the net first) holding each net's ``states`` (and Adam
        ``moments``, where given) in its blocks, the masks of those blocks, and the Adam
        views."""
        dtype = next(iter(states[0].values())).dtype  # the nets' own (float32 as built)
        self.tensors = [torch.zeros(shape, device=device, dtype=dtype) for shape in shapes]
        masks = [torch.zeros(shape, device=device, dtype=dtype) for shape in shapes]
        self.exp_avg = [torch.zeros_like(t) for t in self.tensors]
        self.exp_avg_sq = [torch.zeros_like(t) for t in self.tensors]
        self.step = torch.tensor(step, dtype=torch.float32, device=device)
        with torch.no_grad():
            for n, layout in enumerate(self.layouts):
                sources = [(self.tensors, states[n])]
                if moments is not None:
                    sources += [(self.exp_avg, moments[n][0]), (self.exp_avg_sq, moments[n][1])]
                for name, position, block in self._blocks(layout):
                    masks[position][(n, *block)] = 1.0
                    for target, source in sources:
                        value = self._orient(name, source[name])
                        target[position][(n, *block)] = value.to(dtype)
        self.masks = [m if not bool(m.all()) else None for m in masks]
        self.grads = [torch.zeros_like(t) for t in self.tensors]
        self._adam_views()

    def unpack(self, n: int, source: list[torch.Tensor] | None = None) -> dict:
        """Net ``n``'s tensors (weights, or moments with ``source``) as a state dict."""
        source = self.tensors if source is None else source
        return {
            name: self._orient(name, source[position].detach()[(n, *block)]).clone()
            for name, position, block in self._blocks(self.layouts[n])
        }

    def _adam_views(self) -> None:
        """The fused Adam calls of a step: one per learning rate among the group's nets, on
        the whole tensors where all nets share one, else on the nets' views."""
        lists = (self.tensors, self.grads, self.exp_avg, self.exp_avg_sq)
        steps = [self.step] * len(self.tensors)
        by_lr: dict[float, list[int]] = {}
        for n, lr in enumerate(self.lrs):
            by_lr.setdefault(lr, []).append(n)
        if len(by_lr) == 1:
            self.calls = [(self.lrs[0], (*lists, steps))]
        else:
            self.calls = [(lr, self._views(nets)) for lr, nets in by_lr.items()]

    def _views(self, nets: list[int]) -> tuple[list[torch.Tensor], ...]:
        out = tuple(
            [t[n] for n in nets for t in ts]
            for ts in (self.tensors, self.grads, self.exp_avg, self.exp_avg_sq)
        )
        return (*out, [self.step] * len(out[0]))

    def adam_step(self, trained: list[bool] | None, scale: float = 1.0) -> None:
        """One Adam step of every net of the group (``trained``: only of those flagged; the
        others leave the run now, so the one step count stays every live net's), each at its
        learning rate times ``scale`` (a schedule's factor, as ``LambdaLR`` applies it)."""
        with torch.no_grad():
            self.step += 1.0
        if trained is None:
            for lr, tensors in self.calls:
                fused(*tensors, lr=lr * scale)
            return
        for n, ok in enumerate(trained):
            if ok:
                fused(*self._views([n]), lr=self.lrs[n] * scale)


def fused(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float) -> None:
    """One Adam step of each tensor: torch's fused kernel (private, CPU float32 from torch
    2.4), else :func:`plain`, the same update written out (an older torch, or a device
    or dtype without the kernel)."""
    global _FUSED
    if _FUSED:
        try:
            _fused_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr=lr)
            return
        except (AttributeError, RuntimeError, NotImplementedError):
            _FUSED = False
    plain(params, grads, exp_avgs, exp_avg_sqs, steps, lr=lr)


def plain(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float) -> None:
    """Adam's update as ``torch.optim.Adam``'s single-tensor implementation writes it."""
    beta1, beta2 = BETAS
    for p, g, m, v, s in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        step = float(s)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(EPS)
        p.addcdiv_(m, denom, value=-lr / (1 - beta1**step))


#: whether this torch has the fused Adam kernel (set to False on its first failure)
_FUSED = hasattr(torch, "_fused_adam_")


def _fused_step(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float) -> None:
    torch._fused_adam_(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        [],
        steps,
        lr=lr,
        beta1=BETAS[0],
        beta2=BETAS[1],
        weight_decay=0.0,
        eps=EPS,
        amsgrad=False,
        maximize=False,
    )
