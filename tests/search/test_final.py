"""The end of a run: the best net or an ensemble, chosen on validation; refit."""

import json

import numpy as np
import pytest
import torch

import neuroevo
from neuroevo import recipe as R
from neuroevo import tasks
from neuroevo.cli import main
from neuroevo.genome import graph as G
from neuroevo.search import final
from neuroevo.search.evolution import Evolution
from neuroevo.search.individuals import Champion
from neuroevo.training import ensemble, kinds, network


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


def _evolution(task, champions, **keys):
    recipe = R.from_dict(
        {
            "task": {"name": "logbits"},
            "final": {"final_steps": 0, "final": "ensemble", "folds": 0, **keys},
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
    seen = _recording_batches(monkeypatch)
    genome, state = _sign_reader([(0, 0)], lr=1e-2)
    done = final.finish(
        _evolution(
            task, [(genome, state)], final="best", refit=True, final_steps=40, refit_steps="best"
        )
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

[final]
final_steps = 100
final = "ensemble"
ensemble_size = 3
folds = 0

[mixer]
steps = 60

[run]
seed = 1
report = false
"""


@pytest.mark.slow
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
    assert again["generations_completed"] == 3
    resumed = neuroevo.load(run)  # the model written after resume scores what its summary says
    hits = (resumed.predict(raw) == truth).sum()
    assert hits == round(again["best"]["test_metric"] * len(truth))


def _recording_batches(monkeypatch):
    """Every ``(x, y)`` the end of a run draws training batches from, one per net trained, in
    order."""
    seen = []
    real = final.cohort.train

    def train(jobs, *, data, **settings):
        seen.extend((data[0][job.rows], data[1][job.rows]) for job in jobs)
        return real(jobs, data=data, **settings)

    monkeypatch.setattr(final.cohort, "train", train)
    return seen


def test_a_bagged_refit_trains_fresh_copies_each_on_the_other_folds_never_test(monkeypatch):
    task = _bits_task()
    seen = _recording_batches(monkeypatch)
    genome, state = _sign_reader([(0, 0)], lr=1e-2)
    evo = _evolution(task, [(genome, state)], final="best", folds=3, final_steps=60)
    done = final.finish(evo)
    rows = torch.cat([task.x_train, task.x_valid])
    assert len(seen) == 1 + 3  # the final training, then one copy per fold
    held_out = []
    for x, _ in seen[1:]:  # each copy trains on two folds: the rows it leaves out are the third
        trained = {tuple(r) for r in x.tolist()}
        held_out.append({tuple(r) for r in rows.tolist()} - trained)
        assert len(x) + len(held_out[-1]) == len(rows)
    assert set().union(*held_out) == {tuple(r) for r in rows.tolist()}  # each row left out once
    assert sum(len(h) for h in held_out) == len(rows)
    test_rows = {tuple(r) for r in task.x_test.tolist()}
    assert not test_rows & set().union(*({tuple(r) for r in x.tolist()} for x, _ in seen))
    # the model: three copies of the net, from fresh weights, mixed equally
    assert done.choice == "best" and [m.id for m in done.members] == [genome.graph["id"]] * 3
    assert torch.equal(done.weights, torch.full((3, 2), 1 / 3, dtype=torch.float64))
    assert all(
        not torch.equal(m.state["weight.h1__out"], state["weight.h1__out"]) for m in done.members
    )
    assert done.summary()["members"] == [genome.graph["id"]]
    refit = done.refit
    assert refit["rows"] == len(rows) and refit["folds"] == 3 and len(refit["steps"]) == 3
    # the out-of-fold metric: each row scored by the copy that never trained on it
    right = 0.0
    for member, rows_out in zip(done.members, held_out):
        index = [i for i, r in enumerate(rows.tolist()) if tuple(r) in rows_out]
        y = torch.cat([task.y_train, task.y_valid])[index]
        net = network.inherit(member.genome, member.state, generator=torch.Generator())
        with torch.no_grad():
            right += kinds.get("bits").metric(net(rows[index]), y) * len(index)
    assert refit["out_of_fold_metric"] == pytest.approx(right / len(rows))
    # the test metric is the mixture's, and each copy's own fold metric is recorded
    with torch.no_grad():
        outs = torch.stack([network.inherit(m.genome, m.state)(task.x_test) for m in done.members])
    mixed = ensemble.outputs(outs, done.weights, "bits")
    assert done.test_metric == pytest.approx(kinds.get("bits").score(mixed, task.y_test))
    assert len(refit["fold_metrics"]) == 3


def test_a_bagged_ensemble_shares_each_nets_weight_among_its_copies():
    task = _bits_task()
    first, second = _sign_reader([(0, 0)]), _sign_reader([(1, 1)])
    done = final.finish(_evolution(task, [first, second], folds=2, final_steps=20))
    assert done.choice == "ensemble" and len(done.members) == 4
    assert [m.id for m in done.members][::2] == [m.id for m in done.members][1::2]
    w = done.weights
    assert torch.equal(w[0], w[1]) and torch.equal(w[2], w[3])
    assert (w >= 0).all() and torch.allclose(w.sum(dim=0), torch.ones(2, dtype=w.dtype))
    assert done.summary()["members"] == [done.members[0].id, done.members[2].id]


def test_more_rows_than_folds_max_rows_refit_from_the_search_weights(monkeypatch):
    task = _bits_task()
    seen = _recording_batches(monkeypatch)
    genome, state = _sign_reader([(0, 0)], lr=1e-2)
    rows = len(task.x_train) + len(task.x_valid)
    evo = _evolution(
        task, [(genome, state)], final="best", folds=5, folds_max_rows=rows - 1, final_steps=40
    )
    done = final.finish(evo)
    assert len(seen) == 2 and done.weights is None and "folds" not in done.refit


def test_folds_hold_their_share_of_each_class():
    y = torch.tensor([0] * 50 + [1] * 10 + [2] * 3)
    fold = final.fold_of(y, 5, "classes", torch.Generator().manual_seed(0))
    for label, n in ((0, 50), (1, 10), (2, 3)):
        counts = torch.bincount(fold[y == label], minlength=5)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    sizes = torch.bincount(fold, minlength=5)
    assert sizes.max() - sizes.min() <= 1
    again = final.fold_of(y, 5, "classes", torch.Generator().manual_seed(0))
    assert torch.equal(fold, again)  # the run's seed decides the folds


def test_no_final_steps_no_bagged_copies():
    task = _bits_task()
    genome, state = _sign_reader([(0, 0)], lr=1e-2)
    done = final.finish(_evolution(task, [(genome, state)], final="best", folds=5))
    assert done.weights is None and done.refit["steps"] == [0]  # the search weights, kept
    assert torch.equal(done.members[0].state["weight.h1__out"], state["weight.h1__out"])


@pytest.mark.parametrize(
    ("patience", "rule", "steps"),
    [(0, "best", 0), (0, "settled", 100), (2, "settled", 10)],
)
def test_a_flat_final_training_stops_on_patience_and_the_refit_takes_its_settled_steps(
    patience, rule, steps
):
    """A net whose validation metric never moves (its learning rate is tiny): the best check
    is the start, so ``refit_steps = "best"`` refits for 0 steps; ``"settled"`` takes the last
    check within noise of it, which is the end of final training, or, with patience, the
    check where patience ran out (two checks of 20 over 100 steps: step 10)."""
    task = _bits_task()
    genome, state = _sign_reader([(0, 0), (1, 1)], lr=1e-6)  # every bit right, and stays so
    evo = _evolution(
        task, [(genome, state)], final="best", refit=True, folds=0, final_steps=100,
        patience=patience, refit_steps=rule,
    )  # fmt: skip
    done = final.finish(evo)
    assert done.refit["steps"] == [steps]
