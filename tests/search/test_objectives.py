"""Several objectives: dominance and hypervolume on hand-made cases, the race that keeps the
front, constraints that no parent and no front member breaks, resume, the front's models, and
one objective left as it was."""

import json

import pytest
import torch
from helpers import outputs

import neuroevo
from neuroevo import Callback, evolve, tasks
from neuroevo import recipe as R
from neuroevo.cli import main
from neuroevo.genome import graph as G
from neuroevo.results.show import describe
from neuroevo.search.evolution import Evolution
from neuroevo.search.objectives import Objectives
from neuroevo.storage import rundir
from neuroevo.training import mixer


def two_objectives(tiny_recipe, extra=""):
    """The tiny recipe with the metric and the parameters as objectives (4 generations of 8
    nets, so selection and the front have room), and ``extra`` --set overrides."""
    return R.load(
        tiny_recipe(),
        [
            'evolution.objectives=["metric", "params"]',
            "evolution.generations=4",
            "population.size=8",
            *extra,
        ],
    )


# --------------------------------------------------------------------------- by hand


def test_non_dominated_keeps_exactly_the_points_nothing_beats_everywhere():
    # (metric, -params): every value maximised
    points = [(0.9, -100), (0.8, -50), (0.85, -100), (0.8, -60), (0.7, -10), (0.9, -100)]
    # (0.85, -100) loses to (0.9, -100); (0.8, -60) to (0.8, -50); the two equal best ones
    # dominate neither each other nor anything the other does not
    assert mixer.non_dominated(points) == [0, 1, 4, 5]
    assert mixer.non_dominated([(1.0, -1.0)]) == [0]


def test_hypervolume_is_the_area_dominated_up_to_the_reference():
    raw = {"task": {"name": "logbits"}, "evolution": {"objectives": ["metric", "params"]}}
    recipe = R.from_dict(raw)
    objectives = Objectives.of(recipe, 16, 16, None)
    limit = objectives.reference("params")
    assert limit == G.largest_parameters(recipe.space, 16, 16)  # no constraint: the space's
    half, quarter = limit / 2, limit / 4
    # two steps: metric 0.8 up to half the reference, 0.6 up to a quarter of it
    area = 0.8 * 0.5 + 0.6 * 0.25
    front = [(0.8, -half), (0.6, -quarter)]
    assert objectives.hypervolume(front) == pytest.approx(area)
    # a dominated point and one beyond the reference add nothing
    assert objectives.hypervolume([*front, (0.5, -half), (0.99, -2 * limit)]) == pytest.approx(area)
    assert objectives.hypervolume([]) == 0.0
    bounded = Objectives.of(R.from_dict({**raw, "constraints": {"max_params": 1000}}), 16, 16, None)
    assert bounded.reference("params") == 1000


def race_state(scores, costs, keep):
    race = mixer.Race(points=(0.5,), rule="keep-fraction", keep=keep, min_survivors=1)
    config = mixer.MixerConfig(rule="experts", race=race)  # the race reads the scores
    state = mixer._RaceState(len(scores), config, costs)
    state.score = torch.tensor(scores, dtype=torch.float64)
    return state


def test_the_race_never_retires_a_net_no_live_net_dominates():
    scores = [0.40, 0.30, 0.15, 0.10, 0.05]
    params = [(5000,), (4000,), (300,), (4500,), (100,)]
    state = race_state(scores, params, keep=0.2)  # by score alone: only net 0 goes on
    state.race_round(0, 10)
    # net 2 (small, third) and net 4 (smallest) are beaten by no net on both counts; net 1 is
    # smaller than net 0; net 3 is dominated by net 1 (better score, fewer parameters)
    assert state.live() == [0, 1, 2, 4]
    assert state.retired_at == [None, None, None, 10, None]
    # one objective: the same round keeps the leader alone
    alone = race_state(scores, None, keep=0.2)
    alone.race_round(0, 10)
    assert alone.live() == [0]


def test_elites_are_the_first_front_and_its_ends_by_crowding():
    """NSGA-II on a hand-made population: of the first front, elites = 2 keeps its two ends
    (infinite crowding distance), never a dominated net however accurate its fitness."""
    raw = {
        "task": {"name": "logbits", "n_train": 64, "n_valid": 32, "n_test": 32},
        "population": {"size": 6},
        "evolution": {"objectives": ["metric", "params"], "elites": 2},
    }
    recipe = R.from_dict(raw)
    evo = Evolution(recipe, tasks.build("logbits", 0, n_train=64, n_valid=32, n_test=32))
    widths = [8, 16, 24, 32, 40, 48]
    fitness = [0.10, 0.15, 0.20, 0.05, 0.30, 0.20]  # nets 3 and 5: beaten by smaller ones
    for ind, width, f in zip(evo.population, widths, fitness):
        ind.genome = G.mlp(16, 16, [width], "relu", lr=1e-3)
        ind.genome.graph.update(id=width, born=0)
        ind.state = {}
        ind.fitness = evo.objectives.fitness(f, ind.genome)
    evo._evaluated = True
    evo.breed()
    elites = [ind.genome.graph["id"] for ind in evo.population[:2]]
    assert sorted(elites) == [8, 40]  # the smallest and the fittest of the front 8, 16, 24, 40


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    "setting, message",
    [
        ('evolution.objectives=["params"]', 'evolution.objectives: must hold "metric"'),
        ('evolution.objectives=["metric","metric"]', "names an objective twice"),
        ('evolution.objectives=["metric","latency"]', "one of 'metric', 'params', 'macs'"),
        ('final.pick="macs"', "final.pick: 'macs' is not one of evolution.objectives"),
        ("constraints.max_params=-5", "constraints.max_params: must be at least 0"),
        (
            'evolution.objectives=["metric","params"] population.size=3 evolution.elites=1',
            "population.size: several evolution.objectives need at least 4 nets",
        ),
    ],
)
def test_a_bad_objective_or_constraint_is_one_line_and_exit_2(setting, message, tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[task]\nname = "logbits"\n')
    sets = [word for one in setting.split(" ") for word in ("--set", one)]
    assert main(["evolve", str(recipe), *sets, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_an_initial_net_above_a_constraint_is_refused_before_anything_runs(
    tiny_recipe, tmp_path, capsys
):
    # the initial [16] relu net on 16 bits has 16*16+16 + 16*16+16 = 544 parameters
    out = tmp_path / "o"
    code = main(["evolve", str(tiny_recipe()), "--set", "constraints.max_params=500",
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "population.initial [16] relu: 544 parameters, above constraints.max_params = 500" in err
    assert not (out / "history.jsonl").exists()


# --------------------------------------------------------------------------- runs


class Parents(Callback):
    """The genomes each generation trained (its elites and the children of its parents)."""

    def __init__(self):
        self.trained = []

    def on_generation_begin(self, *, population, **kwargs):
        self.trained.append([ind.genome for ind in population])


def test_no_parent_and_no_front_member_breaks_a_constraint(tiny_recipe, tmp_path):
    limit = 700  # the space reaches 2,000+ parameters; the initial net has 544
    recipe = two_objectives(tiny_recipe, [f"constraints.max_params={limit}"])
    seen = Parents()
    result = evolve(recipe, out=tmp_path / "run", callbacks=[seen])
    assert all(G.n_parameters(g) <= limit for gen in seen.trained for g in gen)
    history = rundir.read_history(tmp_path / "run")
    assert max(r["params"] for r in history) <= limit
    front = result.summary.front
    assert front and all(m["params"] <= limit for m in front)
    # with no constraint the same seed breeds nets above it: the bound did the work
    free = evolve(two_objectives(tiny_recipe), out=tmp_path / "free")
    assert max(r["params"] for r in rundir.read_history(free.out)) > limit


def test_a_two_objective_run_ends_with_its_front_each_member_loadable(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    result = evolve(two_objectives(tiny_recipe, ['final.pick="params"']), out=run)
    front = result.summary.front
    # the members beat each other nowhere: more accurate on validation means larger
    assert [m["member"] for m in front] == list(range(len(front)))
    metrics = [m["validation_metric"] for m in front]
    assert len(front) >= 2 and metrics == sorted(metrics, reverse=True)
    assert [m["params"] for m in front] == sorted((m["params"] for m in front), reverse=True)
    assert all(m["test_metric"] is not None for m in front)
    # final.pick = "params": best/ is the smallest member
    picked = [m for m in front if m["picked"]]
    assert picked == [front[-1]] and result.summary.best.id == front[-1]["id"]
    x = torch.rand(5, 16).round()
    for m in front:
        model = neuroevo.load(run, member=m["member"])
        assert G.n_parameters(model.genome) == m["params"]
        assert model.predict(x.numpy()).shape[0] == 5
    assert json.loads((run / "front" / "0" / "model.json").read_text())["kind"] == "bits"
    history = rundir.read_history(run)
    volumes = [r["hypervolume"] for r in history]
    # the front only grows better: its hypervolume never falls
    per_generation = [volumes[i] for i in range(0, len(volumes), 8)]
    assert per_generation == sorted(per_generation) and per_generation[0] > 0
    assert all("front" in r for r in history)
    with pytest.raises(neuroevo.NeuroevoError, match="front/ holds members 0.."):
        neuroevo.load(run, member=len(front))


def test_predict_and_export_take_a_member(tiny_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    evolve(two_objectives(tiny_recipe), out=run)
    data = tmp_path / "x.csv"
    data.write_text(",".join(f"x{i}" for i in range(16)) + "\n" + ",".join(["1"] * 16) + "\n")
    assert main(["predict", str(run), str(data), "--member", "0"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    assert main(["export", str(run), "--format", "torchscript", "--member", "0"]) == 0
    assert (run / "front" / "0" / "model.pt").exists()
    assert main(["predict", str(run), str(data), "--member", "99"]) == 2
    assert "front/ holds members" in capsys.readouterr().err


class Interrupt(Callback):
    def on_generation_end(self, *, summary, **kwargs):
        if summary.generation == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("islands", [1, 2])
def test_a_two_objective_run_resumes_bit_for_bit(islands, tiny_recipe, tmp_path):
    recipe = two_objectives(tiny_recipe, [f"islands.count={islands}", "islands.migrate_every=2"])
    evolve(recipe, out=tmp_path / "reference")
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve(recipe, out=run, callbacks=[Interrupt()])
    evolve(recipe, out=run, resume=True)
    assert outputs(run) == outputs(tmp_path / "reference")
    for member in (tmp_path / "reference" / "front").iterdir():
        mine = run / "front" / member.name / "weights.safetensors"
        assert mine.read_bytes() == (member / "weights.safetensors").read_bytes()


def test_one_objective_records_and_checkpoints_nothing_of_fronts(tiny_recipe, tmp_path):
    """One objective is today's run: no front, no hypervolume, no costs beside params; and a
    constraint that binds no net changes nothing (the same draws, byte for byte)."""
    recipe = R.load(tiny_recipe(), ["evolution.generations=3"])
    plain = evolve(recipe, out=tmp_path / "plain")
    history = (plain.out / "history.jsonl").read_text()
    assert '"front"' not in history and "hypervolume" not in history and '"macs"' not in history
    assert not (plain.out / "front").exists() and plain.summary.front is None
    assert "front" not in json.loads((plain.out / "summary.json").read_text())
    loose = R.load(recipe.source, ["evolution.generations=3", "constraints.max_params=100000"])
    bounded = evolve(loose, out=tmp_path / "bounded")
    assert (bounded.out / "history.jsonl").read_text() == history


def test_a_bagged_refit_gives_each_member_its_own_copies(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    result = evolve(two_objectives(tiny_recipe, ["final.folds=2"]), out=run)
    for m in result.summary.front:
        ensemble = json.loads((run / "front" / str(m["member"]) / "ensemble.json").read_text())
        assert len(ensemble["genomes"]) == 2  # one copy per fold, of this member's net alone
        assert {G.signature(G.from_dict(g)) for g in ensemble["genomes"]} == {m["signature"]}
        model = neuroevo.load(run, member=m["member"])
        assert model.predict(torch.zeros(3, 16).numpy()).shape == (3, 16)


# --------------------------------------------------------------------------- latency


class FakeClock:
    """A stand-in for :func:`neuroevo.training.latency.measure`: milliseconds that follow the
    parameters, plus a thousandth per measurement made so far (so a time measured again
    differs from the one kept)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, genome, device="cpu"):
        self.calls += 1
        return G.n_parameters(genome) / 1000 + self.calls / 1000


def test_latency_is_measured_once_per_architecture_and_resumes_bit_for_bit(
    tiny_recipe, tmp_path, monkeypatch
):
    from neuroevo.training import latency

    recipe = two_objectives(tiny_recipe, ['evolution.objectives=["metric", "latency_ms"]'])
    fake = FakeClock()
    monkeypatch.setattr(latency, "measure", fake)
    evolve(recipe, out=tmp_path / "reference")
    history = rundir.read_history(tmp_path / "reference")
    architectures = {architecture(r) for r in history}
    # every record has its time; one measurement per architecture (and the space's largest
    # nets, the hypervolume's reference)
    assert all(r["latency_ms"] > 0 for r in history)
    assert len(architectures) <= fake.calls <= len(architectures) + 1
    fake.calls = 0  # the interrupted run measures as the reference did, up to its checkpoint
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve(recipe, out=run, callbacks=[Interrupt()])
    # resumed, the kept times are read back: measured again, each would be a thousandth off
    evolve(recipe, out=run, resume=True)
    assert outputs(run) == outputs(tmp_path / "reference")


def architecture(record):
    """The architecture of a history record: its signature without the learning rate."""
    return record["signature"].rsplit(" lr=", 1)[0]


def test_a_latency_bound_holds_for_every_net(tiny_recipe, tmp_path, monkeypatch):
    from neuroevo.training import latency

    monkeypatch.setattr(
        latency, "measure", lambda genome, device="cpu": G.n_parameters(genome) / 1000
    )
    recipe = two_objectives(
        tiny_recipe,
        ['evolution.objectives=["metric", "latency_ms"]', "constraints.max_latency_ms=0.7"],
    )
    result = evolve(recipe, out=tmp_path / "run")
    history = rundir.read_history(tmp_path / "run")
    assert max(r["latency_ms"] for r in history) <= 0.7
    assert all(m["latency_ms"] <= 0.7 for m in result.summary.front)
    shown = describe(tmp_path / "run")  # neuroevo show: the front with its times
    assert "      ms  net" in shown and f"{result.summary.front[0]['latency_ms']:.4f}" in shown


def test_a_real_latency_is_a_positive_time_in_milliseconds():
    from neuroevo.training import latency

    small = latency.measure(G.mlp(16, 16, [8], "relu", lr=1e-3))
    assert 0 < small < 1000  # a batch-1 forward pass of a 16-8-16 net: microseconds to ms
