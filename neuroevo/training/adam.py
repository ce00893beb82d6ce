"""Adam over stacked nets: each net's tensors are the rows (first axis) of stacked tensors,
each net takes the update ``torch.optim.Adam`` would give it, with its own learning rate.

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
    """Per-net Adam steps of a group: the group sets ``tensors``, ``grads``, ``exp_avg``,
    ``exp_avg_sq`` (lists of stacked tensors, the net first), ``step`` (a scalar tensor, the
    one step count of every net) and ``lrs`` (one per net), then calls :meth:`_adam_views`."""

    tensors: list[torch.Tensor]
    grads: list[torch.Tensor]
    exp_avg: list[torch.Tensor]
    exp_avg_sq: list[torch.Tensor]
    step: torch.Tensor
    lrs: list[float]

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

    def adam_step(self, trained: list[bool] | None) -> None:
        """One Adam step of every net of the group (``trained``: only of those flagged; the
        others leave the run now, so the one step count stays every live net's)."""
        with torch.no_grad():
            self.step += 1.0
        if trained is None:
            for lr, tensors in self.calls:
                fused(*tensors, lr=lr)
            return
        for n, ok in enumerate(trained):
            if ok:
                fused(*self._views([n]), lr=self.lrs[n])


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
