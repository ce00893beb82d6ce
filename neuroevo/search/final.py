"""The end of a run: final training, the choice between the best net and an ensemble, refit.

``final.final = "best"`` (default): the hall of fame's best net trains alone for up to
``final.final_steps`` steps (Adam at its learning rate, cosine decay to zero, the weights
with the best validation metric kept, stopped after ``final.patience`` checks without a better
one) and is scored once on the test split.

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
steps ``final.refit_steps`` names (the best validation check's, or the last within one standard
error of it; the same learning-rate schedule, stopped there). Either way
the validation metric reported is the one measured before the refit (the refit has seen the
validation rows).

Each of these trainings (the final training of every kept net, the refit, all folds x nets
bagged copies) is one population of nets trained alone, together
(:mod:`neuroevo.training.cohort`): in the batched engine one stack whose nets leave as they
stop; with ``mixer.engine = "loop"`` one net after another, the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch

from neuroevo.search import seeds
from neuroevo.search.individuals import Champion
from neuroevo.search.protocol import Search
from neuroevo.training import cohort, engine, ensemble, kinds, network
from neuroevo.training.network import State

#: final training measures the validation metric this many times over ``final_steps``
FINAL_CHECKS = 20
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
    settled_step: int = 0  # its last check within one standard error of the best

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
    members = _train(evo, distinct(evo.hall_of_fame, wanted))
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
        refit = {"rows": rows, "steps": [refit_steps(evo, m) for m in chosen]}
        chosen = _refit(evo, chosen)
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


def _rows(evo: Search) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training and validation rows as one ``(x, y)``, and the indices of each."""
    (x_train, y_train), (x_valid, y_valid) = evo.task.train, evo.task.valid
    n, m = len(y_train), len(y_valid)
    x, y = torch.cat([x_train, x_valid]), torch.cat([y_train, y_valid])
    return x, y, torch.arange(n), torch.arange(n, n + m)


def _cohort(
    evo: Search,
    jobs: list[cohort.Job],
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    checks: int,
    patience: int,
    **about: Any,
):
    """``jobs`` trained, each alone on its rows of ``data`` (:func:`_rows`): in the batched
    engine as one population, with the ``loop`` engine one after another (the reference);
    ``about`` goes to the progress callbacks."""
    return cohort.train(
        jobs,
        kind=evo.task.kind,
        data=data,
        batch_size=evo.recipe.mixer.batch_size,
        schedule_steps=evo.recipe.final.final_steps,
        checks=checks,
        patience=patience,
        stacked=evo.recipe.mixer.engine != "loop",
        device=evo.device,
        on_step=lambda step, steps: evo.notify(
            "on_final_step", step=step, steps=steps, nets=len(jobs), **about
        ),
    )


def _train(evo: Search, champions: list[Champion]) -> list[Member]:
    """Final training of ``champions``, each from its search weights on the training rows
    (one batch order, from the run's seed), the weights best on validation kept."""
    x, y, train, valid = _rows(evo)
    steps, seed = evo.recipe.final.final_steps, seeds.final_batches(evo.recipe.run.seed)
    jobs = [cohort.Job(c.genome, c.state, train, seed, steps, valid) for c in champions]
    patience = evo.recipe.final.patience
    results = _cohort(evo, jobs, (x, y), checks=FINAL_CHECKS, patience=patience)
    return [
        Member(c, _cpu(r.state), r.validation_metric, r.best_step, r.settled_step)
        for c, r in zip(champions, results)
    ]


def _refit(evo: Search, chosen: list[Member]) -> list[Member]:
    """Each of ``chosen`` trained again from its search weights on training and validation
    rows, for the steps ``final.refit_steps`` names, on the same schedule (stopped there)."""
    x, y, train, valid = _rows(evo)
    rows, seed = torch.cat([train, valid]), seeds.final_batches(evo.recipe.run.seed)
    jobs = [cohort.Job(m.genome, m.champion.state, rows, seed, refit_steps(evo, m)) for m in chosen]
    results = _cohort(evo, jobs, (x, y), checks=0, patience=0, refit=True)
    return [
        Member(m.champion, _cpu(r.state), m.validation_metric, m.best_step, m.settled_step)
        for m, r in zip(chosen, results)
    ]


def refit_steps(evo: Search, member: Member) -> int:
    """The steps a refit of ``member`` from its search weights trains (``final.refit_steps``)."""
    return member.settled_step if evo.recipe.final.refit_steps == "settled" else member.best_step


def _cpu(state: State) -> State:
    return {k: v.to("cpu") for k, v in state.items()}


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
    x, y, _, _ = _rows(evo)
    k = min(k, len(y))
    generator = torch.Generator().manual_seed(seeds.bagging(evo.recipe.run.seed))
    fold = fold_of(y, k, evo.task.kind, generator)
    steps = evo.recipe.final.final_steps
    jobs = []
    for member in chosen:  # each copy's fresh weights, then its batch seed, in turn
        for i in range(k):
            net = network.build(member.genome, generator=generator)
            seed = int(torch.randint(2**62, (1,), generator=generator))
            held, rest = torch.nonzero(fold == i).flatten(), torch.nonzero(fold != i).flatten()
            jobs.append(cohort.Job(member.genome, net.state_dict(), rest, seed, steps, held))
    results = _cohort(
        evo, jobs, (x, y), checks=FOLD_CHECKS, patience=FOLD_PATIENCE, refit=True, folds=k
    )
    copies = [
        Member(m.champion, _cpu(r.state), m.validation_metric, r.best_step)
        for m, r in zip((m for m in chosen for _ in range(k)), results)
    ]
    held_out = []  # per net: every row's output from the copy that never trained on it
    for j in range(len(chosen)):
        out_of_fold = None
        for i in range(k):
            copy, hold = copies[j * k + i], fold == i
            out = _outputs([copy], x[hold].to(evo.device), evo)[0].to(x.dtype).cpu()
            if out_of_fold is None:
                out_of_fold = torch.empty((len(y), *out.shape[1:]), dtype=out.dtype)
            out_of_fold[hold] = out
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
        "steps": [r.best_step for r in results],  # each copy's: the step whose weights it kept
        "fold_metrics": [r.validation_metric for r in results],  # each on its held-out fold
        "out_of_fold_metric": metric,
    }
    return copies, per_net.repeat_interleave(k, dim=0) / k, record


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
