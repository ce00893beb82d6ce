"""Nets trained alone, together: the end of a run's training as one population.

The end of a run trains a few nets each *alone* (its own loss, its own Adam, its own batches,
stopped by its own validation): the final training of the kept nets, the refit, the bagged
copies (folds x nets). :func:`train` takes them as :class:`Job` objects and trains them

- ``stacked`` (the batched engine): as one :class:`neuroevo.training.stack.Stack`, a step of
  every net at once, each net with its own batch where their rows or seeds differ; a net leaves
  the stack when its steps are done, its patience has run out or its loss stopped being
  finite, and the others go on without it;
- else one after another with :func:`neuroevo.training.alone.train_alone`, the reference.

Both give each net the same batches (its rows, reshuffled every epoch by a generator of its
own seed), the same cosine schedule and the same validation checks, so they agree up to float
rounding (a test checks it in float64). Even a single net trains faster stacked: the stack's
hand-written backward pass and fused Adam skip autograd's and the optimizer's per-step work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import torch

from neuroevo.training import kinds, mixer, network, stack
from neuroevo.training.alone import AloneResult, Best, Deadline, Measure, train_alone
from neuroevo.training.network import State

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Job:
    """One net to train alone: its genome (learning rate included), the weights it starts
    from (every tensor of its net), the rows of the data it trains on and the seed of the
    generator that shuffles them, its number of steps, and the rows its validation metric is
    measured on (None: none)."""

    genome: nx.DiGraph
    state: State
    rows: torch.Tensor
    seed: int
    steps: int
    valid: torch.Tensor | None = None


def cosine(step: int, length: int) -> float:
    """The learning rate's factor at ``step`` (0 first) of a cosine decay to zero at
    ``length``, as :func:`neuroevo.training.alone.train_alone` schedules it."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, length) / length))


def train(
    jobs: Sequence[Job],
    *,
    kind: str,
    data: Batch,
    batch_size: int,
    schedule_steps: int,
    checks: int = 0,
    patience: int = 0,
    stacked: bool = True,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, int], None] | None = None,
    deadline: Deadline | None = None,
) -> list[AloneResult]:
    """Train every job's net alone on its rows of ``data`` (``(x, y)``, all the rows any job
    reads), each for its ``steps`` with Adam at its learning rate on a cosine decay to zero at
    ``schedule_steps`` (a job with fewer steps stops part way along it). ``checks``,
    ``patience``: as :func:`neuroevo.training.alone.train_alone` takes them, for each net
    (the weights with the best validation metric kept). Past ``deadline`` every net still
    training stops as if that step were its last (checked, its best weights kept).
    ``on_step(step, steps)`` after every step, ``steps`` the longest job's. The results are in
    the jobs' order, their weights on ``device``."""
    device = torch.device(device)
    x, y = data[0].to(device), data[1].to(device)
    if not stacked:
        return [
            _alone(job, kind, x, y, batch_size, schedule_steps, checks, patience, device, on_step,
                   deadline)
            for job in jobs
        ]  # fmt: skip
    # nets whose batches are of different sizes (few rows) cannot share a step
    by_size: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        by_size.setdefault(min(batch_size, len(job.rows)), []).append(i)
    results: list[AloneResult | None] = [None] * len(jobs)
    for index in by_size.values():
        part = _Stacked([jobs[i] for i in index], kind, x, y, batch_size, device)
        ran = part.run(schedule_steps, checks, patience, on_step, deadline)
        for i, result in zip(index, ran):
            results[i] = result
    return results  # type: ignore[return-value]


def _alone(
    job, kind, x, y, batch_size, schedule_steps, checks, patience, device, on_step, deadline
):
    net = _module(job.genome, job.state, device)
    rows = job.rows.to(device)
    return train_alone(
        net,
        job.genome.graph["lr"],
        kind=kind,
        train=mixer.batches(x[rows], y[rows], batch_size, torch.Generator().manual_seed(job.seed)),
        steps=job.steps,
        schedule="cosine",
        schedule_steps=schedule_steps,
        valid=None if job.valid is None else (x[job.valid], y[job.valid]),
        checks=checks,
        patience=patience,
        on_step=on_step,
        deadline=deadline,
    )


def _module(genome: nx.DiGraph, state: State, device: torch.device) -> network.GenomeNet:
    """``genome``'s net holding ``state`` (every tensor of it), in the state's dtype
    (float32 as built)."""
    net = network.build(genome, generator=torch.Generator())
    net = net.to(device=device, dtype=next(iter(state.values())).dtype)
    net.load_state_dict(state)
    return net


class _Stacked:
    """Jobs whose batches are of one size, stacked, with each net's batch stream, its best
    weights and its record."""

    def __init__(self, jobs, kind, x, y, batch_size, device) -> None:
        self.jobs, self.x, self.y, self.device = list(jobs), x, y, device
        self.task = kinds.get(kind)
        # each net's validation rows on the device, and whether they are every net's
        self.valid = [None if j.valid is None else j.valid.to(device) for j in jobs]
        given = [v for v in self.valid if v is not None]
        self.one_valid = all(torch.equal(v, given[0]) for v in given[1:]) if given else True
        self.stack = stack.Stack(
            [j.genome for j in jobs],
            [j.state for j in jobs],
            kind=kind,
            batch=batch_size,
            device=device,
        )
        # one stream of row indices per distinct (rows, seed): nets that share one draw it once
        # per step, as each of them would alone
        self.stream_of: list[int] = []
        self.streams: list = []
        keys: list[tuple[int, torch.Tensor]] = []
        for job in jobs:
            for s, (seed, rows) in enumerate(keys):
                if seed == job.seed and torch.equal(rows, job.rows):
                    self.stream_of.append(s)
                    break
            else:
                keys.append((job.seed, job.rows))
                self.stream_of.append(len(self.streams))
                rows = job.rows.to(device)
                gen = torch.Generator().manual_seed(job.seed)
                self.streams.append(mixer.batches(rows, rows, batch_size, gen))

    def run(self, schedule_steps, checks, patience, on_step, deadline) -> list[AloneResult]:
        started = time.perf_counter()
        jobs, stack_ = self.jobs, self.stack
        n = len(jobs)
        best = [Best(None, None) for _ in jobs]
        if checks:
            measured = self._measure(list(range(n)))
            best = [Best.start(stack_.state(i), measured[i]) for i in range(n)]
        every = [max(1, job.steps // checks) if checks else 0 for job in jobs]
        trained, diverged, cut = [0] * n, [None] * n, [False] * n
        last = max((job.steps for job in jobs), default=0)
        stack_.retire([i for i in range(n) if jobs[i].steps == 0])
        for step in range(1, last + 1):
            live = stack_.live
            if not live:
                break
            losses = self._step(live, cosine(step - 1, schedule_steps))
            finite = torch.isfinite(losses).tolist()
            late = deadline is not None and step < last and deadline.passed()
            leaving = []
            for i, ok in zip(live, finite):
                if ok:
                    trained[i] = step
                    cut[i] = late and step < jobs[i].steps
                else:
                    diverged[i] = step
                    leaving.append(i)
            checking = [
                i
                for i, ok in zip(live, finite)
                if ok and checks and (step % every[i] == 0 or step == jobs[i].steps or cut[i])
            ]
            if checking:
                measured = self._measure(checking)
                for i in checking:
                    best[i].offer(measured[i], lambda i=i: stack_.state(i), step)
            if on_step is not None:
                on_step(step, last)
            leaving += [
                i
                for i, ok in zip(live, finite)
                if ok
                and (step == jobs[i].steps or cut[i] or (patience and best[i].since >= patience))
            ]
            stack_.retire(leaving)
        if not checks:
            measured = self._measure(list(range(n)))
            best = [Best(stack_.state(i), measured[i][0], trained[i]) for i in range(n)]
        seconds = time.perf_counter() - started
        return [
            AloneResult(
                state=best[i].state,
                validation_metric=best[i].metric,
                steps_trained=trained[i],
                diverged_at=diverged[i],
                seconds=seconds,
                best_step=best[i].step,
                settled_step=best[i].settled_step,
                out_of_time=cut[i],
            )
            for i in range(n)
        ]

    def _step(self, live: list[int], scale: float) -> torch.Tensor:
        """One step of the ``live`` nets, each on the next batch of its stream."""
        drawn: dict[int, torch.Tensor] = {}
        for i in live:
            s = self.stream_of[i]
            if s not in drawn:
                drawn[s] = next(self.streams[s])[0]
        if len(drawn) == 1:
            (rows,) = drawn.values()
            x, y, each = self.x[rows], self.y[rows], False
        else:
            rows = torch.stack([drawn[self.stream_of[i]] for i in live])
            x, y, each = self.x[rows], self.y[rows], True
        losses, _ = self.stack.train_step(x, y, live, False, scale=scale, each=each)
        return losses

    def _measure(self, nets: list[int]) -> dict[int, Measure]:
        """The validation metric of each of ``nets``, and its standard error (every live net
        is predicted; a net that left the stack is read from its last weights)."""
        out: dict[int, Measure] = {}
        wanted = [i for i in nets if self.valid[i] is not None]
        out.update({i: (None, None) for i in nets if self.valid[i] is None})
        if not wanted:
            return out
        live = self.stack.live
        inside = [i for i in wanted if i in live]
        if inside:
            if self.one_valid:
                rows = self.valid[inside[0]]
            else:  # every live net on the union of their rows, each scored on its own
                rows = torch.unique(torch.cat([self.valid[i] for i in inside]))
            predicted, y = self.stack.predict(self.x[rows], live), self.y[rows]
            for i in inside:
                mine = slice(None) if self.one_valid else torch.searchsorted(rows, self.valid[i])
                out[i] = self._scored(predicted[live.index(i)][mine], y[mine])
        for i in wanted:
            if i not in live:
                net = _module(self.jobs[i].genome, self.stack.state(i), self.device)
                with torch.no_grad():
                    valid = self.valid[i]
                    out[i] = self._scored(net(self.x[valid]), self.y[valid])
        return out

    def _scored(self, out: torch.Tensor, y: torch.Tensor) -> Measure:
        return self.task.score(out, y), self.task.standard_error(out, y)
