"""Nets trained alone, together (the end of a run in the engine): the stack trains every job
as the reference loop (``train_alone``) does, each on its own rows, with its own schedule,
checks, patience and divergence."""

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine import assert_states_close, data
from test_spatial import family, starting

from neuroevo.genome import graph as G
from neuroevo.genome.space import SearchSpace
from neuroevo.training import cohort, kinds
from neuroevo.training.alone import Best, Deadline

DENSE = SearchSpace(width_min=2, width_max=24, layers_min=0, layers_max=3, lr_min=1e-3,
                    lr_max=3e-2)  # fmt: skip


def jobs_of(genomes, states, n, *, folds, steps, seed):
    """One job per net: with ``folds``, net ``i`` trains on every row but fold ``i % folds``
    (its own seed) and is measured on that fold, as a bagged refit's copies; else all train
    on the first 70% of the rows with one seed and are measured on the rest."""
    rng = random.Random(seed)
    out = []
    for i, (genome, state) in enumerate(zip(genomes, states)):
        if folds:
            fold = torch.arange(n) % folds
            rows, valid = torch.nonzero(fold != i % folds).flatten(), fold == i % folds
            valid, job_seed = torch.nonzero(valid).flatten(), seed + i
        else:
            rows, valid, job_seed = torch.arange(int(0.7 * n)), torch.arange(int(0.7 * n), n), seed
        out.append(cohort.Job(genome, state, rows, job_seed, rng.choice(steps), valid))
    return out


def both(jobs, **settings):
    """The results of the reference loop and of the stack, for the same jobs."""
    return [cohort.train(jobs, stacked=stacked, **settings) for stacked in (False, True)]


def assert_same_training(alone, stacked, rtol=1e-9, atol=1e-10):
    for a, s in zip(alone, stacked, strict=True):
        assert (s.steps_trained, s.best_step, s.settled_step, s.diverged_at) == (
            a.steps_trained, a.best_step, a.settled_step, a.diverged_at,
        )  # fmt: skip
        assert s.validation_metric == pytest.approx(a.validation_metric, rel=1e-9, abs=1e-12)
        assert_states_close(a.state, s.state, rtol=rtol, atol=atol)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    conv=st.booleans(),
    folds=st.sampled_from([0, 3]),
    kind=st.sampled_from(sorted(kinds.KINDS)),
    patience=st.sampled_from([0, 2]),
)
def test_jobs_train_in_the_stack_as_each_alone(seed, conv, folds, kind, patience):
    """Dense or conv nets (mixed with a dense-only one), sharing rows or each on its own
    folds, with different step counts along one cosine schedule, checked and stopped on
    patience: in float64 the kept weights, the validation metric, the step kept and the steps
    trained agree to rounding."""
    rng = random.Random(seed)
    shape = [2, 9] if conv else None
    if conv:
        genomes = family(seed, shape, 2)
    else:
        genomes = [G.random_genome(18, 3, DENSE, rng) for _ in range(4)]
    _, states = starting(genomes, torch.float64, seed)
    x, y = data(kind, 90, seed, n_in=18)
    x, y = x.double(), (y.double() if y.is_floating_point() else y)
    jobs = jobs_of(genomes, states, 90, folds=folds, steps=[0, 7, 25, 40], seed=seed)
    alone, stacked = both(
        jobs, kind=kind, data=(x, y), batch_size=16, schedule_steps=40, checks=5,
        patience=patience,
    )  # fmt: skip
    assert_same_training(alone, stacked)


def test_without_checks_each_net_keeps_its_last_weights_and_is_measured_once():
    rng = random.Random(1)
    genomes = [G.random_genome(5, 3, DENSE, rng) for _ in range(3)]
    _, states = starting(genomes, torch.float64, 1)
    x, y = data("regression", 60, 1)
    x, y = x.double(), y.double()
    jobs = jobs_of(genomes, states, 60, folds=0, steps=[10, 30], seed=1)
    alone, stacked = both(jobs, kind="regression", data=(x, y), batch_size=8, schedule_steps=30)
    assert_same_training(alone, stacked)
    assert [r.best_step for r in stacked] == [j.steps for j in jobs]  # the last weights


def test_a_net_whose_loss_is_not_finite_stops_and_the_others_go_on():
    rng = random.Random(2)
    genomes = [G.random_genome(5, 3, DENSE, rng) for _ in range(3)]
    genomes[1].graph["lr"] = 1e300  # its first step sends its loss past float64's range
    _, states = starting(genomes, torch.float64, 2)
    x, y = data("regression", 60, 2)
    x, y = x.double(), y.double()
    jobs = jobs_of(genomes, states, 60, folds=0, steps=[20], seed=2)
    alone, stacked = both(
        jobs, kind="regression", data=(x, y), batch_size=8, schedule_steps=20, checks=4
    )
    assert_same_training(alone, stacked)
    assert stacked[1].diverged_at is not None and stacked[1].steps_trained < 20
    assert [stacked[i].steps_trained for i in (0, 2)] == [20, 20]


def test_patience_stops_a_net_that_stopped_improving_and_keeps_its_best_weights():
    rng = random.Random(3)
    genomes = [G.random_genome(5, 3, DENSE, rng) for _ in range(2)]
    genomes[0].graph["lr"] = 1e-300  # below float32's resolution: it never improves
    _, states = starting(genomes, torch.float32, 3)
    x, y = data("regression", 200, 3)
    jobs = jobs_of(genomes, states, 200, folds=0, steps=[400], seed=3)
    (frozen, learning) = cohort.train(
        jobs, kind="regression", data=(x, y), batch_size=16, schedule_steps=400, checks=40,
        patience=3,
    )  # fmt: skip
    assert frozen.steps_trained == 3 * 10 and frozen.best_step == 0
    assert_states_close(jobs[0].state, frozen.state, rtol=0, atol=0)
    assert learning.steps_trained > frozen.steps_trained and learning.best_step > 0


@pytest.mark.parametrize("kind", sorted(kinds.KINDS))
def test_each_rows_share_of_the_metric_averages_to_the_metric(kind):
    x, y = data(kind, 200, 4)
    out = torch.randn(200, 3, generator=torch.Generator().manual_seed(4)) + x[:, :3]
    task = kinds.get(kind)
    assert task.row_metric(out, y).mean().item() == pytest.approx(task.metric(out, y), abs=1e-6)


def test_the_standard_error_of_an_accuracy_is_the_binomial_one():
    y = torch.zeros(400, dtype=torch.long)
    out = torch.zeros(400, 2)
    out[:, 1], out[:100, 0] = 1.0, 2.0  # a quarter of the rows right
    error = kinds.get("classes").standard_error(out, y)
    assert error == pytest.approx((0.25 * 0.75 * 400 / 399) ** 0.5 / 20, rel=1e-9)
    assert kinds.get("classes").standard_error(out[:1], y[:1]) is None  # one row: unknown


def checked(curve):
    """A :class:`Best` offered ``curve``: (step, metric, standard error) per check."""
    best = Best.start({"w": torch.zeros(1)}, curve[0][1:])
    for step, value, error in curve[1:]:
        best.offer((value, error), lambda: {"w": torch.ones(1)}, step)
    return best


def test_the_settled_step_is_the_last_check_within_noise_of_the_best():
    flat = checked(
        [(0, 0.960, 0.001), (10, 0.9602, 0.001), (20, 0.9597, 0.001), (30, 0.9601, 0.001)]
    )
    assert (flat.step, flat.settled_step) == (10, 30)  # a flat curve: the most training
    peaked = checked([(0, 0.80, 0.01), (10, 0.90, 0.01), (20, 0.895, 0.01), (30, 0.85, 0.01)])
    assert (peaked.step, peaked.settled_step) == (10, 20)  # past the peak by more: not taken
    unknown = checked([(0, 0.5, None), (10, 0.6, None), (20, 0.6, None)])
    assert unknown.settled_step == unknown.step == 10  # no error known: the best step


class Counting:
    """A clock that reads 1 more at every reading: a cohort reads its deadline once a step."""

    def __init__(self):
        self.readings = 0

    def __call__(self):
        self.readings += 1
        return float(self.readings)


@pytest.mark.parametrize("stacked", [True, False])
def test_a_deadline_stops_every_net_at_that_step_as_if_it_were_its_last(stacked):
    """The deadline passes at the 23rd reading of a clock read once a step: the nets stop
    there with the weights jobs of 23 steps (on the same 40-step schedule) end with; checked,
    each keeps its best weights of the checks at 0, 10, 20 and the cut. In the loop the nets
    train one after another, so the first uses the time up and the second stops after one
    step."""
    rng = random.Random(5)
    genomes = [G.random_genome(5, 3, DENSE, rng) for _ in range(2)]
    _, states = starting(genomes, torch.float64, 5)
    x, y = data("regression", 80, 5)
    x, y = x.double(), y.double()
    jobs = jobs_of(genomes, states, 80, folds=0, steps=[40], seed=5)
    settings = dict(kind="regression", data=(x, y), batch_size=8, schedule_steps=40)
    cut = cohort.train(jobs, stacked=stacked, deadline=Deadline(23, Counting()), **settings)
    steps = [23, 23] if stacked else [23, 1]
    assert [r.out_of_time for r in cut] == [True, True]
    assert [r.steps_trained for r in cut] == steps
    shorter = [cohort.Job(j.genome, j.state, j.rows, j.seed, n) for j, n in zip(jobs, steps)]
    for a, b in zip(cut, cohort.train(shorter, stacked=stacked, **settings)):
        assert_states_close(a.state, b.state, rtol=0, atol=0)
    checked = cohort.train(
        jobs, stacked=stacked, deadline=Deadline(23, Counting()), checks=4, **settings
    )
    task = kinds.get("regression")
    for job, result, n in zip(jobs, checked, steps):
        assert result.best_step in {0, 10, 20, n} and result.steps_trained == n
        net = cohort._module(job.genome, result.state, torch.device("cpu"))
        with torch.no_grad():
            kept = task.score(net(x[job.valid]), y[job.valid])
        assert result.validation_metric == pytest.approx(kept, rel=1e-12)
    roomy = cohort.train(jobs, stacked=stacked, deadline=Deadline(1e9, Counting()), **settings)
    assert [(r.out_of_time, r.steps_trained) for r in roomy] == [(False, 40), (False, 40)]
