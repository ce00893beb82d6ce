"""Using the result: neuroevo.load, `neuroevo predict`, `neuroevo export`, `neuroevo show`."""

import csv
import json

import numpy as np
import pytest
import torch

import neuroevo
from neuroevo import report, tasks
from neuroevo.cli import main

ROWS = 240
RECIPE = """
[task]
name = "csv"
path = "data.csv"
target = "{target}"
kind = "{kind}"
features = ["a", "b", "c"]

[space]
width_max = 32
layers_max = 2

[population]
size = 4

[evolution]
generations = 2
final_steps = 150

[mixer]
steps = 60

[run]
seed = 5
report = false
"""


def _write_data(path, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(ROWS, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -50.0]
    if kind == "classes":
        y = np.where(x[:, 0] + x[:, 1] / 10 > 0.5, "yes", np.where(x[:, 2] > -50, "maybe", "no"))
    else:  # in units far from standardised ones
        y = 1000.0 + 40.0 * x[:, 0] + 3.0 * x[:, 1] + rng.normal(size=ROWS)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "c", "target", "b", "a"])  # features out of the recipe's order
        for i in range(ROWS):
            out.writerow(
                [
                    f"r{i}",
                    *(repr(float(v)) for v in (x[i, 2],)),
                    str(y[i]),
                    repr(float(x[i, 1])),
                    repr(float(x[i, 0])),
                ]
            )
    return x, y


@pytest.fixture(params=["classes", "regression"])
def finished(request, tmp_path):
    kind = request.param
    x, y = _write_data(tmp_path / "data.csv", kind)
    (tmp_path / "r.toml").write_text(RECIPE.format(target="target", kind=kind))
    run = tmp_path / "run"
    assert main(["evolve", str(tmp_path / "r.toml"), "--out", str(run), "--quiet"]) == 0
    return kind, run, x, y


def _test_rows(kind, y):
    """The rows the run held out for its test, found by splitting row numbers the same way."""
    if kind == "classes":
        names = sorted(set(y))
        labels = np.array([names.index(v) for v in y])
    else:
        labels = y
    split = tasks.from_arrays(
        "rows", kind, np.arange(ROWS, dtype=np.float64), labels, seed=5, standardize=False
    )
    return split.x_test[:, 0].long().numpy()


def _metric(kind, predicted, truth):
    if kind == "classes":
        return float(np.mean(predicted == truth))
    truth = truth.astype(np.float64)
    ss_res = ((truth - predicted) ** 2).sum()
    return float(1 - ss_res / ((truth - truth.mean()) ** 2).sum())


def test_predict_on_the_test_rows_reproduces_the_test_metric(finished, tmp_path):
    kind, run, x, y = finished
    test = _test_rows(kind, y)
    lines = (tmp_path / "data.csv").read_text().splitlines()
    (tmp_path / "test.csv").write_text("\n".join([lines[0], *(lines[1 + i] for i in test)]) + "\n")
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(run), str(tmp_path / "test.csv"), "--out", str(out),
                 "--keep", "id", "--keep", "target"]) == 0  # fmt: skip
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["id"] for r in table] == [f"r{i}" for i in test]
    column = [r["predicted_target"] for r in table]
    predicted = np.array(column) if kind == "classes" else np.array(column, dtype=np.float64)
    truth = np.array([r["target"] for r in table])
    summary = json.loads((run / "summary.json").read_text())
    expected = summary["best"]["test_metric"]
    if kind == "classes":
        assert set(predicted) <= {"yes", "no", "maybe"}  # the data's own labels
        # the same rows right as the run counted (it averages in float32)
        assert (predicted == truth).sum() == round(expected * len(truth))
        probabilities = np.array([[float(r[f"p({c})"]) for c in ("maybe", "no", "yes")]
                                  for r in table])  # fmt: skip
        assert np.allclose(probabilities.sum(axis=1), 1.0)
    else:  # R² in the targets' units equals the run's, measured on standardised targets
        assert _metric(kind, predicted, truth) == pytest.approx(expected, abs=1e-5)
        assert abs(predicted.mean() - 1000) < 100  # in the data's units
    # neuroevo.load on the same raw rows agrees with the command
    model = neuroevo.load(run)
    same = model.predict(x[test])
    if kind == "classes":
        assert list(same) == list(predicted)
    else:
        assert np.array_equal(same, predicted)  # the CSV holds the floats exactly


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_the_model_is_a_module_and_exports_give_its_outputs(finished, tmp_path):
    kind, run, x, _ = finished
    model = neuroevo.load(run)
    assert isinstance(model, torch.nn.Module) and model.features == ["a", "b", "c"]
    raw = torch.tensor(x, dtype=torch.float32)
    ours = model(raw).numpy()
    if kind == "classes":
        assert np.allclose(ours, model.predict_proba(x), atol=1e-5)
    else:
        assert np.allclose(ours[:, 0], model.predict(x), rtol=1e-5)
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    scripted = torch.jit.load(str(run / "best" / "model.pt"))
    assert np.allclose(scripted(raw[:7]).numpy(), ours[:7], atol=1e-5)  # any batch size
    ort = pytest.importorskip("onnxruntime", reason="ONNX export checked where onnxruntime is")
    pytest.importorskip("onnxscript", reason="the ONNX exporter needs onnxscript")
    out = tmp_path / "m.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out))
    got = session.run(None, {"features": x[:11].astype(np.float32)})[0]
    assert np.allclose(got, ours[:11], atol=1e-5)


@pytest.fixture
def classes_run(tmp_path):
    _write_data(tmp_path / "data.csv", "classes")
    (tmp_path / "r.toml").write_text(RECIPE.format(target="target", kind="classes"))
    run = tmp_path / "run"
    assert main(["evolve", str(tmp_path / "r.toml"), "--out", str(run), "--quiet"]) == 0
    return run


def _one_line_exit_2(capsys, args, *needles):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def test_bad_prediction_input_is_one_line(classes_run, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,c\n1,2\n")
    _one_line_exit_2(capsys, ["predict", str(classes_run), str(bad)], "no column 'b'")
    bad.write_text("a,b,c\n1,2,3\n4,five,6\n")
    _one_line_exit_2(
        capsys,
        ["predict", str(classes_run), str(bad)],
        "line 3, column 'b': 'five' is not a number",
    )
    _one_line_exit_2(
        capsys, ["predict", str(classes_run), str(bad), "--keep", "id"], "no column 'id'"
    )
    npz = tmp_path / "x.npz"
    np.savez(npz, x=np.zeros((4, 2)))
    _one_line_exit_2(capsys, ["predict", str(classes_run), str(npz)], "rows of 3 features")
    np.savez(npz, x=np.zeros((4, 3)))
    assert main(["predict", str(classes_run), str(npz)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "target,p(maybe),p(no),p(yes)" and len(printed) == 5


def test_an_unfinished_or_older_run_says_what_is_missing(classes_run, tmp_path, capsys):
    (classes_run / "best" / "model.json").unlink()
    _one_line_exit_2(
        capsys,
        ["predict", str(classes_run), str(tmp_path / "data.csv")],
        "no best/model.json",
        "standardised",
    )
    import shutil

    shutil.rmtree(classes_run / "best")
    _one_line_exit_2(capsys, ["export", str(classes_run), "--format", "torchscript"],
                     "has not finished")  # fmt: skip


def test_a_tampered_model_description_is_one_line(classes_run, capsys):
    card = classes_run / "best" / "model.json"
    data = json.loads(card.read_text())
    data["x_std"][1] = 0
    card.write_text(json.dumps(data))
    _one_line_exit_2(capsys, ["export", str(classes_run), "--format", "torchscript"],
                     "model.json: x_std must be 3 finite numbers, each above 0")  # fmt: skip


def test_show_summarises_a_finished_and_an_unfinished_run(classes_run, tmp_path, capsys):
    assert main(["show", str(classes_run)]) == 0
    text = capsys.readouterr().out
    summary = json.loads((classes_run / "summary.json").read_text())
    assert summary["best"]["signature"] in text and "finished: 2 generations" in text
    assert f"test accuracy {summary['best']['test_metric']:.4f}" in text
    refit = summary["final"]["refit"]  # the default on a few hundred rows: a bagged refit
    assert refit["folds"] == len(refit["steps"]) == len(refit["fold_metrics"]) == 5
    said = f"5 copies trained from fresh weights, each on 4 of 5 folds of the {refit['rows']:,}"
    assert f"final model: the best net, bagged: {said}" in text
    assert f"(out-of-fold {refit['out_of_fold_metric']:.4f})" in text
    (classes_run / "summary.json").unlink()
    assert main(["show", str(classes_run), "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "unfinished: 2 generation(s)" in text and "top 3 by validation accuracy" in text
    _one_line_exit_2(capsys, ["show", str(tmp_path / "nowhere")], "no such run directory")


def test_show_says_what_the_final_model_is():
    ensemble = {"choice": "ensemble", "members": [7, 3], "refit": None}
    assert report.final_model({"final": ensemble}) == (
        "an ensemble of 2 nets (#7, #3), after their final training"
    )
    refit = {"choice": "best", "members": [7], "refit": {"rows": 1438, "steps": [2400]}}
    assert report.final_model({"final": refit}) == (
        "the best net, refit on 1,438 training and validation rows for 2,400 steps"
    )
    bagged = {"rows": 142, "folds": 2, "steps": [100, 300], "out_of_fold_metric": 0.97887}
    assert report.final_model({"final": {"choice": "best", "members": [7], "refit": bagged}}) == (
        "the best net, bagged: 2 copies trained from fresh weights, each on 1 of 2 folds of the "
        "142 training and validation rows and stopped by the fold it left out (out-of-fold 0.9789)"
    )
    unmoved = {"choice": "best", "members": [7], "refit": {"rows": 1438, "steps": [0]}}
    assert "with its search weights: no step of final training beat them on validation" in (
        report.final_model({"final": unmoved})
    )


def test_logbits_loads_with_its_bits_as_they_are(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    assert main(["evolve", str(tiny_recipe()), "--out", str(run), "--quiet"]) == 0
    model = neuroevo.load(run)
    task = tasks.build("logbits", 3, n_train=800, n_valid=400, n_test=400)
    bits = model.predict(task.x_test)
    assert bits.shape == (400, 16) and set(np.unique(bits)) <= {0, 1}
    summary = json.loads((run / "summary.json").read_text())
    accuracy = float((bits == task.y_test.numpy()).mean())
    assert accuracy == pytest.approx(summary["best"]["test_metric"], abs=1e-6)
