"""The weighted mixer: k nets trained side by side, their outputs mixed on the simplex, and the
mixing weights each net earns as its fitness.

Every step each live net takes an Adam step (one parameter group per net, with that net's
learning rate) on **its own** loss for the same training batch. The mixing weights ``W`` (k x m,
one column per output, each column on the probability simplex) follow the nets on validation
rows, with the nets' outputs detached: the mixer never trains a net. By default (``metric``)
each net weighs ``exp(-z)``, ``z`` how many standard errors its validation metric is behind the
leader's; the other rules step the weights by each net's own loss (``experts``) or by the loss
of the mixed output. At the race points the nets expected to end clearly behind (the metric
rule looks ahead along each net's trend) retire: no more forward or backward passes.

The mixer drives a :class:`Population` (:class:`Modules`: ``torch.nn.Module`` objects; the
batched engine's stacked nets); it knows nothing of genomes.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from neuroevo import schema
from neuroevo.errors import NeuroevoError
from neuroevo.training import kinds

Batch = tuple[torch.Tensor, torch.Tensor]

# --------------------------------------------------------------------------- simplex updates


def project_simplex(w: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each column of ``w`` (k x m) onto the probability simplex.

    The sort-based algorithm of Duchi, Shalev-Shwartz, Singer and Chandra (ICML 2008).
    """
    k = w.shape[0]
    u, _ = torch.sort(w, dim=0, descending=True)
    css = torch.cumsum(u, dim=0) - 1.0
    index = torch.arange(1, k + 1, dtype=w.dtype, device=w.device).unsqueeze(1)
    positive = u - css / index > 0
    rho = positive.to(torch.int64).cumsum(dim=0).argmax(dim=0)  # last True (first is always True)
    theta = css.gather(0, rho.unsqueeze(0)) / (rho + 1).to(w.dtype).unsqueeze(0)
    return (w - theta).clamp_min(0.0)


def _projected_gradient(w: torch.Tensor, grad: torch.Tensor, lr: float) -> torch.Tensor:
    return project_simplex(w - lr * grad)


def _hedge(w: torch.Tensor, grad: torch.Tensor, lr: float) -> torch.Tensor:
    # multiplicative weights in log space; the shift by the column max keeps exp() finite
    logits = w.clamp_min(1e-300).log() - lr * grad
    logits = logits - logits.max(dim=0, keepdim=True).values
    new = logits.exp()
    return new / new.sum(dim=0, keepdim=True)


def _rebalance(w: torch.Tensor, grad: torch.Tensor, lr: float) -> torch.Tensor:
    # The 2017 heuristic: after the step, shift and scale each column into [0.00099, 0.99]
    # ((w - min) / (max - min) + 0.001) * 0.99, leave a flat column alone, divide by the sum.
    w = w - lr * grad
    low = w.min(dim=0, keepdim=True).values
    span = w.max(dim=0, keepdim=True).values - low
    flat = span < 1e-8
    scaled = ((w - low) / torch.where(flat, torch.ones_like(span), span) + 0.001) * 0.99
    w = torch.where(flat, w.clamp_min(0.0) + 1e-12, scaled)
    return w / w.sum(dim=0, keepdim=True)


#: the share of its log-weight the ``experts`` rule forgets at each update, so a net's weight
#: follows how well it does lately, not its average over the whole run
EXPERTS_FORGETTING = 0.05


def _experts(w: torch.Tensor, losses: torch.Tensor, lr: float) -> torch.Tensor:
    # Hedge over experts with forgetting: log w <- (1 - f) log w - lr * own loss
    logits = (1.0 - EXPERTS_FORGETTING) * w.clamp_min(1e-300).log() - lr * losses
    logits = logits - logits.max(dim=0, keepdim=True).values
    new = logits.exp()
    return new / new.sum(dim=0, keepdim=True)


UPDATE_RULES: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "projected-gradient": _projected_gradient,
    "hedge": _hedge,
    "rebalance": _rebalance,
    "experts": _experts,
}
#: rules whose step follows each net's own loss (the gradient of the expected loss of a net
#: drawn by the weights, Hedge over experts) rather than the gradient of the mixture's loss
OWN_LOSS_RULES = frozenset({"experts"})
#: every rule: ``metric`` sets the weights from each net's validation metric and its trend
#: (:meth:`_RaceState.by_metric`), the others step them by :data:`UPDATE_RULES`
RULES = ("metric", *UPDATE_RULES)
#: the ``metric`` rule's share of a net's recent gain it expects again per e-fold of steps up
#: to the end of the run (half: learning curves flatten); and the fewest updates its trend
#: needs (fewer: the trend is 0)
TREND_SHARE = 0.5
TREND_POINTS = 3


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Race:
    """When and how nets retire.

    At each of ``points`` (fractions of the run) the live nets are ranked by score. With
    ``rule="keep-fraction"`` the best ``ceil(keep * live)`` stay; with ``rule="threshold"`` those
    below ``keep`` times the leader's score leave. At least ``min_survivors`` always stay.

    The defaults go with the ``metric`` rule, whose race scores are ``exp(-z)`` of how many
    standard errors ``z`` a net's expected metric is behind the leader's: ``keep = 0.018``
    (about ``exp(-4)``) retires, at 40% and 70% of the run, only the nets more than 4 standard
    errors behind (``bench/fidelity.py`` measured the choices).
    """

    points: tuple[float, ...] = schema.setting(
        (0.4, 0.7), above=0.0, below=1.0,
        help="fractions of the run where the race drops nets (empty: no race)",
    )  # fmt: skip
    rule: str = schema.setting(
        "threshold", choices=("keep-fraction", "threshold"), help="how the race drops nets"
    )
    keep: float = schema.setting(
        0.018, above=0.0, high=1.0,
        help="keep-fraction: the share of live nets kept; threshold: of the leader's score",
    )  # fmt: skip
    min_survivors: int = schema.setting(
        2, low=1, high=10_000, help="nets that always reach the end"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple(sorted(self.points)))
        schema.check_section("race", self, RACE_KEYS)


#: a :class:`Race` field -> the ``[mixer]`` key a recipe gives it under
RACE_KEYS = {
    "race.points": "mixer.race_points",
    "race.rule": "mixer.race_rule",
    "race.keep": "mixer.race_keep",
    "race.min_survivors": "mixer.min_survivors",
}

#: the race the rules that step (all but ``metric``) were measured with, and the default before
#: the ``metric`` rule: half the field kept at a quarter, a half and three quarters of the run
STEPPING_RACE = Race(points=(0.25, 0.5, 0.75), rule="keep-fraction", keep=0.5)


#: the steps of one mixer run: ``mixer.steps``'s setting, which a recipe's ``[mixer]`` takes
STEPS = schema.Setting(help="training steps per generation", low=1, high=10_000_000)


@dataclass(frozen=True)
class MixerConfig:
    """How the mixing weights learn and how the race runs.

    ``rule``: ``metric`` (default), ``experts``, ``projected-gradient``, ``hedge`` or
    ``rebalance``; ``mix_lr`` the step size of the rules that step; ``mix_every``: update the
    mixing weights every that many training steps; ``mix_on``: ``validation`` (default) or
    ``train`` batches; ``mix_rows``: the validation rows each update reads (every row of a
    smaller split; 0: ``batch_size``); ``smoothing``: the exponential moving average factor of
    the scores (the rules that step); ``race``: ``None`` to train every net to the end;
    ``batch_size``: used when the data come as tensors; ``record_every``: steps between two
    points of the score trajectory.
    """

    rule: str = schema.setting("metric", choices=RULES, help="how the mixing weights learn")
    # past 1000 every rule only jumps between the simplex's corners
    mix_lr: float = schema.setting(
        0.05, above=0.0, high=1000.0, help="the step size of the rules that step (not metric)"
    )
    mix_every: int = schema.setting(
        20, low=1, high=10_000_000, help="training steps between mixing-weight updates"
    )
    mix_on: str = schema.setting(
        "validation", choices=("validation", "train"), help="batches the mixing weights learn on"
    )
    mix_rows: int = schema.setting(
        1024, low=0, high=10_000_000,
        help="validation rows each update reads (all of a smaller split; 0: batch_size)",
    )  # fmt: skip
    smoothing: float = schema.setting(
        0.9, low=0.0, below=1.0,
        help="moving-average factor of the scores (not metric: its weights are the score)",
    )  # fmt: skip
    race: Race | None = field(default_factory=Race)
    batch_size: int = schema.setting(64, low=1, high=1_000_000, help="batch size")
    record_every: int = schema.setting(
        10, low=1, high=10_000_000, help="steps between two points of the score trajectory"
    )

    def __post_init__(self) -> None:
        schema.check_section("mixer", self)


#: frames of the mixing weights a run keeps for the report (:meth:`MixerResult.recording`),
#: and the most outputs whose weights it keeps one by one
RECORD_FRAMES = 48
RECORD_OUTPUTS = 16


# --------------------------------------------------------------------------- results


@dataclass
class NetResult:
    """What one mixer run says about one net.

    ``fitness``: with the ``metric`` rule the weight the net earned (``score``), ``exp(-z)`` of
    how many standard errors its validation metric at the end of the run (a retired net's as it
    left) is behind the best, renormalised over the nets; with the other rules ``round +
    score``, where ``round`` counts the race points the net survived (survivors of the whole run
    have ``len(race.points)``) and ``score`` is its smoothed mixing weight when it left (in [0,
    1]). A net that diverged has -1.
    """

    index: int
    fitness: float
    score: float
    round: int
    diverged: bool
    steps_trained: int
    retired_at: int | None
    n_parameters: int
    validation_metric: float | None
    trajectory: list[float]


@dataclass
class MixerResult:
    nets: list[NetResult]
    weights: torch.Tensor  # (k, m) final mixing weights; rows of retired nets are zero
    steps: int
    rule: str
    metric_name: str
    trajectory_steps: list[int]
    wall_seconds: float
    #: ``(len(trajectory_steps), k, m)`` float32: the mixing weights at each trajectory step
    #: (before the first update: uniform over the live nets)
    weight_trajectory: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0, 1))
    race_steps: list[int] = field(default_factory=list)

    def recording(self) -> dict[str, torch.Tensor]:
        """The run as the report draws it, small enough to keep for every generation:
        ``scores`` ``(len(score_steps), k)`` at every trajectory step, and ``weights``
        ``(len(frame_steps), k, m)`` at up to :data:`RECORD_FRAMES` of them, per output where
        there are at most :data:`RECORD_OUTPUTS` (else each net's mean over outputs, ``m = 1``);
        both float16."""
        steps = torch.tensor(self.trajectory_steps, dtype=torch.int32)
        k = len(self.nets)
        scores = torch.tensor([n.trajectory for n in self.nets], dtype=torch.float32)
        scores = scores.reshape(k, len(steps)).T
        count = min(len(steps), RECORD_FRAMES)
        pick = torch.linspace(0, len(steps) - 1, count).round().long().unique()
        weights = self.weight_trajectory[pick]
        if weights.shape[-1] > RECORD_OUTPUTS:
            weights = weights.mean(dim=-1, keepdim=True)
        return {
            "score_steps": steps,
            "scores": scores.to(torch.float16).contiguous(),
            "frame_steps": steps[pick].contiguous(),
            "weights": weights.to(torch.float16).contiguous(),
        }

    @property
    def fitness(self) -> list[float]:
        return [n.fitness for n in self.nets]

    def ranking(self) -> list[int]:
        """Net indices, best first."""
        return sorted(range(len(self.nets)), key=lambda i: -self.nets[i].fitness)


# --------------------------------------------------------------------------- optimizer


def adam(params: Iterable[Any], **kwargs: Any) -> torch.optim.Adam:
    """Adam as neuroevo uses it everywhere (the mixer, final training, benchmarks): the fused
    kernel where this torch has one for the parameters (CPU float32 since torch 2.4; measured
    1.35x faster mixer steps on 18 small MLPs), else the default implementation."""
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel here
        return torch.optim.Adam(params, **kwargs)


# --------------------------------------------------------------------------- data


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[Batch]:
    """Endless mini-batches of ``(x, y)``, reshuffled every epoch from ``generator``."""
    n = x.shape[0]
    if n == 0:
        raise NeuroevoError("no samples to draw batches from")
    size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):
            index = order[start : start + size]
            yield x[index], y[index]


def _tensor_pair(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 2 and all(torch.is_tensor(t) for t in data)


def _as_batches(
    data: Iterable[Batch] | Batch, batch_size: int, generator: torch.Generator
) -> Iterator[Batch]:
    if _tensor_pair(data):
        return batches(data[0], data[1], batch_size, generator)
    return iter(data)


def _fixed_rows(data: Batch, rows: int, generator: torch.Generator) -> Batch:
    """The rows the ``metric`` rule scores on at every update, so that metrics taken at
    different steps compare: all of ``data``, or ``rows`` of it drawn once from
    ``generator`` (in their order in ``data``)."""
    x, y = data
    if x.shape[0] == 0:
        raise NeuroevoError("no samples to draw batches from")
    if x.shape[0] <= rows:
        return x, y
    index = torch.randperm(x.shape[0], generator=generator)[:rows].sort().values
    return x[index], y[index]


# --------------------------------------------------------------------------- populations


class Population(Protocol):
    """The nets of one mixer run, as the mixer drives them: whatever holds them (one module per
    net, or nets stacked into a few tensors) answers these four calls. Net ``i`` is the
    ``i``-th net given; ``live`` lists the nets still training, ascending."""

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, live: list[int], keep_outputs: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One training step of every live net on ``(x, y)``, each on its own loss. Returns
        the losses (one per live net; a net whose loss is not finite takes no step) and, with
        ``keep_outputs``, the raw outputs ``(len(live), B, m)``, detached."""
        ...

    def predict(self, x: torch.Tensor, live: list[int]) -> torch.Tensor:
        """Raw outputs of the live nets ``(len(live), B, m)``, without gradients."""
        ...

    def retire(self, index: list[int]) -> None:
        """These nets leave: no more forward or backward passes."""
        ...

    def n_parameters(self) -> list[int]: ...


class Modules:
    """The reference population: one ``torch.nn.Module`` per net, one Adam with a parameter
    group per net, trained in a loop over the nets."""

    def __init__(self, nets: Sequence[nn.Module], lrs: Sequence[float], kind: str) -> None:
        self.nets = list(nets)
        self.task = kinds.get(kind)
        self.optimizer = adam(
            [{"params": list(net.parameters()), "lr": float(lr)} for net, lr in zip(nets, lrs)]
        )

    def train_step(self, x, y, live, keep_outputs):
        self.optimizer.zero_grad(set_to_none=True)
        total = None
        losses, outputs = [], []
        for i in live:
            out = self.nets[i](x)
            loss = self.task.loss(out, y)
            losses.append(loss.detach())
            if keep_outputs:
                outputs.append(out.detach())
            if not torch.isfinite(loss):
                continue
            total = loss if total is None else total + loss
        if total is not None:
            total.backward()  # the sum's gradient for each net is that net's own gradient
            self.optimizer.step()
        return torch.stack(losses), torch.stack(outputs) if keep_outputs else None

    @torch.no_grad()
    def predict(self, x, live):
        return torch.stack([self.nets[i](x) for i in live])

    def retire(self, index):
        pass  # a net no longer in ``live`` gets no gradient, so Adam skips it

    def n_parameters(self):
        return [sum(p.numel() for p in net.parameters()) for net in self.nets]

    def states(self) -> list[dict[str, torch.Tensor]]:
        """Every net's weights (the engines hand them back)."""
        return [net.state_dict() for net in self.nets]


# --------------------------------------------------------------------------- the run


def run(
    nets: Sequence[nn.Module], lrs: Sequence[float], *, kind: str, **settings: Any
) -> MixerResult:
    """Train ``nets`` (modules, each at its learning rate in ``lrs``) jointly and return their
    fitness; ``settings`` as :func:`run_population` takes them. The nets are trained in
    place."""
    if len(lrs) != len(nets):
        raise NeuroevoError(f"{len(nets)} nets but {len(lrs)} learning rates")
    if not nets:
        raise NeuroevoError("the mixer needs at least one net")
    return run_population(Modules(nets, lrs, kind), len(nets), kind=kind, **settings)


def run_population(
    population: Population,
    k: int,
    *,
    kind: str,
    train: Iterable[Batch] | Batch,
    valid: Iterable[Batch] | Batch,
    steps: int,
    seed: int = 0,
    config: MixerConfig | None = None,
    evaluate_on: Batch | None = None,
    on_step: Callable[[int, int], None] | None = None,
    costs: Sequence[Sequence[float]] | None = None,
) -> MixerResult:
    """Train the ``k`` nets of ``population`` jointly for ``steps`` steps and return their
    fitness (the engines' entry point; :func:`run` for plain modules).

    ``train`` and ``valid`` are iterables of ``(x, y)`` batches, or ``(X, Y)`` tensor pairs
    that are batched here with generators seeded from ``seed``. ``evaluate_on`` is the set each
    net's validation metric is measured on at the end (forward passes only); it defaults to
    ``valid`` when that is a tensor pair. ``on_step(step, live)`` is called after every step
    (progress bars). ``costs``: each net's costs (parameters, ...; fewer is better), where a
    run has several objectives: the race then never retires a net that no live net dominates
    on (its score, its costs).
    """
    config = config or MixerConfig()
    task = kinds.get(kind)
    if k == 0:
        raise NeuroevoError("the mixer needs at least one net")
    schema.check("mixer.steps", steps, STEPS)  # a caller's own number (a recipe's is checked)
    if evaluate_on is None and _tensor_pair(valid):
        evaluate_on = valid
    train_it = _as_batches(train, config.batch_size, torch.Generator().manual_seed(seed))
    rows = config.mix_rows or config.batch_size
    valid_generator = torch.Generator().manual_seed(seed + 1)
    if config.rule == "metric" and config.mix_on == "validation" and _tensor_pair(valid):
        valid_it = itertools.repeat(_fixed_rows(valid, rows, valid_generator))
    else:
        valid_it = _as_batches(valid, rows, valid_generator)

    started = time.perf_counter()
    state = _RaceState(k, config, costs, steps)
    race_at = _race_steps(config.race, steps)
    _run_steps(population, state, task, config, train_it, valid_it, steps, race_at, on_step)
    metrics, errors = [None] * k, [None] * k
    if evaluate_on is not None:
        metrics, errors = _evaluate(population, k, task, evaluate_on)
        row = 1.0 / max(1, evaluate_on[1].shape[0])  # no error below one row's worth
        errors = [None if e is None else max(e, row) for e in errors]
    results = state.results(
        n_parameters=population.n_parameters(),
        metrics=metrics,
        n_rounds=len(race_at),
        errors=errors,
    )
    return MixerResult(
        nets=results,
        weights=state.weights.clone(),
        steps=steps,
        rule=config.rule,
        metric_name=task.metric_name,
        trajectory_steps=state.trajectory_steps,
        wall_seconds=time.perf_counter() - started,
        weight_trajectory=state.weight_trajectory(),
        race_steps=sorted(race_at),
    )


def _run_steps(
    population: Population,
    state: _RaceState,
    task: kinds.Kind,
    config: MixerConfig,
    train_it: Iterator[Batch],
    valid_it: Iterator[Batch],
    steps: int,
    race_at: dict[int, int],
    on_step: Callable[[int, int], None] | None,
) -> None:
    """The mixer run's ``steps`` steps: train the live nets, mix every ``mix_every`` steps
    (nets whose outputs are not finite diverge), record, and hold the race's rounds."""
    on_train = config.mix_on == "train"
    # the metric rule also scores the nets just before each race point and at the end: its
    # weights are the scores, and a race or a fitness read from older rows would lag
    scored = set(race_at) | {steps} if config.rule == "metric" else set()
    least = 1 if config.rule == "metric" else 2  # a mixture needs two; a score, one
    for step in range(1, steps + 1):
        x, y = next(train_it)
        live, outputs = state.live(), None
        if live:  # (none: every net diverged, and the run only counts its steps)
            live, outputs = _train_step(population, state, x, y, on_train, step)

        if (step % config.mix_every == 0 or step in scored) and len(live) >= least:
            if on_train:
                yv, out = y, outputs
            else:
                xv, yv = next(valid_it)
                out = population.predict(xv, live)
            p = task.mixable(out)
            if not bool(torch.isfinite(p).all()):
                finite = torch.isfinite(p).flatten(1).all(dim=1)
                keep = finite.tolist()
                for i, ok in zip(live, keep):
                    if not ok:
                        state.diverge(i, step)
                population.retire([i for i, ok in zip(live, keep) if not ok])
                live, p, out = state.live(), p[finite], out[finite]
            if len(live) >= least:
                if config.rule == "metric":
                    state.by_metric(live, out, yv, task, step)
                else:
                    state.update_weights(live, p, yv, task)
        if step % config.record_every == 0 or step == steps:
            state.record(step)
        if step in race_at and state.live():
            before = set(state.live())
            state.race_round(race_at[step], step)
            population.retire(sorted(before - set(state.live())))
        if on_step is not None:
            on_step(step, len(state.live()))


def _train_step(population, state, x, y, on_train: bool, step: int):
    """One training step of the live nets; those whose loss is not finite diverge. Returns
    the nets still live and (with ``on_train``) their outputs."""
    live = state.live()
    losses, outputs = population.train_step(x, y, live, on_train)
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        keep = finite.tolist()
        for i, ok in zip(live, keep):
            if not ok:
                state.diverge(i, step)
        if outputs is not None:
            outputs = outputs[finite]
        population.retire([i for i, ok in zip(live, keep) if not ok])
        live = state.live()
    for i in live:
        state.steps_trained[i] += 1
    return live, outputs


def _race_steps(race: Race | None, steps: int) -> dict[int, int]:
    """Step -> race round index (0-based)."""
    if race is None:
        return {}
    at: dict[int, int] = {}
    for point in race.points:
        step = max(1, min(steps - 1, round(point * steps)))
        if step not in at:
            at[step] = len(at)
    return at


def _evaluate(
    population: Population, k: int, task: kinds.Kind, data: Batch
) -> tuple[list[float | None], list[float | None]]:
    """Every net's metric on ``data`` and its standard error (retired nets included: they are
    measured as they left)."""
    x, y = data
    out = population.predict(x, list(range(k)))
    return [task.score(out[i], y) for i in range(k)], [
        task.standard_error(out[i], y) for i in range(k)
    ]


def _behind(values: torch.Tensor, error: float) -> torch.Tensor:
    """``exp(-z)`` renormalised, ``z`` how many ``error``s each value is below the largest."""
    weight = torch.exp(-(values.max() - values) / error)
    return weight / weight.sum()


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """The indices of the points no other point dominates (at least as large everywhere,
    larger somewhere: every value maximised)."""

    def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p) for j, q in enumerate(points) if j != i)
    ]


class _RaceState:
    """Mixing weights, smoothed scores, who is live, and when each net left."""

    def __init__(
        self,
        k: int,
        config: MixerConfig,
        costs: Sequence[Sequence[float]] | None = None,
        steps: int = 1,
    ) -> None:
        self.k = k
        self.config = config
        self.costs = costs  # each net's costs (fewer is better), where the race keeps a front
        self.steps = steps  # the run's length, which the metric rule's trend looks ahead to
        # the metric rule: each net's (step, metric) at every update, the race's look-ahead
        # scores, the standard error used
        self.history: list[list[tuple[int, float]]] = [[] for _ in range(k)]
        self.ahead = torch.zeros(k, dtype=torch.float64)
        self.error = 1.0
        self.weights: torch.Tensor = torch.empty(0)  # (k, m), sized at the first update
        self.score = torch.full((k,), 1.0 / k, dtype=torch.float64)
        self.alive = [True] * k
        self.round = [0] * k
        self.final_score: list[float | None] = [None] * k
        self.retired_at: list[int | None] = [None] * k
        self.diverged = [False] * k
        self.steps_trained = [0] * k
        self.trajectory: list[list[float]] = [[] for _ in range(k)]
        self.trajectory_steps: list[int] = []
        self._weight_frames: list[torch.Tensor | None] = []

    def live(self) -> list[int]:
        return [i for i in range(self.k) if self.alive[i]]

    def update_weights(self, index: list[int], p: torch.Tensor, y: torch.Tensor, task) -> None:
        """One update of the mixing weights of nets ``index`` from their mixable outputs ``p``
        ``(len(index), B, m)`` against ``y`` (on the CPU, in float64, whatever the nets'
        device)."""
        p = p.to("cpu", torch.float64)
        y = y.to("cpu")
        if self.weights.numel() == 0:
            m = p.shape[-1]
            self.weights = torch.zeros((self.k, m), dtype=torch.float64)
            self.weights[self.live()] = 1.0 / len(self.live())
        every = len(index) == self.k  # no net has left yet: no indexing
        rows = None if every else torch.tensor(index)
        w = self.weights if every else self.weights.index_select(0, rows)
        w = w / w.sum(dim=0, keepdim=True)  # in case a net just left
        mixed = (p * w.unsqueeze(1)).sum(dim=0)
        target = y.to(torch.float64) if y.is_floating_point() else y
        if self.config.rule in OWN_LOSS_RULES:
            grad = task.own_losses(p, target)
        else:
            grad = (p * task.mixed_grad(mixed, target).unsqueeze(0)).sum(dim=1)
        new = UPDATE_RULES[self.config.rule](w, grad, self.config.mix_lr)
        beta = self.config.smoothing
        if every:
            self.weights = new
            self.score = beta * self.score + (1 - beta) * new.mean(dim=1)
        else:
            self.weights.index_copy_(0, rows, new)
            old = self.score.index_select(0, rows)
            self.score.index_copy_(0, rows, beta * old + (1 - beta) * new.mean(dim=1))
        self._normalise_scores()

    def by_metric(
        self, index: list[int], out: torch.Tensor, y: torch.Tensor, task, step: int
    ) -> None:
        """The ``metric`` rule's update from nets ``index``'s raw outputs ``out``
        ``(len(index), B, m)`` on rows whose targets are ``y``: each net's metric on the rows
        and its weight ``exp(-z)``, ``z`` how many standard errors (the leader's metric's on
        these rows, at least one row's worth) it is behind the leader, renormalised over the
        nets, the same for every output; the score is that weight (no smoothing). The race
        looks ahead instead: each net's expected metric at the end of the run, its metric plus
        :data:`TREND_SHARE` of its trend (the least-squares slope of its metric in log steps
        over the second half of the steps so far, where it rises) times the log steps left,
        scored the same way. Nets equal on the rows weigh the same."""
        out, y = out.to("cpu"), y.to("cpu")
        rows = torch.stack([task.row_metric(o, y) for o in out]).to(torch.float64)  # (n, B)
        metric = rows.mean(dim=1)
        ahead = []
        for j, i in enumerate(index):
            value = metric[j].item()
            self.history[i].append((step, value))
            ahead.append(value + TREND_SHARE * self._slope(i, step) * self._ahead(step))
        n = rows.shape[1]
        leader = int(metric.argmax())
        spread = rows[leader].std().item() if n > 1 else 0.0
        self.error = max(spread / math.sqrt(n), 1.0 / n)
        weight = _behind(metric, self.error)
        if self.weights.numel() == 0:
            self.weights = torch.zeros((self.k, out.shape[-1]), dtype=torch.float64)
        at = torch.tensor(index)
        self.weights[at] = weight.unsqueeze(1).expand(-1, self.weights.shape[1])
        self.score.index_copy_(0, at, weight)
        self._normalise_scores()
        self.ahead.index_copy_(0, at, _behind(torch.tensor(ahead, dtype=torch.float64), self.error))

    @property
    def shown(self) -> list[float | None]:
        """Each net's latest metric (a retired net's as it left; None before any update)."""
        return [h[-1][1] if h else None for h in self.history]

    def _ahead(self, step: int) -> float:
        """Log steps from ``step`` to the end of the run."""
        return math.log(max(self.steps, step) / step)

    def _slope(self, i: int, step: int) -> float:
        """Net ``i``'s metric's least-squares slope in log steps over the updates in the second
        half of the steps so far; 0 where it falls or with fewer than :data:`TREND_POINTS`."""
        points = [(math.log(s), v) for s, v in self.history[i] if 2 * s >= step]
        if len(points) < TREND_POINTS:
            return 0.0
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(v for _, v in points) / len(points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        if spread == 0:
            return 0.0
        slope = sum((x - mean_x) * (v - mean_y) for x, v in points) / spread
        return max(0.0, slope)

    def _normalise_scores(self) -> None:
        live = self.live()
        if len(live) == self.k:
            total = self.score.sum()
            if total > 0:
                self.score /= total
            return
        total = self.score[live].sum()
        if live and total > 0:
            self.score[live] /= total

    def _leave(self, i: int, step: int) -> None:
        self.alive[i] = False
        self.retired_at[i] = step
        if self.weights.numel():
            self.weights[i] = 0.0
            live = self.live()
            if live:
                column = self.weights[live].sum(dim=0, keepdim=True)
                uniform = torch.full_like(self.weights[live], 1.0 / len(live))
                self.weights[live] = torch.where(
                    column > 0, self.weights[live] / column.clamp_min(1e-300), uniform
                )
        self.score[i] = 0.0
        self._normalise_scores()

    def diverge(self, i: int, step: int) -> None:
        self.diverged[i] = True
        self.final_score[i] = 0.0
        self._leave(i, step)

    def race_round(self, round_index: int, step: int) -> None:
        """The nets behind leave: ranked by score (the metric rule: by expected metric)."""
        race = self.config.race
        live = self.live()
        score = self.ahead if self.config.rule == "metric" else self.score
        ranked = sorted(live, key=lambda i: (-score[i].item(), i))
        if race.rule == "keep-fraction":
            n_keep = math.ceil(race.keep * len(live))
        else:
            leader = score[ranked[0]].item()
            n_keep = sum(1 for i in ranked if score[i].item() >= race.keep * leader)
        n_keep = min(len(live), max(n_keep, race.min_survivors))
        kept = set(ranked[:n_keep])
        if self.costs is not None:  # and every net no live net dominates
            points = [(score[i].item(), *(-c for c in self.costs[i])) for i in live]
            kept.update(live[j] for j in non_dominated(points))
        leaving = [i for i in ranked if i not in kept]
        for i in live:
            self.round[i] = round_index + (1 if i in kept else 0)
        for i in leaving:
            self.final_score[i] = self.score[i].item()
        for i in leaving:
            self._leave(i, step)

    def _earned(self, metrics=None, errors=None) -> list[float]:
        """The metric rule's fitness: the weight each net earned, ``exp(-z)`` of how many
        standard errors its validation metric (a retired net's as it left) is behind the best,
        renormalised over every net that did not diverge. The metric is the end's, on the whole
        validation split, where the run measured one (then fitness ranks as that metric does),
        else the last one the updates showed; the standard error is the leader's (at least one
        row's worth). 0 for a net with no metric."""
        measured = metrics is not None and any(m is not None for m in metrics)
        values = list(metrics) if measured else self.shown
        error = self.error
        if measured:
            leader = max((i for i, v in enumerate(values) if v is not None),
                         key=lambda i: values[i])  # fmt: skip
            if errors is not None and errors[leader] is not None:
                error = errors[leader]
        scored = [i for i, v in enumerate(values) if v is not None and not self.diverged[i]]
        earned = [0.0] * self.k
        if scored:
            weight = _behind(torch.tensor([values[i] for i in scored], dtype=torch.float64),
                             error)  # fmt: skip
            for i, w in zip(scored, weight.tolist()):
                earned[i] = w
        return earned

    def record(self, step: int) -> None:
        self.trajectory_steps.append(step)
        for i in range(self.k):
            self.trajectory[i].append(self.score[i].item())
        frame = self.weights.to(torch.float32) if self.weights.numel() else None
        self._weight_frames.append(frame)

    def weight_trajectory(self) -> torch.Tensor:
        """The recorded mixing weights, ``(frames, k, m)``; a frame before the first update
        holds the uniform weights it stands for."""
        m = self.weights.shape[1] if self.weights.numel() else 1
        uniform = torch.full((self.k, m), 1.0 / self.k)
        frames = [uniform if f is None else f for f in self._weight_frames]
        return torch.stack(frames) if frames else torch.zeros(0, self.k, m)

    def results(self, *, n_parameters, metrics, n_rounds: int, errors=None) -> list[NetResult]:
        """Each net's result; ``metrics`` (and ``errors``, their standard errors) measured at
        the end on the validation split, where the run had one."""
        out = []
        earned = self._earned(metrics, errors) if self.config.rule == "metric" else None
        for i in range(self.k):
            if self.alive[i]:
                self.round[i] = n_rounds
                self.final_score[i] = self.score[i].item()
            score = self.final_score[i] if earned is None else earned[i]
            if self.diverged[i]:
                fitness = -1.0
            else:
                fitness = score if earned is not None else self.round[i] + score
            out.append(
                NetResult(
                    index=i,
                    fitness=fitness,
                    score=score,
                    round=self.round[i],
                    diverged=self.diverged[i],
                    steps_trained=self.steps_trained[i],
                    retired_at=self.retired_at[i],
                    n_parameters=n_parameters[i],
                    validation_metric=metrics[i],
                    trajectory=self.trajectory[i],
                )
            )
        return out
