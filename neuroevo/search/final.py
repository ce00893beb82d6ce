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

Within ``run.time_limit`` the end of the run has a deadline (:func:`finish`'s): it measures
how long a step of each training takes (:func:`estimate`, a few steps of the same nets,
thrown away), gives final training and the refit each its share of the time left in
proportion, and shortens either to the steps that fit, its cosine schedule with it (the
learning rate still decays to zero); the deadline stops whatever is still training as a
backstop (its best weights kept). Without a deadline nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch

from neuroevo.genome import graph as G
from neuroevo.search import seeds
from neuroevo.search.individuals import Champion
from neuroevo.search.objectives import non_dominated
from neuroevo.search.protocol import Search
from neuroevo.training import cohort, engine, ensemble, kinds, network
from neuroevo.training.alone import AloneResult, Deadline
from neuroevo.training.network import State

#: final training measures the validation metric this many times over ``final_steps``
FINAL_CHECKS = 20
#: a bagged refit's copy measures its held-out fold this many times over ``final_steps``, and
#: stops after ``FOLD_PATIENCE`` measurements in a row without a better metric
FOLD_CHECKS = 200
FOLD_PATIENCE = 20
#: steps of each training :func:`estimate` times
MEASURED_STEPS = 20
#: the share of a phase's time its planned steps may fill (the rest: its validation checks,
#: and a machine that slows down)
FILL = 0.85


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
class FrontModel:
    """One member of the front a run with several objectives ends with: its net (after a
    bagged refit, its copies, mixed with ``weights``), its costs and metrics."""

    members: list[Member]
    weights: torch.Tensor | None
    costs: dict[str, float]
    validation_metric: float | None
    test_metric: float | None = None
    refit: dict[str, Any] | None = None

    @property
    def champion(self) -> Champion:
        return self.members[0].champion

    def summary(self, index: int, picked: bool) -> dict[str, Any]:
        """What ``summary.json``'s ``front`` records of this member."""
        c = self.champion
        return {
            "member": index,
            "id": c.id,
            "generation": c.generation,
            "signature": G.signature(c.genome),
            "params": G.n_parameters(c.genome),
            "macs": G.n_macs(c.genome),
            **({"latency_ms": self.costs["latency_ms"]} if "latency_ms" in self.costs else {}),
            "search_validation_metric": c.validation_metric,
            "validation_metric": self.validation_metric,
            "test_metric": self.test_metric,
            "picked": picked,
        }


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
    plan: dict[str, Any] | None = None  # within a deadline: what was measured and planned
    front: list[FrontModel] = field(default_factory=list)  # with several objectives
    picked: int = 0  # the front member ``best/`` holds

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


@dataclass(frozen=True)
class Estimate:
    """What the end of a run would take now: seconds per step of final training (all the
    nets it would train, together) and of the refit (all its copies; 0 without a refit)."""

    final: float
    refit: float

    def seconds(self, steps: int) -> float:
        """The end's seconds at ``steps`` steps each (the most final training takes)."""
        return (self.final + self.refit) * steps


@dataclass
class _Phases:
    """The end of a run within a deadline: the steps of each training and its schedule."""

    deadline: Deadline
    estimate: Estimate
    final_steps: int = 0
    refit_steps: int | None = None  # the most a refit trains (None: no refit yet)
    final_rate: float = 0.0  # seconds per step final training took, its checks included
    cut: list[str] = field(default_factory=list)  # trainings the deadline stopped

    def fit(self, seconds_per_step: float, share: float, most: int) -> int:
        """The steps that fill ``share`` of the time left: at most ``most``, and at least one
        where ``most`` asks for any."""
        room = max(0.0, self.deadline.remaining()) * share * FILL
        return min(most, max(1, math.floor(room / max(seconds_per_step, 1e-9))))

    def record(self) -> dict[str, Any]:
        return {
            "seconds_per_step": {
                "final": round(self.estimate.final, 6), "refit": round(self.estimate.refit, 6)
            },
            "final_steps": self.final_steps,
            "refit_steps": self.refit_steps,
            "cut": self.cut,
        }  # fmt: skip


def finish(evo: Search, deadline: Deadline | None = None) -> Finished:
    """Train, choose and (with ``final.refit``) refit the run's final model; within
    ``deadline`` where given (see the module)."""
    section = evo.recipe.final
    phases = None
    if deadline is not None:
        phases = _Phases(deadline, estimate(evo, deadline.now))
        e = phases.estimate
        share = e.final / (e.final + e.refit) if e.final > 0 else 1.0
        phases.final_steps = phases.fit(e.final, share, section.final_steps)
    members = _train(evo, kept(evo), phases)
    if evo.objectives.several:
        return _finish_front(evo, members, phases)
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
    if bagged(evo):
        chosen, weights, refit = _bag(evo, chosen, weights, section.folds, phases)
    elif section.refit:
        if phases is not None:  # at the speed final training had
            phases.refit_steps = phases.fit(phases.final_rate, 1.0, phases.final_steps)
        refit = {"rows": rows, "steps": [refit_steps(evo, m, phases) for m in chosen]}
        chosen = _refit(evo, chosen, phases)
    test = score(chosen, weights, engine.on(evo.device, evo.task.test), evo)
    plan = phases.record() if phases is not None else None
    return Finished(choice, chosen, weights, candidates[choice], test, candidates, refit, plan)


def _finish_front(evo: Search, trained: list[Member], phases: _Phases | None) -> Finished:
    """The end of a run with several objectives: of the trained front, the members that no
    other beats after final training (on validation), each refitted as ``[final]`` says (all
    of them in one population), each scored once on test; ``final.pick`` names the member
    ``best/`` holds."""
    task = evo.task
    objectives = evo.objectives
    points = [objectives.values(_or_low(m.validation_metric), m.genome) for m in trained]
    front = [trained[i] for i in non_dominated(points)]
    front.sort(key=lambda m: (-_or_low(m.validation_metric), G.n_parameters(m.genome), m.id))
    models = [
        FrontModel([m], None, objectives.cost_values(m.genome), m.validation_metric) for m in front
    ]
    section = evo.recipe.final
    if bagged(evo):
        copies, fold, k, results = _bag_train(evo, front, section.folds, phases)
        for j, model in enumerate(models):
            part = slice(j * k, (j + 1) * k)
            model.members, model.weights, model.refit = _bagged(
                evo, front[j : j + 1], copies[part], fold, k, None, results[part]
            )
    elif section.refit:
        if phases is not None:
            phases.refit_steps = phases.fit(phases.final_rate, 1.0, phases.final_steps)
        rows = len(task.x_train) + len(task.x_valid)
        for model, refitted in zip(models, _refit(evo, front, phases)):
            model.refit = {"rows": rows, "steps": [refit_steps(evo, model.members[0], phases)]}
            model.members = [refitted]
    test = engine.on(evo.device, task.test)
    for model in models:
        model.test_metric = score(model.members, model.weights, test, evo)
    picked = _pick(models, section.pick)
    best = models[picked]
    plan = phases.record() if phases is not None else None
    return Finished(
        "front", best.members, best.weights, best.validation_metric, best.test_metric,
        {"best": best.validation_metric}, best.refit, plan, models, picked,
    )  # fmt: skip


def _pick(models: list[FrontModel], objective: str) -> int:
    """The member best on ``objective`` (the metric on validation, or the least of a cost),
    ties by the other (the least of the recipe's first cost, or the metric)."""

    def key(i: int) -> tuple:
        model = models[i]
        metric = -_or_low(model.validation_metric)
        first_cost = next(iter(model.costs.values()), 0)
        if objective == "metric":
            return (metric, first_cost, i)
        return (model.costs[objective], metric, i)

    return min(range(len(models)), key=key)


def kept(evo: Search) -> list[Champion]:
    """The nets the end of the run trains: with several objectives the front, else the hall
    of fame's best (:func:`wanted` of them)."""
    if evo.objectives.several:
        return sorted(evo.front, key=lambda c: (-c.validation_metric, c.id))
    return distinct(evo.hall_of_fame, wanted(evo))


def wanted(evo: Search) -> int:
    """The nets final training trains: the ensemble's size, or one."""
    section = evo.recipe.final
    return section.ensemble_size if section.final == "ensemble" else 1


def bagged(evo: Search) -> bool:
    """Whether the refit is bagged (see the module)."""
    section = evo.recipe.final
    rows = len(evo.task.x_train) + len(evo.task.x_valid)
    return (
        section.refit
        and section.folds >= 2
        and rows <= section.folds_max_rows
        and section.final_steps > 0
    )


def estimate(evo: Search, now: Callable[[], float]) -> Estimate:
    """The end of the run's speed if the search stopped now, on clock ``now``: a few steps of
    final training of the nets it would keep, and of their refit (bagged: every copy),
    measured and thrown away (the search's nets and generators are left as they are)."""
    section = evo.recipe.final
    if section.final_steps == 0:
        return Estimate(0.0, 0.0)
    champions = kept(evo)
    x, y, train, _ = _rows(evo)
    jobs = [cohort.Job(c.genome, c.state, train, 0, MEASURED_STEPS) for c in champions]
    rate = _rate(evo, jobs, (x, y), now)
    if not section.refit:
        return Estimate(rate, 0.0)
    if not bagged(evo):
        return Estimate(rate, rate)  # the same nets (or fewer), the same batches
    generator = torch.Generator().manual_seed(0)  # weights thrown away: any will do
    genomes = [c.genome for c in champions]
    copies, _, _ = _bag_jobs(evo, genomes, section.folds, generator, MEASURED_STEPS)
    return Estimate(rate, _rate(evo, copies, (x, y), now))


def _rate(evo: Search, jobs: list[cohort.Job], data, now: Callable[[], float]) -> float:
    """Seconds per step of ``jobs`` trained together (:data:`MEASURED_STEPS` steps each, on
    copies of their weights, without validation)."""
    copies = [
        cohort.Job(
            j.genome, {k: v.clone() for k, v in j.state.items()}, j.rows, j.seed, MEASURED_STEPS
        )
        for j in jobs
    ]
    started = now()
    cohort.train(
        copies,
        kind=evo.task.kind,
        data=data,
        batch_size=evo.recipe.mixer.batch_size,
        schedule_steps=MEASURED_STEPS,
        stacked=evo.recipe.mixer.engine != "loop",
        device=evo.device,
        deadline=Deadline(math.inf, now),  # read at every step, as the end's own deadline is
    )
    return (now() - started) / MEASURED_STEPS


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
    phases: _Phases | None,
    schedule: int,
    **about: Any,
):
    """``jobs`` trained, each alone on its rows of ``data`` (:func:`_rows`), on a cosine
    schedule of ``schedule`` steps: in the batched engine as one population, with the
    ``loop`` engine one after another (the reference); ``about`` goes to the progress
    callbacks."""
    results = cohort.train(
        jobs,
        kind=evo.task.kind,
        data=data,
        batch_size=evo.recipe.mixer.batch_size,
        schedule_steps=schedule,
        checks=checks,
        patience=patience,
        stacked=evo.recipe.mixer.engine != "loop",
        device=evo.device,
        on_step=lambda step, steps: evo.notify(
            "on_final_step", step=step, steps=steps, nets=len(jobs), **about
        ),
        deadline=phases.deadline if phases is not None else None,
    )
    if phases is not None and any(r.out_of_time for r in results):
        phases.cut.append("refit" if about.get("refit") else "final")
    return results


def _train(evo: Search, champions: list[Champion], phases: _Phases | None) -> list[Member]:
    """Final training of ``champions``, each from its search weights on the training rows
    (one batch order, from the run's seed), the weights best on validation kept."""
    x, y, train, valid = _rows(evo)
    steps, seed = _schedule(evo, phases), seeds.final_batches(evo.recipe.run.seed)
    jobs = [cohort.Job(c.genome, c.state, train, seed, steps, valid) for c in champions]
    patience = evo.recipe.final.patience
    started = phases.deadline.now() if phases is not None else 0.0
    results = _cohort(
        evo, jobs, (x, y), checks=FINAL_CHECKS, patience=patience, phases=phases, schedule=steps
    )
    if phases is not None:  # the speed it had, checks included, for the refit's plan
        took = max((r.steps_trained for r in results), default=0)
        phases.final_rate = (phases.deadline.now() - started) / max(took, 1)
    return [
        Member(c, _cpu(r.state), r.validation_metric, r.best_step, r.settled_step)
        for c, r in zip(champions, results)
    ]


def _refit(evo: Search, chosen: list[Member], phases: _Phases | None) -> list[Member]:
    """Each of ``chosen`` trained again from its search weights on training and validation
    rows, for the steps ``final.refit_steps`` names, on the same schedule (stopped there)."""
    x, y, train, valid = _rows(evo)
    rows, seed = torch.cat([train, valid]), seeds.final_batches(evo.recipe.run.seed)
    jobs = [
        cohort.Job(m.genome, m.champion.state, rows, seed, refit_steps(evo, m, phases))
        for m in chosen
    ]
    results = _cohort(
        evo, jobs, (x, y), checks=0, patience=0, phases=phases, schedule=_schedule(evo, phases),
        refit=True,
    )  # fmt: skip
    return [
        Member(m.champion, _cpu(r.state), m.validation_metric, m.best_step, m.settled_step)
        for m, r in zip(chosen, results)
    ]


def _schedule(evo: Search, phases: _Phases | None) -> int:
    """The length of final training's cosine schedule (the refit follows it, stopped early)."""
    return evo.recipe.final.final_steps if phases is None else phases.final_steps


def refit_steps(evo: Search, member: Member, phases: _Phases | None = None) -> int:
    """The steps a refit of ``member`` from its search weights trains (``final.refit_steps``;
    within a deadline, at most the steps that fit)."""
    steps = member.settled_step if evo.recipe.final.refit_steps == "settled" else member.best_step
    if phases is not None and phases.refit_steps is not None:
        steps = min(steps, phases.refit_steps)
    return steps


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


def _bag_jobs(
    evo: Search, genomes: list[nx.DiGraph], k: int, generator: torch.Generator, steps: int
) -> tuple[list[cohort.Job], torch.Tensor, int]:
    """The copies of a bagged refit of ``genomes`` over ``k`` folds (at most one per row),
    each from fresh weights for ``steps`` steps, each row's fold and the number of folds;
    ``generator`` deals the folds, then each copy's weights and batch seed in turn."""
    y = torch.cat([evo.task.y_train, evo.task.y_valid])
    k = min(k, len(y))
    fold = fold_of(y, k, evo.task.kind, generator)
    jobs = []
    for genome in genomes:
        for i in range(k):
            net = network.build(genome, generator=generator)
            seed = int(torch.randint(2**62, (1,), generator=generator))
            held, rest = torch.nonzero(fold == i).flatten(), torch.nonzero(fold != i).flatten()
            jobs.append(cohort.Job(genome, net.state_dict(), rest, seed, steps, held))
    return jobs, fold, k


def _bag(
    evo: Search,
    chosen: list[Member],
    weights: torch.Tensor | None,
    k: int,
    phases: _Phases | None,
) -> tuple[list[Member], torch.Tensor, dict[str, Any]]:
    """The bagged refit (see the module): the copies, their mixing weights, and its record."""
    copies, fold, k, results = _bag_train(evo, chosen, k, phases)
    return _bagged(evo, chosen, copies, fold, k, weights, results)


def _bag_train(
    evo: Search, chosen: list[Member], k: int, phases: _Phases | None
) -> tuple[list[Member], torch.Tensor, int, list[AloneResult]]:
    """The copies of a bagged refit of ``chosen`` trained as one population: net ``j``'s
    ``k`` copies from ``j * k`` on; each row's fold, the number of folds, their results."""
    x, y, _, _ = _rows(evo)
    generator = torch.Generator().manual_seed(seeds.bagging(evo.recipe.run.seed))
    steps = evo.recipe.final.final_steps
    if phases is not None:
        steps = phases.refit_steps = phases.fit(phases.estimate.refit, 1.0, steps)
    jobs, fold, k = _bag_jobs(evo, [m.genome for m in chosen], k, generator, steps)
    results = _cohort(
        evo,
        jobs,
        (x, y),
        checks=FOLD_CHECKS,
        patience=FOLD_PATIENCE,
        phases=phases,
        schedule=steps,
        refit=True,
        folds=k,
    )
    copies = [
        Member(m.champion, _cpu(r.state), m.validation_metric, r.best_step)
        for m, r in zip((m for m in chosen for _ in range(k)), results)
    ]
    return copies, fold, k, results


def _bagged(
    evo: Search,
    chosen: list[Member],
    copies: list[Member],
    fold: torch.Tensor,
    k: int,
    weights: torch.Tensor | None,
    results: list[AloneResult],
) -> tuple[list[Member], torch.Tensor, dict[str, Any]]:
    """The model a bagged refit of ``chosen`` makes of its ``copies``: their mixing weights
    and its record (the out-of-fold metric)."""
    x, y, _, _ = _rows(evo)
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
