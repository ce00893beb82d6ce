"""neuroevo verify: a generation trained in the mixer and alone, from the same start."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuroevo import recipe as R
from neuroevo import tasks
from neuroevo.cli import main
from neuroevo.genome import graph as G
from neuroevo.results.records import noise_note
from neuroevo.search import verify
from neuroevo.search.evolution import Evolution
from neuroevo.search.individuals import Individual
from neuroevo.storage import rundir


@pytest.fixture
def finished(tiny_recipe, tmp_path):
    out = tmp_path / "run"
    assert main(["evolve", str(tiny_recipe()), "--out", str(out), "--quiet"]) == 0
    return out


def test_verify_writes_what_it_prints_and_replays_the_run_exactly(finished, capsys):
    assert main(["verify", str(finished), "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((finished / "verify.json").read_text())
    assert printed == written
    assert written["generation"] == 1  # the last of the tiny recipe's 2, counted from 0
    for key in ("kendall_fitness", "spearman_fitness", "regret", "top3_overlap", "time_ratio",
                "kendall_ceiling", "spearman_ceiling", "kendall_params"):  # fmt: skip
        assert key in written
    # the mixer run starts from the generation's own start weights: it is the run's, exactly
    history = [r for r in rundir.read_history(finished) if r["generation"] == 1]
    assert {r["id"]: r["fitness"] for r in history} == {
        n["id"]: n["mixer_fitness"] for n in written["nets"]
    }
    # the table holds the same figures
    assert main(["verify", str(finished), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert f"{written['kendall_fitness']:+.3f}" in table
    assert f"top-3 overlap {written['top3_overlap']}/3" in table
    # the scatter of fitness against the alone metric, and the report shows both
    with Image.open(finished / "plots" / "verify.png") as image:
        assert image.format == "PNG"
    assert main(["report", str(finished)]) == 0
    page = (finished / "report.html").read_text()
    assert "alt='verify.png'" in page and f"{written['kendall_fitness']:+.3f}" in page
    assert f"agree at tau {written['kendall_ceiling']:+.3f} (the noise ceiling)" in page
    assert -1 <= written["kendall_params"] <= 1
    # how noisy the alone ranking itself is: the validation rows every metric is taken on
    assert written["valid_rows"] > 0
    assert f"validation rows {written['valid_rows']}: one row is" in table
    assert f"Validation rows: {written['valid_rows']} (one row is" in page


def test_a_low_noise_ceiling_is_called_noise():
    assert "mostly noise" in noise_note(36, 0.3)
    assert "mostly noise" not in noise_note(2000, 0.9)
    assert noise_note(2000, None) == "one row is 0.0005 of the split"


def test_a_recipe_verifies_the_generation_a_run_of_it_starts_with(finished, tiny_recipe, capsys):
    from_recipe = verify.verify(tiny_recipe())
    from_run = verify.verify(finished, generation=0)
    assert [n.mixer_fitness for n in from_recipe.nets] == [n.mixer_fitness for n in from_run.nets]
    assert [n.alone_metric for n in from_recipe.nets] == [n.alone_metric for n in from_run.nets]


A = np.array([[0.5, -1.0, 2.0, 0.0], [1.5, 0.3, -0.7, 1.0]], dtype=np.float32)
B = np.array([0.2, -0.4], dtype=np.float32)


def test_a_planted_net_wins_both_ways_and_the_rankings_agree(tiny_recipe):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1500, 4)).astype(np.float32)
    task = tasks.from_arrays("linear", "regression", x, x @ A.T + B, seed=0, standardize=False)
    evo = Evolution(R.load(tiny_recipe()), task)
    population = []
    for i, width in enumerate((1, 2, None, 3, 1, 2)):
        if width is None:  # the exact target map
            genome = G.mlp(4, 2, [], lr=1e-2)
            start = {"weight.in__out": torch.tensor(A), "bias.out": torch.tensor(B)}
        else:  # too narrow, through a squashing layer: cannot fit it
            genome = G.mlp(4, 2, [width], "sigmoid", lr=1e-3 * (i + 1))
            start = None
        genome.graph.update(id=i, born=0)
        population.append(Individual(genome, start))
    evo.population = population
    report = verify.compare(evo, steps=120, source="planted")
    assert report.mixer_pick == report.alone_best == 2
    assert report.same_winner and report.regret == 0.0
    assert report.kendall_fitness > 0 and report.kendall_metric > 0
    # the default rule's fitness is the weight each net earned on the validation split: it
    # ranks exactly as the nets' own validation metric at the end of the mixer run
    assert report.kendall_fitness == report.kendall_metric
    # the yardsticks: alone again on another batch order is another run (other metrics) that
    # still ranks the planted net first; the parameter count ranks it last, the mixer first
    assert any(n.again_metric != n.alone_metric for n in report.nets)
    again = max(report.nets, key=lambda n: n.again_metric)
    assert again.id == 2 and report.kendall_ceiling > 0 and -1 <= report.spearman_ceiling <= 1
    assert report.nets[2].params == 10 and report.kendall_params < report.kendall_fitness
    assert "noise ceiling, alone vs alone again +" in report.table()
    once = verify.compare(evo, steps=120, source="planted", ceiling=False)
    assert once.kendall_ceiling is None and "n/a (--no-ceiling)" in once.table()
    assert once.kendall_fitness == report.kendall_fitness  # the same mixer run, replayed


@pytest.mark.parametrize(
    "args, message",
    [
        (["nowhere"], "no such run directory or recipe file"),
        (["{run}", "--generation", "9"], "generation 9 does not exist"),
        (["{run}", "--generation", "0"], "--generation counts from 1"),
        (["{run}/checkpoints"], "not a run directory"),
    ],
)
def test_bad_targets_are_one_line_and_exit_2(finished, args, message, capsys):
    args = [a.replace("{run}", str(finished)) for a in args]
    assert main(["verify", *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (finished / "verify.json").exists()


def test_a_generation_whose_checkpoint_is_gone_says_which_are_kept(tiny_recipe, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--set", "evolution.generations=4", "--set", "run.keep_checkpoints=1"]
    assert main(["evolve", str(tiny_recipe()), "--out", str(out), "--quiet", *args]) == 0
    assert main(["verify", str(out), "--generation", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint of generation 1 is kept (kept: 4)" in err and err.count("\n") == 1
    assert main(["verify", str(out), "--generation", "5", "--quiet"]) == 0  # the next one


def test_an_interrupt_leaves_the_run_directory_as_it_was(finished):
    before = sorted(p.name for p in finished.iterdir())

    def interrupt(stage, done, total):
        if stage == "alone":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        verify.verify(finished, progress=interrupt)
    assert sorted(p.name for p in finished.iterdir()) == before
