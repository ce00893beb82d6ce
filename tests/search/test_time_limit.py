"""``run.time_limit``: the whole run inside one limit, planned in phases, on a deterministic
clock. The run reads its time from :func:`neuroevo.search.stopping.now`; these tests put a
clock there that moves only when it is read (``tick`` seconds a reading: a training step of
the end of the run reads it once) and when a generation ends (``generation`` seconds, moved
by a callback), so every figure below is the same on every machine."""

import pytest

from neuroevo import Callback, evolve
from neuroevo import recipe as R
from neuroevo.results import show
from neuroevo.search import stopping


class FakeTime(Callback):
    def __init__(self, tick, generation):
        self.t, self.tick, self.generation = 0.0, tick, generation

    def __call__(self):
        self.t += self.tick
        return self.t

    def on_generation_begin(self, **kwargs):
        self.t += self.generation


class Interrupt(Callback):
    def __init__(self, generation):
        self.generation = generation

    def on_generation_end(self, *, summary, **kwargs):
        if summary.generation == self.generation:
            raise KeyboardInterrupt


@pytest.fixture
def fake_time(monkeypatch):
    def install(tick, generation):
        clock = FakeTime(tick, generation)
        monkeypatch.setattr(stopping, "now", clock)
        return clock

    return install


def load(path, *overrides):
    return R.load(path, list(overrides))


@pytest.mark.parametrize("engine", ["batched", "loop"])
def test_a_run_ends_within_its_time_limit_and_records_its_plan(
    tiny_recipe, tmp_path, fake_time, engine
):
    """Generations of 10 s; the end would take 1000 steps of final training and as many of
    refit at 0.05 s a step (118 s with its room), more than its 30% of the 100 s: the search
    stops when a generation more would leave the end less than 30 s, and the end shortens
    its trainings to fit."""
    clock = fake_time(0.05, 10.0)
    recipe = load(
        tiny_recipe(),
        f'mixer.engine="{engine}"',
        "evolution.generations=100",
        "run.time_limit=100",
        "final.final_steps=1000",
    )
    summary = evolve(recipe, out=tmp_path / "r", callbacks=[clock]).summary
    assert summary.stopped_by == "time_limit"
    assert summary.wall_seconds <= 100
    assert 5 <= summary.generations_completed <= 7  # 10 s each, 30 s left for the end
    plan = summary.time
    assert plan["limit"] == 100 and plan["end_share"] == 0.3
    assert plan["end_reserved"] == pytest.approx(30)  # the end's share: it needs more
    assert 100 < plan["final_steps"] < 1000  # shortened to fit, not dropped
    assert plan["refit_steps"] <= plan["final_steps"]
    assert plan["seconds_per_step"]["final"] == pytest.approx(0.05, rel=0.2)
    assert summary.final.refit["steps"][0] <= plan["refit_steps"]
    assert "limit 100 s, the report drawn after it" in show.describe(tmp_path / "r")


def test_the_end_gives_back_to_the_search_the_time_it_does_not_need(
    tiny_recipe, tmp_path, fake_time
):
    """A limit of 105 s and an end of 40 steps of each (about 6 s with its room and its
    measurement): the search runs on until a generation more would not leave those seconds,
    9 generations where an end that took its whole share would have left 7; the end trains
    every step it asks for."""
    clock = fake_time(0.05, 10.0)
    recipe = load(
        tiny_recipe(), "evolution.generations=100", "run.time_limit=105", "final.final_steps=40"
    )
    summary = evolve(recipe, out=tmp_path / "r", callbacks=[clock]).summary
    assert summary.stopped_by == "time_limit" and summary.generations_completed == 9
    assert summary.time["end_reserved"] < 10
    assert summary.time["final_steps"] == 40 and summary.time["cut"] == []
    assert summary.wall_seconds <= 105


def test_a_resumed_run_counts_the_time_spent_before_it(tiny_recipe, tmp_path, fake_time):
    """Interrupted after 3 generations of 10 s and resumed in a process whose clock reads
    anything: it stops where the uninterrupted run stopped (9 generations in 95 s), not 9
    generations later."""
    recipe = load(
        tiny_recipe(), "evolution.generations=100", "run.time_limit=95", "final.final_steps=40"
    )
    clock = fake_time(1e-4, 10.0)
    whole = evolve(recipe, out=tmp_path / "whole", callbacks=[clock]).summary
    assert whole.generations_completed == 9 and whole.stopped_by == "time_limit"
    clock = fake_time(1e-4, 10.0)
    with pytest.raises(KeyboardInterrupt):
        evolve(recipe, out=tmp_path / "r", callbacks=[clock, Interrupt(2)])
    clock.t = 5000.0  # another process's monotonic clock
    resumed = evolve(recipe, out=tmp_path / "r", resume=True, callbacks=[clock]).summary
    assert resumed.generations_completed == 9
    assert resumed.search_seconds == pytest.approx(whole.search_seconds, abs=0.1)


class _Search:
    generation, stop_reason = 0, None


def test_the_time_limit_measures_the_end_only_near_the_limit_and_keeps_its_share():
    measured = []

    def measure(search, clock):
        measured.append(clock.seconds())
        return need

    rule = stopping.TimeLimit(100.0, 0.3, measure)
    clock = stopping.Clock(started=stopping.now(), durations=[10.0])
    need = 50.0
    clock.before = 50.0  # 50 + 10 + 30 <= 100: surely room, nothing measured
    assert rule.check(_Search(), clock) is None and measured == []
    clock.before = 61.0  # 61 + 10 + min(30, 50) > 100
    assert rule.check(_Search(), clock) == "time_limit" and rule.reserved == 30.0
    need = 5.0  # an end that needs 5 s leaves the search the rest
    assert rule.check(_Search(), clock) is None and rule.reserved == 5.0
    clock.before = 86.0  # 86 + 10 + 5 > 100
    assert rule.check(_Search(), clock) == "time_limit"
    assert len(measured) == 3


def test_a_run_without_final_training_keeps_its_search_weights_within_a_limit(
    tiny_recipe, tmp_path, fake_time
):
    clock = fake_time(0.05, 10.0)
    recipe = load(tiny_recipe(), "run.time_limit=100", "final.final_steps=0")
    summary = evolve(recipe, out=tmp_path / "r", callbacks=[clock]).summary
    assert summary.time["final_steps"] == 0 and summary.time["refit_steps"] == 0
    assert summary.final.refit["steps"] == [0]


def test_the_time_limit_expects_the_last_generations_length_where_they_grew():
    rule = stopping.TimeLimit(100.0, 0.3, lambda search, clock: 5.0)
    clock = stopping.Clock(started=stopping.now(), durations=[2.0] * 9 + [10.0] * 3)
    clock.before = 88.0  # the mean generation (4 s) fits before the end's 5 s; the last (10 s) not
    assert rule.check(_Search(), clock) == "time_limit"
    clock.durations = [2.0] * 12
    assert rule.check(_Search(), clock) is None


def test_a_bagged_refit_within_the_limit_is_measured_and_fitted_per_step(
    tiny_recipe, tmp_path, fake_time
):
    """Five copies from fresh weights: the end measures a step of all of them (one clock
    reading a step, as a step of final training) and gives them the steps that fit, not one."""
    clock = fake_time(0.05, 10.0)
    recipe = load(tiny_recipe(), "run.time_limit=200", "final.final_steps=600", "final.folds=5")
    summary = evolve(recipe, out=tmp_path / "r", callbacks=[clock]).summary
    plan = summary.time
    assert plan["seconds_per_step"]["refit"] == pytest.approx(0.05, rel=0.2)
    assert plan["final_steps"] == 600 and plan["refit_steps"] == 600 and plan["cut"] == []
    assert summary.final.refit["folds"] == 5
    assert summary.final.refit["out_of_fold_metric"] > 0.6  # trained, not a coin
