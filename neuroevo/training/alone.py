"""Training one net alone: the reference the mixer is measured against, and the final training.

One loop, used by the run's final training, the benchmarks and the tests: Adam as the mixer uses
it (:func:`neuroevo.training.mixer.adam`), optionally with a cosine decay of the learning rate
to zero, optionally measuring the validation metric a number of times and keeping the best
weights. A net trained here on the same batches as in a mixer run ends with the same weights,
bit for bit (the mixer never trains a net; a test checks it).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from neuroevo.training import kinds, mixer
from neuroevo.training.network import State

log = logging.getLogger("neuroevo")

Batch = tuple[torch.Tensor, torch.Tensor]
SCHEDULES = ("constant", "cosine")


@dataclass
class AloneResult:
    """What training one net alone gave: the weights kept, their validation metric (None
    without validation data, or where it is not finite), the steps taken, the step whose loss
    was not finite (None: none), the seconds it took, the step the kept weights are from
    (0: the start), the last checked step whose metric was within one standard error of
    the best (:attr:`Best.settled_step`), and whether its deadline stopped it."""

    state: State
    validation_metric: float | None
    steps_trained: int
    diverged_at: int | None
    seconds: float
    best_step: int = 0
    settled_step: int = 0
    out_of_time: bool = False  # stopped by its deadline before its steps were done


Measure = tuple[float | None, float | None]  # a validation metric and its standard error


@dataclass(frozen=True)
class Deadline:
    """The time by which a training ends: ``at`` seconds on the clock ``now`` (a run's clock,
    :class:`neuroevo.search.stopping.Clock`, or a test's own)."""

    at: float
    now: Callable[[], float] = time.perf_counter

    def remaining(self) -> float:
        return self.at - self.now()

    def passed(self) -> bool:
        return self.now() >= self.at


@dataclass
class Best:
    """The weights with the best validation metric so far, their step, the checks since, and
    every check's (step, metric, standard error)."""

    state: State | None
    metric: float | None
    step: int = 0
    since: int = 0
    checks: list[tuple[int, float, float | None]] = field(default_factory=list)

    @classmethod
    def start(cls, state: State, measured: Measure) -> Best:
        """The weights a training starts from, checked at step 0."""
        value, error = measured
        return cls(state, value, checks=[] if value is None else [(0, value, error)])

    def offer(self, measured: Measure, snapshot: Callable[[], State], step: int) -> None:
        """Keep ``snapshot()`` where the metric of ``measured`` beats the best (ties: the
        earliest is kept)."""
        value, error = measured
        if value is not None:
            self.checks.append((step, value, error))
        if value is not None and (self.metric is None or value > self.metric):
            self.metric, self.state, self.step = value, snapshot(), step
            self.since = 0
        else:
            self.since += 1

    @property
    def settled_step(self) -> int:
        """The last checked step whose metric was within one standard error of the best (the
        best's own step where its error is unknown): where a validation curve is flat within
        its noise, the most training that was no worse."""
        at_best = next((e for s, v, e in self.checks if s == self.step), None)
        if self.metric is None or at_best is None:
            return self.step
        return max(s for s, v, _ in self.checks if v >= self.metric - at_best)


def _optimizer(
    net: nn.Module, lr: float, schedule: str, length: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR | None]:
    """Adam at ``lr``, and with ``schedule = "cosine"`` its decay to zero at step ``length``."""
    optimizer = mixer.adam(net.parameters(), lr=lr)
    decay = None
    if schedule == "cosine":
        decay = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, length) / length))
        )
    return optimizer, decay


def train_alone(
    net: nn.Module,
    lr: float,
    *,
    kind: str,
    train: Iterable[Batch],
    steps: int,
    schedule: str = "constant",
    valid: Batch | None = None,
    checks: int = 0,
    on_step: Callable[[int, int], None] | None = None,
    schedule_steps: int | None = None,
    patience: int = 0,
    deadline: Deadline | None = None,
) -> AloneResult:
    """Train ``net`` in place for ``steps`` steps on batches from ``train``.

    ``schedule``: ``constant`` or ``cosine`` (to zero at ``schedule_steps``, default
    ``steps``: a larger value stops training part way along the same schedule). With
    ``checks`` > 0 the validation metric on ``valid`` is measured that many times (and at the
    start), and the weights with the best one are kept and loaded back (ties: the earliest);
    otherwise the last weights are kept and measured once. With ``patience`` > 0 (and checks)
    training stops after that many checks in a row without a better metric. A loss that is
    not finite stops training (the best weights so far are kept). Past ``deadline`` (read
    after every step) training stops as if that step were its last: checked, and the best
    weights kept. ``on_step(step, steps)`` is called after every step (progress bars).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    task = kinds.get(kind)
    started = time.perf_counter()
    best = Best.start(_snapshot(net), _measure(net, task, valid)) if checks else Best(None, None)
    batches = iter(train)
    trained, diverged_at, out_of_time = 0, None, False
    if steps:
        optimizer, decay = _optimizer(net, lr, schedule, schedule_steps or steps)
        check_every = max(1, steps // checks) if checks else 0
        for step in range(1, steps + 1):
            if not _step(net, task, optimizer, decay, next(batches)):
                diverged_at = step
                log.warning("training alone diverged at step %d; keeping the best weights", step)
                break
            trained = step
            out_of_time = deadline is not None and step < steps and deadline.passed()
            if checks and (step % check_every == 0 or step == steps or out_of_time):
                best.offer(_measure(net, task, valid), lambda: _snapshot(net), step)
            if on_step is not None:
                on_step(step, steps)
            if out_of_time or (patience and best.since >= patience):
                break
    if checks:
        net.load_state_dict(best.state)
    else:
        best = Best(_snapshot(net), _measure(net, task, valid)[0], trained)
    return AloneResult(
        state=best.state,
        validation_metric=best.metric,
        steps_trained=trained,
        diverged_at=diverged_at,
        seconds=time.perf_counter() - started,
        best_step=best.step,
        settled_step=best.settled_step,
        out_of_time=out_of_time,
    )


def _snapshot(net: nn.Module) -> State:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@torch.no_grad()
def _measure(net: nn.Module, task: kinds.Kind, valid: Batch | None) -> Measure:
    if valid is None:
        return None, None
    out = net(valid[0])
    return task.score(out, valid[1]), task.standard_error(out, valid[1])


def _step(
    net: nn.Module,
    task: kinds.Kind,
    optimizer: torch.optim.Optimizer,
    decay: torch.optim.lr_scheduler.LambdaLR | None,
    batch: Batch,
) -> bool:
    """One step of ``optimizer`` (and ``decay``) on ``batch``; False, and no step, where the
    loss is not finite."""
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    loss = task.loss(net(x), y)
    if not torch.isfinite(loss):
        return False
    loss.backward()
    optimizer.step()
    if decay is not None:
        decay.step()
    return True
