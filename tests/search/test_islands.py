"""Islands: several populations in lockstep, migration of nets with their weights, one
checkpoint holding every island, and the same result on the local and the Ray backend."""

import dataclasses
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import edit_state, outputs

from neuroevo import tasks
from neuroevo.callbacks.base import Callback
from neuroevo.cli import main
from neuroevo.errors import NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.recipe import RecipeError, load
from neuroevo.runner import evolve
from neuroevo.search.evolution import Evolution
from neuroevo.search.islands import Archipelago, build
from neuroevo.search.protocol import Search
from neuroevo.storage import checkpoint, rundir
from neuroevo.storage.checkpoint import CheckpointError
from neuroevo.training.engine import threads

ISLANDS = "\n[islands]\ncount = 2\nmigrate_every = 1\nmigrants = 2\n"


def _task(recipe):
    return tasks.build(recipe.task.name, recipe.run.seed, **recipe.task.options)


# --------------------------------------------------------------------------- one island


def test_one_island_is_a_run_without_islands(tiny_recipe, tmp_path):
    """islands.count = 1 drives the one Evolution as before: the same history as a loop
    over Evolution.step(), and a checkpoint of the same layout."""
    recipe = load(tiny_recipe("\n[islands]\ncount = 1\n"), ["evolution.generations=3"])
    evolve(recipe, out=tmp_path / "run")
    with threads(recipe.run.threads):
        evo = Evolution(recipe, _task(recipe))
        records = [r for _ in range(3) for r in evo.step().records]
    assert rundir.read_history(tmp_path / "run") == json.loads(json.dumps(records))
    state = checkpoint.load_latest(tmp_path / "run").state
    assert "islands" not in state and len(state["population"]) == recipe.population.size


def test_one_island_is_a_plain_evolution_and_an_archipelago_has_two_or_more(tiny_recipe):
    recipe = load(tiny_recipe("\n[islands]\ncount = 1\n"), ['run.backend="ray"'])
    assert type(build(recipe, _task(recipe))) is Evolution  # nothing for Ray to spread
    with pytest.raises(NeuroevoError, match="at least 2 islands"):
        Archipelago(recipe, _task(recipe))
    several = load(tiny_recipe(ISLANDS))
    assert type(build(several, _task(several))) is Archipelago


def test_both_searches_honour_the_search_protocol(tiny_recipe):
    """What the driver and final.finish use of a search, on one population and on islands."""
    names = [n for n in vars(Search) if not n.startswith("_")] + list(Search.__annotations__)
    for extra in ("", ISLANDS):
        recipe = load(tiny_recipe(extra))
        search = build(recipe, _task(recipe))
        missing = [n for n in names if not hasattr(search, n)]
        assert not missing, f"{type(search).__name__} lacks {missing}"


# --------------------------------------------------------------------------- migration


def test_the_fittest_nets_migrate_around_the_ring_with_their_weights(tiny_recipe):
    recipe = load(
        tiny_recipe("\n[islands]\ncount = 3\nmigrate_every = 2\nmigrants = 2\n"),
        "evolution.generations=3",
    )
    with threads(recipe.run.threads):
        archipelago = Archipelago(recipe, _task(recipe))
        archipelago.step()
        assert not archipelago.migrating()  # after generations 2, 4, ...
        archipelago.step()
        assert archipelago.migrating()
        sent = {}
        for k, evo in enumerate(archipelago.islands):
            ranked = sorted(evo.population, key=lambda ind: -ind.fitness.values[0])
            sent[k] = [(ind.id, G.to_json(ind.genome), dict(ind.state)) for ind in ranked[:2]]
        archipelago.step()
    for k, evo in enumerate(archipelago.islands):
        arrived = evo.population[-2:]  # the places of the last children
        for ind, (source_id, genome_json, state) in zip(arrived, sent[(k - 1) % 3]):
            g = ind.genome.graph
            assert g["parent"] == source_id and g["mutation"] == "migrate" and g["born"] == 2
            assert g["id"] % 3 == k and g["id"] != source_id  # a new id of its new island
            assert json.loads(_lineage_free(ind.genome)) == json.loads(
                _lineage_free(G.from_json(genome_json))
            )
            # its first mixer run here started from the weights it travelled with
            assert ind.start_from.keys() == state.keys()
            assert all(torch.equal(ind.start_from[n], state[n]) for n in state)
            assert ind.result.steps_trained > 0
    history = [r for evo in archipelago.islands for r in evo.logbook]
    assert len(history) == 9  # three generations of three islands


def _lineage_free(genome):
    g = G.copy(genome)
    g.graph.update(id=None, parent=None, mutation=None, born=None)
    return G.to_json(g)


def test_a_run_with_islands_records_every_island_and_keeps_the_best_of_all(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    result = evolve(load(tiny_recipe(ISLANDS), ["evolution.generations=3"]), out=run)
    history = rundir.read_history(run)
    assert {(r["generation"], r["island"]) for r in history} == {
        (g, k) for g in range(3) for k in range(2)
    }
    arrivals = [r for r in history if r["mutation"] == "migrate" and r["born"] == r["generation"]]
    assert len(arrivals) == 2 * 2 * 2  # 2 migrants to each of 2 islands in generations 1, 2
    assert sorted(p.name for p in (run / "mixing").iterdir()) == sorted(
        f"gen-{g}{'.island-1' if k else ''}.safetensors" for g in range(3) for k in range(2)
    )
    best = max(
        (r for r in history if r["validation_metric"] is not None),
        key=lambda r: r["validation_metric"],
    )
    champions = {r["id"] for r in history}
    assert result.summary.best.id in champions
    assert result.summary.best.search_validation_metric == pytest.approx(best["validation_metric"])
    assert result.summary.best.island == result.summary.best.id % 2
    assert result.summary.islands == 2
    state = checkpoint.load_latest(run).state
    assert len(state["islands"]) == 2


def test_every_hook_of_a_run_with_islands_gets_the_archipelago(tiny_recipe, tmp_path):
    """The callback contract: one ``evolution`` in every hook; an island's hooks say which
    island; a stop asked from inside an island's mixer run ends the whole run."""
    seen = []

    class Recorder(Callback):
        def on_run_begin(self, *, evolution, **kwargs):
            seen.append(("run_begin", evolution, None))

        def on_generation_begin(self, *, evolution, generation, island, **kwargs):
            seen.append(("generation_begin", evolution, (generation, island)))

        def on_mixer_step(self, *, evolution, generation, island, step, **kwargs):
            if step == 1:
                seen.append(("mixer_step", evolution, (generation, island)))
            if (generation, island, step) == (1, 1, 1):
                evolution.stop("enough")

        def on_generation_end(self, *, evolution, summary, **kwargs):
            seen.append(("generation_end", evolution, summary.generation))

        def on_run_end(self, *, evolution, **kwargs):
            seen.append(("run_end", evolution, None))

    recipe = load(tiny_recipe(ISLANDS), ["evolution.generations=4"])
    result = evolve(recipe, out=tmp_path / "run", callbacks=[Recorder()])
    searches = {id(evolution) for _, evolution, _ in seen}
    assert len(searches) == 1 and isinstance(seen[0][1], Archipelago)
    assert [(hook, what) for hook, _, what in seen if hook != "mixer_step"] == [
        ("run_begin", None),
        ("generation_begin", (0, 0)),
        ("generation_begin", (0, 1)),
        ("generation_end", 0),
        ("generation_begin", (1, 0)),
        ("generation_begin", (1, 1)),
        ("generation_end", 1),
        ("run_end", None),
    ]
    steps = [what for hook, _, what in seen if hook == "mixer_step"]
    assert steps == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert result.summary.stopped_by == "enough" and result.summary.generations_completed == 2


def test_show_and_the_report_name_the_islands(tiny_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    result = evolve(load(tiny_recipe(ISLANDS, report=True), ["evolution.generations=2"]), out=run)
    best = result.summary.best
    assert main(["show", str(run)]) == 0
    shown = capsys.readouterr().out
    assert f"2 islands; the best net from island {best.island}" in shown
    lines = shown.splitlines()
    header = lines[next(i for i, line in enumerate(lines) if "by validation" in line) + 1]
    assert header.split()[:2] == ["id", "island"]  # the top nets' table names their island
    page = (run / "report.html").read_text()
    assert "<th>island</th>" in page and f"the best net from island {best.island}" in page


def test_islands_resume_bit_for_bit_from_the_checkpoint_that_holds_them_all(tiny_recipe, tmp_path):
    recipe = load(tiny_recipe(ISLANDS), ["evolution.generations=4"])
    evolve(recipe, out=tmp_path / "reference")
    evolve(
        recipe.replace(evolution=dataclasses.replace(recipe.evolution, generations=2)),
        out=tmp_path / "run",
    )
    assert main(["resume", str(tmp_path / "run"), "--quiet", "--set",
                 "evolution.generations=4"]) == 0  # fmt: skip
    assert outputs(tmp_path / "run") == outputs(tmp_path / "reference")


def test_verify_replays_island_0s_generation_with_its_immigrants(tiny_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    evolve(load(tiny_recipe(ISLANDS), ["evolution.generations=2"]), out=run)
    assert main(["verify", str(run), "--json", "--quiet"]) == 0
    written = json.loads(capsys.readouterr().out)
    mine = [r for r in rundir.read_history(run) if r["generation"] == 1 and r["island"] == 0]
    assert [r["mutation"] for r in mine].count("migrate") == 2
    # the same nets, the immigrants too, with the run's own fitness to the last digit
    assert {r["id"]: r["fitness"] for r in mine} == {
        n["id"]: n["mixer_fitness"] for n in written["nets"]
    }


def test_a_checkpoint_that_lost_an_island_is_refused(tiny_recipe, tmp_path):

    run = tmp_path / "run"
    evolve(load(tiny_recipe(ISLANDS), ["evolution.generations=2"]), out=run)
    (run / "summary.json").unlink()
    edit_state(run, lambda state: state["islands"].pop())
    with pytest.raises(CheckpointError, match="holds 1 island"):
        evolve(load(tiny_recipe(ISLANDS), ["evolution.generations=3"]), out=run, resume=True)


@pytest.mark.parametrize(
    "setting, message",
    [
        ("islands.count=0", "islands.count: must be at least 1"),
        ("islands.count=1001", "islands.count: must be at most 1000"),
        ("islands.migrants=6", "islands.migrants: must be at most population.size - "),
        ("islands.migrate_every=0", "islands.migrate_every: must be at least 1"),
        ('islands.topology="star"', "islands.topology: must be one of 'ring'"),
        ('run.backend="rey"', "got 'rey' (did you mean ray?)"),
        ("islands.size=2", "unknown key"),
    ],
)
def test_bad_island_settings_are_one_clear_line(tiny_recipe, setting, message):
    with pytest.raises(RecipeError, match=re.escape(message)) as info:
        load(tiny_recipe(), [setting])
    assert str(info.value).startswith("--set")


def test_the_ray_backend_without_ray_says_how_to_install_it(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    recipe = load(tiny_recipe(ISLANDS), ['run.backend="ray"'])
    with pytest.raises(NeuroevoError, match=r"pip install 'neuroevo\[ray\]'"):
        evolve(recipe, out=tmp_path / "run")


# --------------------------------------------------------------------------- Ray

# only the tests below need Ray: where the extra is missing they alone are skipped
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="the island tests on Ray need the extra: pip install 'neuroevo[ray]'",
)


@needs_ray
def test_a_ray_cluster_that_cannot_be_reached_is_one_line_naming_the_address(
    tiny_recipe, tmp_path, monkeypatch
):
    import ray

    def unreachable(**kwargs):  # what ray.init raises where nothing listens at the address
        raise ConnectionError(f"Could not find any running Ray instance at {kwargs['address']}")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", unreachable)
    recipe = load(tiny_recipe(ISLANDS), ['run.backend="ray"', 'run.ray_address="10.0.0.9:6379"'])
    with pytest.raises(NeuroevoError) as caught:
        evolve(recipe, out=tmp_path / "run")
    message = str(caught.value)
    assert message.startswith("run.ray_address: cannot start or reach the Ray cluster at ")
    assert "'10.0.0.9:6379'" in message and "\n" not in message


LAUNCHER = textwrap.dedent("""
    import os, signal, sys
    from neuroevo.search import islands
    from neuroevo.cli import main

    at = int(sys.argv[1])
    calls = [0]
    real_unpack = islands._unpack

    def unpack(packed):  # the driver loads the islands' states of a generation one by one
        calls[0] += 1
        if calls[0] == at:  # killed with island 0 advanced and island 1 not
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unpack(packed)

    islands._unpack = unpack
    sys.exit(main(sys.argv[2:]))
""")

# a user mutation whose first call kills the Ray worker running it (Ray then retries the task)
KILLER = textwrap.dedent("""
    import os
    from pathlib import Path

    def die_once(genome, rng, space):
        marker = Path(os.environ["NEUROEVO_TEST_MARKER"])
        if not marker.exists():
            marker.write_text("killed")
            os._exit(1)
        genome.graph["lr"] = max(genome.graph["lr"] / 2, space.lr_min)
        return genome
""")


def _cli(tmp_path, *args, at=0, env=None):
    """The CLI in its own session; whatever of its Ray cluster outlives it is stopped after."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    proc = subprocess.Popen(
        [sys.executable, str(launcher), str(at), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        try:  # a SIGKILLed driver leaves its Ray processes behind
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@needs_ray
@pytest.mark.slow
def test_ray_and_local_give_the_same_run_and_a_killed_driver_resumes_it(tiny_recipe, tmp_path):
    """On a real local Ray cluster: the same summary and history as the local backend; SIGKILL
    of the driver mid-generation (island 0's new state loaded, island 1's not), then resume,
    gives the same run again."""
    source = tiny_recipe(ISLANDS)
    args = ["--quiet", "--set", "evolution.generations=4"]
    ray_args = [*args, "--set", 'run.backend="ray"']
    assert main(["evolve", str(source), "--out", str(tmp_path / "local"), *args]) == 0
    killed = _cli(tmp_path, "evolve", source, "--out", tmp_path / "ray", *ray_args, at=6)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert checkpoint.load_latest(tmp_path / "ray").generation == 1  # generation 3 was under way
    resumed = _cli(tmp_path, "resume", tmp_path / "ray", "--quiet")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")


@needs_ray
@pytest.mark.slow
def test_a_worker_that_dies_is_retried_and_the_run_goes_on(tiny_recipe, tmp_path):
    (tmp_path / "killer_ops.py").write_text(KILLER)
    extra = ISLANDS + '\n[mutations]\n"killer_ops:die_once" = 1.0\nidentity = 1.0\n'
    source = tiny_recipe(extra)
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "NEUROEVO_TEST_MARKER": str(tmp_path / "marker"),
    }
    args = ["--quiet", "--set", "evolution.generations=3"]
    done = _cli(tmp_path, "evolve", source, "--out", tmp_path / "ray", *args,
                "--set", 'run.backend="ray"', env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "marker").read_text() == "killed"  # a worker did die
    local = _cli(tmp_path, "evolve", source, "--out", tmp_path / "local", *args, env=env)
    assert local.returncode == 0, local.stderr.decode()
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
