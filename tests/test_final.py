"""The end of a run: the best net or an ensemble, chosen on validation; refit."""

import json

import numpy as np
import pytest
import torch

import neuroevo
from neuroevo import final, network, tasks
from neuroevo import genome as G
from neuroevo import recipe as R
from neuroevo.cli import main
from neuroevo.evolution import Champion, Evolution


def _bits_task(seed=0, n=600):
    """Two bits, each the sign of one input."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return tasks.from_arrays("signs", "bits", x, (x > 0).astype(float), seed=seed)


def _sign_reader(reads, lr=1e-9):
    """A net whose output j is 10 x_i for each (i, j) in ``reads`` and 0 (a coin) elsewhere."""
    genome = G.mlp(2, 2, [4], "relu", lr=lr)
    genome.graph.update(id=len(reads) * 10 + sum(i for i, _ in reads), parent=None, born=0)
    net = network.build(genome, generator=torch.Generator())
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    hidden = state["weight.in__h1"]
    hidden[0, 0], hidden[1, 0], hidden[2, 1], hidden[3, 1] = 1.0, -1.0, 1.0, -1.0
    for i, j in reads:  # relu(x_i) - relu(-x_i) = x_i
        state["weight.h1__out"][j, 2 * i] = 10.0
        state["weight.h1__out"][j, 2 * i + 1] = -10.0
    return genome, state


def _evolution(task, champions, **evolution):
    recipe = R.from_dict(
        {
            "task": {"name": "logbits"},
            "evolution": {"final_steps": 0, "final": "ensemble", **evolution},
            "run": {"device": "cpu"},
        }
    )
    evo = Evolution(recipe, task)
    evo.hall_of_fame.update(
        [Champion(g, s, 0, 1.0 - 0.01 * n) for n, (g, s) in enumerate(champions)]
    )
    return evo


def _flipped_test(task):
    """The same task with every test label wrong: a choice that looked at test would change."""
    return tasks.Task(
        task.name, task.kind, *task.train, *task.valid, task.x_test, 1 - task.y_test,
        preprocessing=task.preprocessing,
    )  # fmt: skip


@pytest.mark.parametrize("flip", [False, True])
def test_an_ensemble_better_on_validation_is_kept(flip, monkeypatch):
    task = _bits_task()
    task = _flipped_test(task) if flip else task
    first, second = _sign_reader([(0, 0)]), _sign_reader([(1, 1)])  # each reads one bit
    scored = []
    real_score = final.score
    monkeypatch.setattr(final, "score", lambda *a: scored.append(a) or real_score(*a))
    done = final.finish(_evolution(task, [first, second]))
    assert done.choice == "ensemble" and len(done.members) == 2
    assert done.candidates["ensemble"] > done.candidates["best"] + 0.15  # both bits, not one
    assert done.validation_metric == done.candidates["ensemble"] > 0.98
    w = done.weights
    assert (w >= 0).all() and torch.allclose(w.sum(dim=0), torch.ones(2, dtype=w.dtype))
    for member, row in zip(done.members, w):  # each bit from the net that reads it
        assert row[0 if member.id == first[0].graph["id"] else 1] > 0.9
    assert len(scored) == 1 and scored[0][1] is w  # test scored once, for the kept model only
    assert (done.test_metric < 0.05) if flip else (done.test_metric > 0.95)


def test_an_ensemble_no_better_on_validation_is_dropped():
    task = _bits_task()
    both, coin = _sign_reader([(0, 0), (1, 1)]), _sign_reader([])
    done = final.finish(_evolution(task, [both, coin]))
    assert done.choice == "best" and done.weights is None and len(done.members) == 1
    assert done.members[0].id == both[0].graph["id"]
    assert done.candidates["ensemble"] <= done.candidates["best"]
    assert done.validation_metric == done.candidates["best"]


def test_refit_trains_on_training_and_validation_rows_never_test(monkeypatch):
    task = _bits_task()
    seen = []
    real_batches = final._batches
    monkeypatch.setattr(
        final, "_batches", lambda evo, data: seen.append(data) or real_batches(evo, data)
    )
    genome, state = _sign_reader([(0, 0)], lr=1e-2)
    done = final.finish(
        _evolution(task, [(genome, state)], final="best", refit=True, final_steps=40)
    )
    (trained, train_y), (refit, refit_y) = seen
    assert torch.equal(trained, task.x_train)
    assert torch.equal(refit, torch.cat([task.x_train, task.x_valid]))
    assert torch.equal(refit_y, torch.cat([task.y_train, task.y_valid]))
    test_rows = {tuple(r) for r in task.x_test.tolist()}
    assert not test_rows & {tuple(r) for r in refit.tolist()}
    assert done.refit == {"rows": 600 - len(task.x_test), "steps": [done.members[0].best_step]}
    assert done.members[0].best_step > 0
    assert not torch.equal(done.members[0].state["weight.h1__out"], state["weight.h1__out"])


ENSEMBLE = """
[task]
name = "digits"

[population]
size = 6

[evolution]
generations = 2
final_steps = 100
final = "ensemble"
ensemble_size = 3

[mixer]
steps = 60

[run]
seed = 1
report = false
"""


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_an_ensemble_run_directory_loads_predicts_exports_and_resumes(tmp_path, capsys):
    datasets = pytest.importorskip("sklearn.datasets", reason="digits comes from scikit-learn")
    (tmp_path / "e.toml").write_text(ENSEMBLE)
    run = tmp_path / "run"
    assert main(["evolve", str(tmp_path / "e.toml"), "--out", str(run), "--quiet"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["choice"] == "ensemble", summary["final"]
    assert len(summary["final"]["members"]) == 3
    model = neuroevo.load(run)
    assert len(model.nets) == 3 and "an ensemble of 3" in repr(model)
    digits = datasets.load_digits()  # its test rows, raw: split row numbers as the run split
    rows = tasks.from_arrays(
        "rows", "classes", np.arange(len(digits.target)), digits.target, seed=1, standardize=False
    )
    raw = digits.data[rows.x_test[:, 0].long().numpy()]
    predicted = model.predict(raw)
    truth = np.array([str(c) for c in digits.target_names])[rows.y_test.numpy()]
    expected = summary["best"]["test_metric"]
    assert (predicted == truth).sum() == round(expected * len(truth))
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    scripted = torch.jit.load(str(run / "best" / "model.pt"))
    x = torch.tensor(raw, dtype=torch.float32)
    assert np.allclose(scripted(x).numpy(), model.predict_proba(raw), atol=1e-5)
    capsys.readouterr()
    assert main(["resume", str(run), "--set", "evolution.generations=3", "--quiet"]) == 0
    again = json.loads((run / "summary.json").read_text())
    assert again["generations_completed"] == 3 and neuroevo.load(run) is not None
