"""Using the result: neuroevo.load, `neuroevo predict`, `neuroevo export`, `neuroevo show`."""

import csv
import json

import numpy as np
import pytest
import torch

import neuroevo
from neuroevo import tasks
from neuroevo.cli import main
from neuroevo.results.show import final_model
from neuroevo.results.summary import Final

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

[final]
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
    assert final_model(Final.from_dict(ensemble)) == (
        "an ensemble of 2 nets (#7, #3), after their final training"
    )
    refit = {"choice": "best", "members": [7], "refit": {"rows": 1438, "steps": [2400]}}
    assert final_model(Final.from_dict(refit)) == (
        "the best net, refit on 1,438 training and validation rows for 2,400 steps"
    )
    bagged = {"rows": 142, "folds": 2, "steps": [100, 300], "out_of_fold_metric": 0.97887}
    assert final_model(Final.from_dict({"choice": "best", "members": [7], "refit": bagged})) == (
        "the best net, bagged: 2 copies trained from fresh weights, each on 1 of 2 folds of the "
        "142 training and validation rows and stopped by the fold it left out (out-of-fold 0.9789)"
    )
    unmoved = {"choice": "best", "members": [7], "refit": {"rows": 1438, "steps": [0]}}
    assert "with its search weights: no step of final training beat them on validation" in (
        final_model(Final.from_dict(unmoved))
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


# ------------------------------------------------------------------ hostile files, --out


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """One finished classes run for the tests below; a test that edits it edits a copy."""
    folder = tmp_path_factory.mktemp("shared")
    _write_data(folder / "data.csv", "classes")
    (folder / "r.toml").write_text(RECIPE.format(target="target", kind="classes"))
    run = folder / "run"
    assert main(["evolve", str(folder / "r.toml"), "--out", str(run), "--quiet"]) == 0
    return run


def _copy(run, tmp_path):
    import shutil

    return shutil.copytree(run, tmp_path / "run")


def _edit_card(run, **changes):
    card = run / "best" / "model.json"
    data = json.loads(card.read_text())
    for key, (i, value) in changes.items():
        data[key][i] = value
    card.write_text(json.dumps(data))


def test_out_writes_through_links_and_pipes_and_names_the_users_path(shared_run, tmp_path, capsys):
    import os
    import threading
    import zipfile

    data = shared_run.parent / "data.csv"
    assert main(["predict", str(shared_run), str(data)]) == 0
    expected = capsys.readouterr().out
    # a named pipe (as /dev/stdout may be) is written to, not replaced by a file
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    got = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_text()), daemon=True)
    reader.start()
    assert main(["predict", str(shared_run), str(data), "--out", str(pipe)]) == 0
    reader.join(timeout=30)
    assert got == [expected] and not pipe.is_file()
    # a link is written through; the user's own X.tmp is left alone
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    link.symlink_to(real)
    (tmp_path / "link.csv.tmp").write_text("mine")
    assert main(["predict", str(shared_run), str(data), "--out", str(link)]) == 0
    assert link.is_symlink() and real.read_text() == expected
    assert (tmp_path / "link.csv.tmp").read_text() == "mine"
    model = tmp_path / "model.pt"
    model_link = tmp_path / "model-link.pt"
    model_link.symlink_to(model)
    export = ["export", str(shared_run), "--format", "torchscript"]
    assert main([*export, "--out", str(model_link)]) == 0
    assert model_link.is_symlink() and zipfile.is_zipfile(model)  # TorchScript is a zip
    capsys.readouterr()
    before = sorted(p.name for p in tmp_path.iterdir())
    # a directory or a missing folder: one line naming the user's path, nothing left behind
    folder = tmp_path / "preds"
    folder.mkdir()
    _one_line_exit_2(capsys, ["predict", str(shared_run), str(data), "--out", str(folder)],
                     f"{folder}: is a directory")  # fmt: skip
    missing = tmp_path / "nowhere" / "x.csv"
    for args in (["predict", str(shared_run), str(data)], export):
        assert main([*args, "--out", str(missing)]) == 2
        err = capsys.readouterr().err
        assert f"{missing}: cannot write" in err and ".tmp" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "preds"])
    assert list(folder.iterdir()) == []


def test_predict_refuses_what_training_refuses(shared_run, tmp_path, capsys):
    run = str(shared_run)
    big = tmp_path / "big.csv"
    big.write_text("a,b,c\n1,2,3\n4,1e300,6\n")
    _one_line_exit_2(
        capsys, ["predict", run, str(big)], f"{big}: line 3, column 'b': 1e+300 is too far from"
    )
    twice = tmp_path / "twice.csv"
    twice.write_text("a,b,c,b\n1,2,3,4\n")
    _one_line_exit_2(capsys, ["predict", run, str(twice)], "column 'b' appears twice")
    npz = tmp_path / "complex.npz"
    np.savez(npz, x=np.ones((2, 3)) + 1j)
    _one_line_exit_2(capsys, ["predict", run, str(npz)], "array 'x'", "complex numbers")
    with pytest.raises(neuroevo.NeuroevoError, match="complex"):
        neuroevo.load(shared_run).predict(np.ones((2, 3)) + 1j)


def test_an_npz_bomb_or_a_member_not_an_array_is_refused_unread(shared_run, tmp_path, capsys):
    import tracemalloc
    import zipfile

    from neuroevo.results.predict import predict_file

    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((1 << 21, 4)))  # 64 MiB inflated, some 60 kB here
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(
            neuroevo.NeuroevoError, match=r"rows of 3 features, got an array of shape \(2097"
        ):
            predict_file(shared_run, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(odd, "w") as archive:
        archive.writestr("x.npy", b"not an array at all")
    _one_line_exit_2(capsys, ["predict", str(shared_run), str(odd)],
                     "array 'x' is not a .npy array")  # fmt: skip


@pytest.mark.parametrize("name", ["model.json", "genome.json", "ensemble.json"])
def test_deeply_nested_json_in_a_run_is_one_line(shared_run, tmp_path, capsys, name):
    run = _copy(shared_run, tmp_path)
    if name == "ensemble.json":
        card = json.loads((run / "best" / "model.json").read_text())
        card["final"] = "ensemble"
        (run / "best" / "model.json").write_text(json.dumps(card))
    (run / "best" / name).write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _one_line_exit_2(capsys, ["predict", str(run), str(shared_run.parent / "data.csv")],
                     f"best/{name}: nests lists or objects too deeply")  # fmt: skip
    with pytest.raises(neuroevo.NeuroevoError, match=f"{name}: nests"):
        neuroevo.load(run)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"x_std": (1, 1e-50)}, "x_std must be 3 finite numbers, each above 0 (from 1.2e-38"),
        ({"x_std": (0, 1e-320)}, "x_std must be 3 finite numbers, each above 0"),
        ({"x_mean": (2, 1e308)}, "x_mean must be 3 finite numbers (at most 3.4e38"),
        ({}, "tensor '0.weight' holds NaN or infinite weights"),
    ],
)
def test_a_model_that_would_predict_nan_is_refused(shared_run, tmp_path, capsys, change, message):
    from safetensors.torch import load_file, save_file

    run = _copy(shared_run, tmp_path)
    data = str(shared_run.parent / "data.csv")
    if change:
        _edit_card(run, **change)
    else:
        weights = run / "best" / "weights.safetensors"
        state = load_file(weights)
        name = sorted(state)[0]
        message = message.replace("0.weight", name)
        state[name].view(-1)[0] = float("nan")
        save_file(state, weights)
    _one_line_exit_2(capsys, ["predict", str(run), data], message)
    _one_line_exit_2(capsys, ["export", str(run), "--format", "torchscript"], message)
    assert not (run / "best" / "model.pt").exists()
