"""Task kinds: what a net's raw outputs mean, how each net is trained, how outputs are mixed,
and how a net is scored.

=============  =======================  ==========================  ==================
kind           a net's own loss         what the mixer mixes        metric
=============  =======================  ==========================  ==================
``bits``       binary cross-entropy     sigmoid probabilities       bit accuracy
``classes``    cross-entropy            softmax probabilities,      accuracy
                                        renormalised after mixing
``regression`` mean squared error       raw outputs                 R² (mean over
                                                                    outputs)
=============  =======================  ==========================  ==================

Targets: ``bits`` a float tensor of 0/1 of shape (B, m); ``classes`` a long tensor of labels of
shape (B,); ``regression`` a float tensor of shape (B, m).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuroevo.errors import NeuroevoError

_EPS = 1e-7


def _bce_on_probabilities(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p.clamp(_EPS, 1 - _EPS)
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


def _nll_on_mixed(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p / p.sum(dim=-1, keepdim=True).clamp_min(_EPS)
    return -p.gather(-1, y.unsqueeze(-1)).clamp_min(_EPS).log().mean()


def _bce_on_probabilities_grad(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    q = p.clamp(_EPS, 1 - _EPS)
    inside = (p >= _EPS) & (p <= 1 - _EPS)  # where clamp passes the gradient
    return torch.where(inside, (q - y) / (q * (1 - q)), 0.0).div_(p.numel())


def _nll_on_mixed_grad(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    total = p.sum(dim=-1, keepdim=True)
    norm = total.clamp_min(_EPS)
    picked = (p.gather(-1, y.unsqueeze(-1)) / norm).squeeze(-1)
    # the gradient of -mean(log(max(picked, eps))) in picked, then through p / norm
    c = torch.where(picked >= _EPS, -1.0 / (picked * p.shape[0]), 0.0).unsqueeze(-1)
    onehot = torch.zeros_like(p).scatter_(-1, y.unsqueeze(-1), 1.0)
    through_norm = torch.where(total >= _EPS, c * picked.unsqueeze(-1), 0.0)
    return (c * onehot - through_norm) / norm


def _mse_grad(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (p - y).mul_(2.0 / p.numel())


# each net's own loss per output on its mixable values: (k, B, m) -> (k, m)
def _bce_per_output(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    q = p.clamp(_EPS, 1 - _EPS)
    return -(y * q.log() + (1 - y) * (1 - q).log()).mean(dim=1)


def _nll_per_output(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p / p.sum(dim=-1, keepdim=True).clamp_min(_EPS)
    picked = p.gather(-1, y.view(1, -1, 1).expand(p.shape[0], -1, 1)).clamp_min(_EPS)
    return (-picked.log().mean(dim=1)).expand(-1, p.shape[-1])  # one loss for every class


def _squared_error_per_output(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((p - y) ** 2).mean(dim=1)


def _bit_accuracy(out: torch.Tensor, y: torch.Tensor) -> float:
    return ((out > 0) == (y > 0.5)).float().mean().item()


def _accuracy(out: torch.Tensor, y: torch.Tensor) -> float:
    return (out.argmax(dim=-1) == y).float().mean().item()


def _r2(out: torch.Tensor, y: torch.Tensor) -> float:
    ss_res = ((y - out) ** 2).sum(dim=0)
    ss_tot = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
    return (1 - ss_res / ss_tot).mean().item()


# each row's share of the metric: (B, m) -> (B,), whose mean is the metric
def _bit_accuracy_rows(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out > 0) == (y > 0.5)).double().mean(dim=-1)


def _accuracy_rows(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.argmax(dim=-1) == y).double()


def _r2_rows(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y, out = y.double(), out.double()
    ss_tot = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
    return 1 - len(y) * ((y - out) ** 2 / ss_tot).mean(dim=-1)


def _bce_each(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    each = F.binary_cross_entropy_with_logits(out, y.expand_as(out), reduction="none")
    return each.mean(dim=(1, 2))


def _cross_entropy_each(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    k, b, m = out.shape
    each = F.cross_entropy(out.reshape(k * b, m), y.expand(k, b).reshape(-1), reduction="none")
    return each.view(k, b).mean(dim=1)


def _mse_each(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, y.expand_as(out), reduction="none").mean(dim=(1, 2))


# the gradients of the sum of those losses in ``out``
def _bce_each_grad(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.sigmoid(out) - y).div_(out.shape[1] * out.shape[2])


def _cross_entropy_each_grad(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    grad = torch.softmax(out, dim=-1)
    grad.scatter_add_(
        -1, y.expand(out.shape[:2]).unsqueeze(-1), torch.full_like(grad[..., :1], -1.0)
    )
    return grad.div_(out.shape[1])


def _mse_each_grad(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out - y).mul_(2.0 / (out.shape[1] * out.shape[2]))


# a mixture of mixable values (float64) back to raw outputs, read as a single net's are
def _log_of_renormalised(mixed: torch.Tensor) -> torch.Tensor:
    # renormalised: with per-class weights the mixture need not sum to 1
    return (mixed / mixed.sum(dim=-1, keepdim=True)).clamp_min(1e-300).log()


def _log_odds(mixed: torch.Tensor) -> torch.Tensor:
    p = mixed.clamp(1e-300, 1.0)
    return p.log() - (1.0 - p).clamp_min(1e-300).log()


@dataclass(frozen=True)
class Kind:
    name: str
    #: a net's own training loss on its raw outputs
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: raw outputs -> the values the mixer mixes
    mixable: Callable[[torch.Tensor], torch.Tensor]
    #: loss of the mixed values against the target
    mixed_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: its gradient in the mixed values
    mixed_grad: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: each net's own loss per output on its mixable values ``(k, B, m)`` -> ``(k, m)``
    own_losses: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: a net's metric on its raw outputs (higher is better)
    metric: Callable[[torch.Tensor, torch.Tensor], float]
    metric_name: str
    #: the own losses of stacked nets: raw outputs ``(k, B, m)`` -> ``(k,)``, each what
    #: ``loss`` gives for that net; the targets are one batch's, or each net's (``k`` first)
    losses: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: the gradient of the sum of ``losses`` in the raw outputs ``(k, B, m)``
    losses_grad: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: each row's share of the metric, ``(B,)``: their mean is the metric
    row_metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: a mixture of mixable values -> raw outputs: log-probabilities, log-odds or values
    unmix: Callable[[torch.Tensor], torch.Tensor] = lambda mixed: mixed
    #: raw outputs -> decisions: class indices, 0/1 bits, or the values themselves
    decide: Callable[[torch.Tensor], torch.Tensor] = lambda out: out
    #: the outputs are classes: a decision names one, and a mixture of probabilities sums
    #: to 1 once renormalised
    labelled: bool = False
    #: the raw outputs are standardised targets (a model turns them back into their units)
    standardised: bool = False

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float | None:
        """The metric of raw outputs ``out``, or None where it is not a finite number (the net
        diverged, or the data drove its outputs out of range): such a net ranks last."""
        if not torch.isfinite(out).all():
            return None
        value = self.metric(out, y)
        return value if math.isfinite(value) else None

    def standard_error(self, out: torch.Tensor, y: torch.Tensor) -> float | None:
        """The standard error of the metric of ``out`` over its rows (the spread of the rows'
        shares of it over the square root of their number): how much of a difference between
        two metrics on these rows is noise. None where it is not finite or one row."""
        if len(y) < 2 or not torch.isfinite(out).all():
            return None
        value = (self.row_metric(out, y).std() / math.sqrt(len(y))).item()
        return value if math.isfinite(value) else None


KINDS: dict[str, Kind] = {
    "bits": Kind(
        "bits",
        loss=F.binary_cross_entropy_with_logits,
        mixable=torch.sigmoid,
        mixed_loss=_bce_on_probabilities,
        mixed_grad=_bce_on_probabilities_grad,
        own_losses=_bce_per_output,
        metric=_bit_accuracy,
        metric_name="bit_accuracy",
        losses=_bce_each,
        losses_grad=_bce_each_grad,
        row_metric=_bit_accuracy_rows,
        unmix=_log_odds,
        decide=lambda out: (out > 0).long(),
    ),
    "classes": Kind(
        "classes",
        loss=F.cross_entropy,
        mixable=lambda out: torch.softmax(out, dim=-1),
        mixed_loss=_nll_on_mixed,
        mixed_grad=_nll_on_mixed_grad,
        own_losses=_nll_per_output,
        metric=_accuracy,
        metric_name="accuracy",
        losses=_cross_entropy_each,
        losses_grad=_cross_entropy_each_grad,
        row_metric=_accuracy_rows,
        unmix=_log_of_renormalised,
        decide=lambda out: out.argmax(dim=-1),
        labelled=True,
    ),
    "regression": Kind(
        "regression",
        loss=F.mse_loss,
        mixable=lambda out: out,
        mixed_loss=F.mse_loss,
        mixed_grad=_mse_grad,
        own_losses=_squared_error_per_output,
        metric=_r2,
        metric_name="r2",
        losses=_mse_each,
        losses_grad=_mse_each_grad,
        row_metric=_r2_rows,
        standardised=True,
    ),
}


def get(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise NeuroevoError(f"unknown task kind {name!r} (known: {', '.join(KINDS)})") from None
