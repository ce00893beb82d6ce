import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import neuroevo
from neuroevo import tasks
from neuroevo.cli import main
from neuroevo.genome import graph as G
from neuroevo.storage import rundir
from neuroevo.training import network


def run_cli(*args):
    return main([str(a) for a in args])


def test_smoke_run_writes_every_output(tiny_recipe, tmp_path, capsys):
    out = tmp_path / "run"
    bagged = "final.folds=5"  # the default; the tiny recipe turns it off
    assert run_cli("evolve", tiny_recipe(), "--out", out, "--set", bagged) == 0
    printed = capsys.readouterr().out
    assert printed.count("gen ") == 2 and "bit_accuracy best" in printed
    assert "test " in printed.splitlines()[-1]

    recipe_text = (out / "recipe.toml").read_text()
    assert "generations = 2" in recipe_text and f'out = "{out}"' in recipe_text

    lines = rundir.read_history(out)
    assert len(lines) == 12
    for key in (
        "generation",
        "id",
        "parent",
        "mutation",
        "signature",
        "params",
        "fitness",
        "validation_metric",
    ):
        assert all(key in line for line in lines), key

    summary = rundir.read_summary(out)
    assert summary["metric"] == "bit_accuracy"
    assert summary["generations_completed"] == 2 and summary["seed"] == 3
    assert summary["wall_seconds"] > 0
    best = summary["best"]
    for key in ("id", "signature", "genome", "validation_metric", "test_metric"):
        assert key in best
    assert best["id"] in {line["id"] for line in lines}

    # the saved model is usable on its own and scores what the summary says: by default the
    # refit on these 1,200 rows is bagged, five copies of the best net mixed equally
    genome = G.from_json((out / "best" / "genome.json").read_text())
    assert G.signature(genome) == best["signature"]
    net = network.build(genome)
    net.load_state_dict(load_file(str(out / "best" / "weights.safetensors")))  # the first copy
    model = neuroevo.load(out)
    assert len(model.nets) == summary["final"]["refit"]["folds"] == 5
    assert all(G.equal(g, genome) for g in model.genomes)
    task = tasks.build("logbits", 3, n_train=800, n_valid=400, n_test=400)
    test_metric = float((model.predict(task.x_test) == task.y_test.numpy()).mean())
    assert test_metric == pytest.approx(best["test_metric"])
    with torch.no_grad():  # five different copies, whose probabilities are averaged
        z = (torch.as_tensor(task.x_test) - model.x_mean) / model.x_std
        copies = [torch.sigmoid(n(z)).double() for n in model.nets]
    assert not any(torch.equal(copies[0], c) for c in copies[1:])
    mean = torch.stack(copies).mean(dim=0).numpy()
    np.testing.assert_allclose(model.predict_proba(task.x_test), mean, atol=1e-5)


@pytest.mark.parametrize(
    "extra, overrides, message",
    [
        ("[mixer]\nstepz = 3\n", [], "mixer.stepz: unknown key (did you mean mixer.steps?)"),
        ('[mixer]\nsteps = "x"\n', [], 'mixer.steps: expected an integer, got "x"'),
        ("[mutations]\nwiden = 1.0\n", [], "unknown mutation 'widen'"),
        ("", ["--set", "evolution.generations=0"], "evolution.generations: must be at least 1"),
        ("", ["--set", "nonsense"], "--set nonsense: expected section.key=value"),
    ],
)
def test_bad_recipes_exit_2_with_one_line(tiny_recipe, tmp_path, capsys, extra, overrides, message):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[task]\nname = "logbits"\n' + extra)
    code = run_cli("evolve", recipe, "--out", tmp_path / "r", *overrides)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("neuroevo: error: ")
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_missing_recipe_and_bad_usage_exit_2(tmp_path, capsys):
    assert run_cli("evolve", tmp_path / "missing.toml") == 2
    assert "missing.toml: no such recipe file" in capsys.readouterr().err
    assert run_cli("evolve") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the following arguments are required: recipe" in err
    assert run_cli("frobnicate") == 2


def test_existing_run_directory_is_refused_then_overwritten(tiny_recipe, tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli("evolve", tiny_recipe(), "--out", out, "--quiet") == 0
    before = (out / "history.jsonl").read_text()
    assert run_cli("evolve", tiny_recipe(), "--out", out, "--quiet") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "history.jsonl").read_text() == before  # nothing lost
    assert run_cli("evolve", tiny_recipe(), "--out", out, "--quiet", "--overwrite") == 0


def test_user_mutation_error_exits_2_naming_it(tiny_recipe, tmp_path, capsys, monkeypatch):
    (tmp_path / "bad_ops.py").write_text(
        "def loop(genome, rng, space):\n    genome.add_edge('out', 'in')\n    return genome\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code = run_cli(
        "evolve",
        tiny_recipe('[mutations]\n"bad_ops:loop" = 1.0\n'),
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    err = capsys.readouterr().err
    assert code == 2 and "mutation 'bad_ops:loop' broke the genome" in err


def test_console_script_runs_as_a_subprocess(tiny_recipe, tmp_path):
    script = Path(sys.executable).parent / "neuroevo"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "neuroevo.cli"]
    done = subprocess.run(
        [*command, "evolve", str(tiny_recipe()), "--out", str(tmp_path / "r"), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "summary.json").exists()
    assert "gen " not in done.stdout  # --quiet
    bad = subprocess.run(
        [*command, "evolve", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("neuroevo: error:")


def test_each_phase_of_the_end_of_a_run_gets_its_own_progress_bar_even_when_it_stops_early():
    from neuroevo.callbacks.progress import Progress

    class Bar:
        def __init__(self, total, desc, **_):
            self.total, self.desc, self.n, self.closed = total, desc, 0, False

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    progress = Progress(quiet=False)
    progress.bars, made = True, []
    progress._bar = lambda **kw: made.append(Bar(**kw)) or made[-1]
    for step in range(1, 5):  # the final training of three nets, stopped early
        progress.on_final_step(step=step, steps=10, nets=3)
    for step in range(1, 11):  # the bagged copies, to the end
        progress.on_final_step(step=step, steps=10, nets=6, refit=True, folds=2)
    for stop in (4, 10):  # the loop engine: one net after another (the first stopped early)
        for step in range(1, stop + 1):
            progress.on_final_step(step=step, steps=10, nets=2, refit=True)
    assert [(b.desc, b.n, b.closed) for b in made] == [
        ("final training (3 nets)", 4, True),
        ("bagged refit (2 folds x 3 net(s))", 10, True),
        ("refit (2 nets)", 4, True),
        ("refit (2 nets)", 10, True),
    ]
