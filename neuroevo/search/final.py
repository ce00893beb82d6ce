"""The end of a run: final training, the choice between the best net and an ensemble, refit.

``final.final = "best"`` (default): the hall of fame's best net trains alone for
``final.final_steps`` steps (Adam at its learning rate, cosine decay to zero, the weights
with the best validation metric kept) and is scored once on the test split.

``final.final = "ensemble"``: the best ``final.ensemble_size`` distinct nets of the hall
of fame each have that final training; their mixing weights are fitted on the validation split
(:mod:`neuroevo.training.ensemble`); the ensemble is kept only if its validation metric beats
the best net's, and only the kept model is scored on test. The choice sees validation only.

``final.refit = true``: the kept model is trained again on the training and validation rows
together. Where they are at most ``final.folds_max_rows`` rows, ``final.folds`` is 2 or
more and ``final_steps`` above 0, the refit is bagged: the rows are dealt into that many folds
(stratified by class), and each of the kept model's nets is trained from fresh weights once per
fold, on the other folds, stopped where the held-out fold's metric stopped improving; the model
is the equal-weight mixture of those copies (an ensemble's weights shared among each net's
copies), and every row's prediction by the copy that never trained on it gives the out-of-fold
metric. On more rows (or ``folds = 0``) each net trains again from its search weights for the
steps that were best on validation (the same learning-rate schedule, stopped there). Either way
the validation metric reported is the one measured before the refit (the refit has seen the
validation rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch
from torch import nn

from neuroevo.search import seeds
from neuroevo.search.individuals import Champion
from neuroevo.search.protocol import Search
from neuroevo.training import alone as training
from neuroevo.training import engine, ensemble, kinds, mixer, network
from neuroevo.training.network import State

#: a bagged refit's copy measures its held-out fold this many times over ``final_steps``, and
#: stops after ``FOLD_PATIENCE`` measurements in a row without a better metric
FOLD_CHECKS = 200
FOLD_PATIENCE = 20


@dataclass
class Member:
    """One net of the final model."""

    champion: Champion  # as the search left it
    state: State  # after final training (or refit)
    validation_metric: float | None  # after final training
    best_step: int  # the final-training step whose weights were kept

    @property
    def id(self) -> int:
        return self.champion.id

    @property
    def genome(self) -> nx.DiGraph:
        return self.champion.genome


@dataclass
class Finished:
    """The model a run ends with: ``members`` (one net, or the ensemble's, best first; after a
    bagged refit each one's copies, in turn), mixed with ``weights`` where there are several."""

    choice: str  # "best" or "ensemble"
    members: list[Member]
    weights: torch.Tensor | None  # (k, m) mixing weights of an ensemble, else None
    validation_metric: float | None
    test_metric: float | None
    candidates: dict[str, float | None] = field(default_factory=dict)
    refit: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` records of the end of the run, under ``final``."""
        chosen: dict[int, float | None] = {}  # a bagged refit's copies share their net's id
        for m in self.members:
            chosen.setdefault(m.id, m.validation_metric)
        return {
            "choice": self.choice,
            "members": list(chosen),
            "member_validation_metrics": list(chosen.values()),
            "validation_metric_of": self.candidates,
            "refit": self.refit,
        }


def finish(evo: Search) -> Finished:
    """Train, choose and (with ``final.refit``) refit the run's final model."""
    section = evo.recipe.final
    wanted = section.ensemble_size if section.final == "ensemble" else 1
    members = [
        _train(evo, champion, label=n)
        for n, champion in enumerate(distinct(evo.hall_of_fame, wanted))
    ]
    # the best net first (the hall of fame ranks by the search's metric, this by the final one)
    members.sort(key=lambda m: -_or_low(m.validation_metric))
    kind = evo.task.kind
    candidates: dict[str, float | None] = {"best": members[0].validation_metric}
    choice, chosen, weights = "best", members[:1], None
    if len(members) > 1:
        valid = engine.on(evo.device, evo.task.valid)
        outputs = _outputs(members, valid[0], evo).cpu()
        fitted = ensemble.fit_weights(outputs, valid[1].cpu(), kind)
        mixed = ensemble.outputs(outputs, fitted, kind)
        finite = bool(torch.isfinite(fitted).all())  # else a net's outputs overflowed
        candidates["ensemble"] = kinds.get(kind).score(mixed, valid[1].cpu()) if finite else None
        if _or_low(candidates["ensemble"]) > _or_low(candidates["best"]):
            choice, chosen, weights = "ensemble", members, fitted
    refit = None
    rows = len(evo.task.x_train) + len(evo.task.x_valid)
    bag = section.folds >= 2 and rows <= section.folds_max_rows and section.final_steps > 0
    if section.refit and bag:
        chosen, weights, refit = _bag(evo, chosen, weights, section.folds)
    elif section.refit:
        chosen = [_refit(evo, m) for m in chosen]
        refit = {"rows": rows, "steps": [m.best_step for m in chosen]}
    test = score(chosen, weights, engine.on(evo.device, evo.task.test), evo)
    return Finished(choice, chosen, weights, candidates[choice], test, candidates, refit)


def distinct(hall_of_fame: Any, n: int) -> list[Champion]:
    """The hall of fame's best ``n`` nets, one entry per individual (its best)."""
    out, seen = [], set()
    for champion in hall_of_fame:
        if champion.id not in seen:
            out.append(champion)
            seen.add(champion.id)
        if len(out) == n:
            break
    return out


def _or_low(value: float | None) -> float:
    return float("-inf") if value is None else value


def _batches(evo: Search, data: tuple[torch.Tensor, torch.Tensor]):
    return mixer.batches(
        *engine.on(evo.device, data),
        evo.recipe.mixer.batch_size,
        torch.Generator().manual_seed(seeds.final_batches(evo.recipe.run.seed)),
    )


def _train(evo: Search, champion: Champion, *, label: int) -> Member:
    # every weight is inherited; the generator only keeps the global torch state untouched
    net = network.inherit(champion.genome, champion.state, generator=torch.Generator())
    net = net.to(evo.device)
    steps = evo.recipe.final.final_steps
    result = training.train_alone(
        net,
        champion.genome.graph["lr"],
        kind=evo.task.kind,
        train=_batches(evo, evo.task.train),
        steps=steps,
        schedule="cosine",
        valid=engine.on(evo.device, evo.task.valid),
        checks=20,
        on_step=lambda step, total: evo.notify(
            "on_final_step", step=step, steps=total, member=label
        ),
    )
    return Member(
        champion=champion,
        state={k: v.to("cpu") for k, v in result.state.items()},
        validation_metric=result.validation_metric,
        best_step=result.best_step,
    )


def _refit(evo: Search, member: Member) -> Member:
    """``member`` trained again from its search weights on training and validation rows, for
    the steps that were best on validation, on the same schedule (stopped there)."""
    net = network.inherit(member.genome, member.champion.state, generator=torch.Generator())
    net = net.to(evo.device)
    rows = tuple(torch.cat([a, b]) for a, b in zip(evo.task.train, evo.task.valid))
    result = training.train_alone(
        net,
        member.genome.graph["lr"],
        kind=evo.task.kind,
        train=_batches(evo, rows),
        steps=member.best_step,
        schedule="cosine",
        schedule_steps=evo.recipe.final.final_steps,
        on_step=lambda step, n: evo.notify("on_final_step", step=step, steps=n, refit=True),
    )
    state = {k: v.to("cpu") for k, v in result.state.items()}
    return Member(member.champion, state, member.validation_metric, member.best_step)


def fold_of(y: torch.Tensor, k: int, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Each row's fold in ``0..k-1``: the rows in a random order, dealt in turn (for
    ``classes`` one class after another, so every fold holds its share of each class)."""
    n = len(y)
    fold = torch.empty(n, dtype=torch.long)
    if kind != "classes":
        fold[torch.randperm(n, generator=generator)] = torch.arange(n) % k
        return fold
    dealt = 0
    for label in torch.unique(y):
        rows = torch.nonzero(y == label).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        fold[rows] = (dealt + torch.arange(len(rows))) % k
        dealt += len(rows)
    return fold


def _bag(
    evo: Search, chosen: list[Member], weights: torch.Tensor | None, k: int
) -> tuple[list[Member], torch.Tensor, dict[str, Any]]:
    """The bagged refit (see the module): the copies, their mixing weights, and its record."""
    x, y = (torch.cat([a, b]) for a, b in zip(evo.task.train, evo.task.valid))
    k = min(k, len(y))
    generator = torch.Generator().manual_seed(seeds.bagging(evo.recipe.run.seed))
    fold = fold_of(y, k, evo.task.kind, generator)
    steps = evo.recipe.final.final_steps
    copies, stopped, fold_metrics, held_out = [], [], [], []
    for j, member in enumerate(chosen):
        out_of_fold = None
        for i in range(k):
            hold = fold == i
            held = engine.on(evo.device, (x[hold], y[hold]))
            net, result = _fold_copy(
                evo,
                member,
                (x[~hold], y[~hold]),
                held,
                generator,
                steps,
                on_step=lambda step, n, i=i, j=j: evo.notify(
                    "on_final_step", step=step, steps=n, refit=True, fold=i, folds=k, member=j
                ),
            )
            with torch.no_grad():
                out = net(held[0]).cpu()
            if out_of_fold is None:
                out_of_fold = torch.empty((len(y), *out.shape[1:]), dtype=out.dtype)
            out_of_fold[hold] = out
            state = {key: v.to("cpu") for key, v in result.state.items()}
            copies.append(
                Member(member.champion, state, member.validation_metric, result.best_step)
            )
            stopped.append(result.best_step)
            fold_metrics.append(result.validation_metric)
        held_out.append(out_of_fold)
    outputs = held_out[0].shape[-1]  # a net's outputs are (rows, outputs)
    per_net = torch.ones((1, outputs), dtype=torch.float64) if weights is None else weights
    task = kinds.get(evo.task.kind)
    if weights is None:
        metric = task.score(held_out[0], y)
    else:
        metric = task.score(ensemble.outputs(torch.stack(held_out), weights, evo.task.kind), y)
    record = {
        "rows": len(y),
        "folds": k,
        "steps": stopped,  # each copy's: the step whose weights it kept
        "fold_metrics": fold_metrics,  # each copy's on its held-out fold
        "out_of_fold_metric": metric,
    }
    return copies, per_net.repeat_interleave(k, dim=0) / k, record


def _fold_copy(
    evo: Search,
    member: Member,
    train: tuple[torch.Tensor, torch.Tensor],
    held: tuple[torch.Tensor, torch.Tensor],
    generator: torch.Generator,
    steps: int,
    on_step: Callable[[int, int], None],
) -> tuple[nn.Module, training.AloneResult]:
    """One copy of ``member`` for a bagged refit: fresh weights (from ``generator``) trained on
    the ``train`` rows, stopped where the ``held`` fold's metric stopped improving."""
    net = network.build(member.genome, generator=generator).to(evo.device)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    result = training.train_alone(
        net,
        member.genome.graph["lr"],
        kind=evo.task.kind,
        train=mixer.batches(
            *engine.on(evo.device, train),
            evo.recipe.mixer.batch_size,
            torch.Generator().manual_seed(seed),
        ),
        steps=steps,
        schedule="cosine",
        valid=held,
        checks=min(FOLD_CHECKS, steps),
        patience=FOLD_PATIENCE,
        on_step=on_step,
    )
    return net, result


@torch.no_grad()
def _outputs(members: list[Member], x: torch.Tensor, evo: Search) -> torch.Tensor:
    outs = []
    for m in members:
        net = network.inherit(m.genome, m.state, generator=torch.Generator()).to(evo.device)
        outs.append(net(x).double())
    return torch.stack(outs)


def score(
    members: list[Member],
    weights: torch.Tensor | None,
    data: tuple[torch.Tensor, torch.Tensor],
    evo: Search,
) -> float | None:
    """The metric of the model (one net, or the ensemble with ``weights``) on ``data``."""
    task = kinds.get(evo.task.kind)
    if weights is None:
        with torch.no_grad():
            net = network.inherit(members[0].genome, members[0].state, generator=torch.Generator())
            return task.score(net.to(evo.device)(data[0]), data[1])
    outputs = _outputs(members, data[0], evo).cpu()
    return task.score(ensemble.outputs(outputs, weights, evo.task.kind), data[1].cpu())
