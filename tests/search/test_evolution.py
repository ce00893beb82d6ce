import json
import random
import time

import pytest
import torch
from helpers import without_times

from neuroevo import Callback, evolve
from neuroevo import recipe as R
from neuroevo.search import stopping
from neuroevo.storage import rundir


def load(path, *overrides):
    return R.load(path, list(overrides))


def test_generations_train_elites_on_and_children_from_their_parents(tiny_recipe, tmp_path):
    result = evolve(load(tiny_recipe(), "evolution.generations=3"), out=tmp_path / "run")
    lines = rundir.read_history(tmp_path / "run")
    by_gen = {g: [r for r in lines if r["generation"] == g] for g in range(3)}
    assert [len(v) for v in by_gen.values()] == [6, 6, 6]
    ids = [r["id"] for r in lines]
    for g in (1, 2):
        earlier = {r["id"]: r for r in lines if r["generation"] < g}
        elites = [r for r in by_gen[g] if r["id"] in earlier]
        children = [r for r in by_gen[g] if r["id"] not in earlier]
        assert len(elites) == 1  # evolution.elites: survives with its id and keeps training
        assert elites[0]["steps_trained"] > 0
        for child in children:
            assert child["parent"] in {r["id"] for r in by_gen[g - 1]}
            assert child["mutation"] and child["born"] == g
    per_generation = [(r["generation"], r["id"]) for r in lines]
    assert len(set(per_generation)) == len(per_generation)  # no id twice in one generation
    assert max(ids) == 6 + 5 + 5 - 1  # ids never reused: 6 founders, 5 children per generation
    assert result.summary.generations_completed == 3


def test_same_seed_same_run(tiny_recipe, tmp_path):
    def once(name):
        evolve(load(tiny_recipe()), out=tmp_path / name)
        summary = without_times(rundir.read_summary(tmp_path / name))
        history = (tmp_path / name / "history.jsonl").read_text()
        weights = (tmp_path / name / "best" / "weights.safetensors").read_bytes()
        return summary, history, weights

    a, b = once("a"), once("b")
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert a[2] == b[2], [i for i, (x, y) in enumerate(zip(a[2], b[2])) if x != y][:10]


def test_other_seed_other_run(tiny_recipe, tmp_path):
    a = evolve(load(tiny_recipe()), out=tmp_path / "a")
    b = evolve(load(tiny_recipe(), "run.seed=4"), out=tmp_path / "b")
    assert (tmp_path / "a" / "history.jsonl").read_text() != (
        tmp_path / "b" / "history.jsonl"
    ).read_text()
    assert a.summary.seed == 3 and b.summary.seed == 4


def test_callbacks_see_every_hook_and_can_stop_the_run(tiny_recipe, tmp_path):
    seen = []

    class Recorder(Callback):
        def on_run_begin(self, **kwargs):
            seen.append("run_begin")

        def on_generation_end(self, *, evolution, summary, **kwargs):
            seen.append(f"gen{summary.generation}")
            if summary.generation == 1:
                evolution.stop("enough")

        def on_run_end(self, *, result, **kwargs):
            seen.append("run_end")

    result = evolve(
        load(tiny_recipe(), "evolution.generations=5"), out=tmp_path / "r", callbacks=[Recorder()]
    )
    assert seen == ["run_begin", "gen0", "gen1", "run_end"]
    assert result.summary.generations_completed == 2
    assert result.summary.stopped_by == "enough"


def test_time_budget_stops_the_search_after_a_complete_generation(tiny_recipe, tmp_path):
    result = evolve(
        load(tiny_recipe(), "evolution.generations=50", "evolution.time_budget=1e-3"),
        out=tmp_path / "r",
    )
    assert result.summary.generations_completed == 1
    assert result.summary.stopped_by == "time_budget"
    assert len((tmp_path / "r" / "history.jsonl").read_text().splitlines()) == 6


class _Search:
    """Just what the stopping rules read of a search."""

    def __init__(self, generation, stop_reason=None):
        self.generation, self.stop_reason = generation, stop_reason


def test_stopping_rules_answer_in_order_with_their_reason(tiny_recipe):
    recipe = load(tiny_recipe(), "evolution.generations=5", "evolution.time_budget=10")
    rules = stopping.rules(recipe)
    clock = stopping.Clock(started=time.perf_counter(), before=0.0, durations=[1.0])
    assert stopping.first_reason(rules, _Search(0), clock) is None
    assert stopping.first_reason(rules, _Search(4), clock) == "generations"
    assert stopping.first_reason(rules, _Search(4, "enough"), clock) == "enough"  # asked first
    clock.before = 9.5  # the next generation (1 s, as the mean one) would end past 10 s
    assert stopping.first_reason(rules, _Search(0), clock) == "time_budget"
    no_budget = stopping.rules(load(tiny_recipe(), "evolution.generations=5"))
    assert stopping.first_reason(no_budget, _Search(0), clock) is None


def test_global_random_state_is_left_alone(tiny_recipe, tmp_path):
    random.seed(123)
    before = random.getstate()
    evolve(load(tiny_recipe()), out=tmp_path / "r")
    assert random.getstate() == before


def test_user_mutation_in_a_recipe_appears_in_the_history(tiny_recipe, tmp_path, monkeypatch):
    (tmp_path / "lab_ops.py").write_text(
        "def halve_lr(genome, rng, space):\n"
        "    genome.graph['lr'] = max(genome.graph['lr'] / 2, space.lr_min)\n"
        "    return genome\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    extra = '[mutations]\n"lab_ops:halve_lr" = 1.0\n'
    evolve(load(tiny_recipe(extra)), out=tmp_path / "r")
    lines = rundir.read_history(tmp_path / "r")
    children = [r for r in lines if r["generation"] == 1 and r["parent"] is not None]
    assert children and all(r["mutation"] == "lab_ops:halve_lr" for r in children)


def test_existing_run_is_refused_unless_overwritten(tiny_recipe, tmp_path):
    evolve(load(tiny_recipe()), out=tmp_path / "r")
    with pytest.raises(Exception, match="already holds a run"):
        evolve(load(tiny_recipe()), out=tmp_path / "r")
    evolve(load(tiny_recipe()), out=tmp_path / "r", overwrite=True)


def test_a_custom_loop_over_step_equals_the_run_driver(tiny_recipe, tmp_path):
    """Evolution.step() is the whole generation (no files): islands and custom loops call it;
    an evolution rebuilt from state_dict() goes on exactly as the original would."""
    from neuroevo import tasks
    from neuroevo.search.evolution import Evolution

    recipe = load(tiny_recipe(), "evolution.generations=3")
    evolve(recipe, out=tmp_path / "run")
    history = rundir.read_history(tmp_path / "run")

    def task():
        return tasks.build(recipe.task.name, recipe.run.seed, **recipe.task.options)

    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.run.threads)  # as the driver does: results depend on it
    try:
        evo = Evolution(recipe, task())
        records = evo.step().records + evo.step().records
        saved = evo.state_dict()
        again = Evolution(recipe, task())
        again.load_state_dict(saved)
        records += again.step().records
    finally:
        torch.set_num_threads(threads)
    assert json.loads(json.dumps(records)) == history
