"""Ensembles: several nets' outputs mixed with simplex weights, as the mixer mixes them.

The mixer already is a convex ensemble of a population. After the search, the best nets of the
hall of fame (each after its final training) can be kept together: each output of the ensemble
is a convex combination of the nets' mixable outputs (probabilities for ``bits`` and
``classes``, values for ``regression``), with one weight per net and output, fitted on the
validation split by projected gradient descent on the mixture's loss, the update the mixer's
``projected-gradient`` rule makes (full batch, a decaying step, from uniform weights).
"""

from __future__ import annotations

import torch

from neuroevo.training import kinds
from neuroevo.training.mixer import project_simplex

#: full-batch steps of the weight fit, and the first step's size (in units of the largest
#: gradient entry; it decays as 1/sqrt(step))
FIT_STEPS = 400
FIT_STEP = 0.5


def fit_weights(outputs: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Mixing weights ``(k, m)`` (each column on the simplex) for the nets' raw outputs
    ``(k, n, m)`` on the rows ``y``, minimising the loss of the mixture (float64)."""
    task = kinds.get(kind)
    p = task.mixable(outputs.double())
    target = y.double() if y.is_floating_point() else y
    k, _, m = p.shape
    w = torch.full((k, m), 1.0 / k, dtype=torch.float64)
    best, best_loss = w, float(task.mixed_loss(mix_probabilities(p, w), target))
    for step in range(1, FIT_STEPS + 1):
        grad = (p * task.mixed_grad(mix_probabilities(p, w), target).unsqueeze(0)).sum(dim=1)
        scale = grad.abs().max()
        if not torch.isfinite(scale) or scale == 0:
            break
        w = project_simplex(w - FIT_STEP / step**0.5 * grad / scale)
        loss = float(task.mixed_loss(mix_probabilities(p, w), target))
        if loss < best_loss:
            best, best_loss = w, loss
    return best


def mix_probabilities(p: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The mixture ``(n, m)`` of mixable outputs ``p`` ``(k, n, m)`` with ``weights``."""
    return (p * weights.to(p.dtype).unsqueeze(1)).sum(dim=0)


def raw(mixed: torch.Tensor, kind: str) -> torch.Tensor:
    """A mixture as raw outputs, which the kind's metric and prediction read as they read a
    single net's: log-probabilities for ``classes``, log-odds for ``bits``, values as they
    are for ``regression``."""
    return kinds.get(kind).unmix(mixed)


def outputs(nets_outputs: torch.Tensor, weights: torch.Tensor, kind: str) -> torch.Tensor:
    """The raw outputs of the ensemble of ``nets_outputs`` ``(k, n, m)`` (see :func:`raw`)."""
    p = kinds.get(kind).mixable(nets_outputs.double())
    return raw(mix_probabilities(p, weights), kind)
