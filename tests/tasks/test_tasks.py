import textwrap

import numpy as np
import pytest
import torch

import neuroevo
from neuroevo import tasks
from neuroevo.cli import main
from neuroevo.storage import rundir
from neuroevo.tasks import TaskError


@pytest.mark.parametrize(
    "name, kind, n_in, n_out, n_rows",
    [
        ("logbits", "bits", 16, 16, 25_000),
        ("digits", "classes", 64, 10, 1797),
        ("iris", "classes", 4, 3, 150),
        ("wine", "classes", 13, 3, 178),
        ("breast_cancer", "classes", 30, 2, 569),
        ("diabetes", "regression", 10, 1, 442),
    ],
)
def test_builtin_tasks_load_with_the_right_shapes_and_kinds(name, kind, n_in, n_out, n_rows):
    t = tasks.build(name, seed=0)
    assert (t.kind, t.n_inputs, t.n_outputs) == (kind, n_in, n_out)
    assert sum(len(y) for y in (t.y_train, t.y_valid, t.y_test)) == n_rows
    if kind == "classes":
        assert t.y_train.dtype == torch.int64 and t.y_train.ndim == 1
    else:
        assert t.y_train.shape[1] == n_out


def test_splits_are_stratified_standardised_on_train_and_repeat_by_seed():
    a, b, c = tasks.build("iris", 1), tasks.build("iris", 1), tasks.build("iris", 2)
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, c.x_test)
    for y in (a.y_train, a.y_valid, a.y_test):
        counts = torch.bincount(y, minlength=3)
        assert counts.max() - counts.min() <= 1  # iris has 50 of each class
    torch.testing.assert_close(a.x_train.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(a.x_train.std(0, unbiased=False), torch.ones(4), atol=1e-4, rtol=0)
    assert a.x_valid.mean(0).abs().max() > 1e-3  # validation statistics were not used
    assert a.classes == ("setosa", "versicolor", "virginica")


def classification_csv(path, n=60, extra=""):
    rng = np.random.default_rng(0)
    lines = ["f1,f2,label" + extra]
    for i in range(n):
        label = ["cat", "dog", "eel"][i % 3]
        x1, x2 = rng.normal(size=2) + (0, 2, 4)[i % 3]
        lines.append(f"{x1:.4f},{x2:.4f},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def regression_csv(path, n=80):
    rng = np.random.default_rng(1)
    lines = ["a,b,c,y1,y2"]
    for _ in range(n):
        a, b, c = rng.normal(size=3)
        lines.append(f"{a},{b},{c},{2 * a - b},{c + 1}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_classification_and_regression(tmp_path):
    t = tasks.build(
        "csv", 0, path=str(classification_csv(tmp_path / "animals.csv")), target="label"
    )
    assert (t.kind, t.n_inputs, t.n_outputs, t.classes) == ("classes", 2, 3, ("cat", "dog", "eel"))
    r = tasks.build(
        "csv",
        0,
        path=str(regression_csv(tmp_path / "lin.csv")),
        target=["y1", "y2"],
        kind="regression",
        features=["a", "b", "c"],
    )
    assert (r.kind, r.n_inputs, r.n_outputs) == ("regression", 3, 2)


def test_npz_task(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(30, 5)), y=np.repeat([3, 7, 9], 10))
    t = tasks.build("npz", 0, path=str(tmp_path / "d.npz"))
    assert t.classes == ("3", "7", "9") and t.n_inputs == 5


def run_recipe(tmp_path, task_lines, *extra_args):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        textwrap.dedent(f"""
        [task]
        {task_lines}

        [population]
        size = 4

        [evolution]
        generations = 2
        elites = 1

        [final]
        final_steps = 20

        [mixer]
        steps = 30
        batch_size = 16
    """)
    )
    return main(["evolve", str(recipe), "--out", str(tmp_path / "run"), "--quiet", *extra_args])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classes", "regression"])
def test_csv_runs_through_a_two_generation_evolution(tmp_path, kind):
    if kind == "classes":
        classification_csv(tmp_path / "data.csv")
        lines = 'path = "data.csv"\ntarget = "label"'  # a .csv file: the csv task
        metric = "accuracy"
    else:
        regression_csv(tmp_path / "data.csv")
        lines = 'name = "csv"\npath = "data.csv"\ntarget = ["y1", "y2"]\nkind = "regression"'
        metric = "r2"
    assert run_recipe(tmp_path, lines) == 0
    summary = rundir.read_summary(tmp_path / "run")
    assert summary["metric"] == metric and summary["generations_completed"] == 2
    # the resolved recipe names the data file by its absolute path, so it reruns anywhere
    written = (tmp_path / "run" / "recipe.toml").read_text()
    assert str(tmp_path / "data.csv") in written and 'name = "csv"' in written


def test_a_task_without_a_name_needs_a_csv_or_npz_path(tmp_path, capsys):
    assert run_recipe(tmp_path, 'path = "data.parquet"\ntarget = "label"') == 2
    err = capsys.readouterr().err
    assert "task.name: missing" in err and "task.path to a .csv or .npz file" in err


BAD_CSV = [
    ("missing file", None, 'path = "nope.csv"\ntarget = "label"', "nope.csv: no such data file"),
    (
        "missing target",
        "f1,f2,label\n1,2,a\n",
        'path = "d.csv"\ntarget = "lable"',
        "no column 'lable' (did you mean 'label'?)",
    ),
    (
        "non-numeric",
        "f1,f2,label\n1,2,a\n1,x2,b\n",
        'path = "d.csv"\ntarget = "label"',
        "line 3, column 'f2': 'x2' is not a number",
    ),
    (
        "missing value",
        "f1,f2,label\n1,2,a\n1,,b\n",
        'path = "d.csv"\ntarget = "label"',
        "line 3, column 'f2': missing value",
    ),
    (
        "small class",
        "f1,label\n" + "".join(f"{i},a\n" for i in range(9)) + "1,b\n2,b\n",
        'path = "d.csv"\ntarget = "label"',
        "class 'b' has 2 row(s)",
    ),
    (
        "too few rows",
        "f1,y\n1,2\n2,3\n3,4\n",
        'path = "d.csv"\ntarget = "y"\nkind = "regression"',
        "3 rows are too few for the splits",
    ),
    (
        "ragged",
        "f1,f2,label\n1,2,a\n1,b\n",
        'path = "d.csv"\ntarget = "label"',
        "line 3 has 2 fields, the header 3",
    ),
]


@pytest.mark.parametrize("case, content, lines, message", BAD_CSV, ids=[c[0] for c in BAD_CSV])
def test_bad_data_exits_2_with_one_line(tmp_path, capsys, case, content, lines, message):
    if content is not None:
        (tmp_path / "d.csv").write_text(content)
    assert run_recipe(tmp_path, 'name = "csv"\n' + lines) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroevo: error: ") and err.count("\n") == 1
    assert message in err, err


def test_npz_with_nan_or_objects_is_refused(tmp_path):
    x = np.ones((30, 2))
    x[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(30) % 3)
    with pytest.raises(TaskError, match="row 4, column 1"):
        tasks.build("npz", 0, path=str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}] * 30, dtype=object), y=np.arange(30))
    with pytest.raises(TaskError, match="without pickle"):
        tasks.build("npz", 0, path=str(tmp_path / "obj.npz"))


def test_npz_members_are_checked_before_they_are_decompressed(tmp_path, monkeypatch):
    import io
    import zipfile

    from neuroevo.tasks import files

    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((1 << 17, 8)), y=np.arange(1 << 17) % 3)  # 8 MiB x
    monkeypatch.setattr(files, "MAX_ARRAY_BYTES", 4 << 20)
    with pytest.raises(TaskError, match="array 'x' takes 8,388,736 bytes once decompressed"):
        tasks.build("npz", 0, path=str(bomb))
    # a header that claims more than the member holds is refused before any allocation
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 30, 4)}
    )
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
        archive.writestr("y.npy", b"\x93NUMPY is not what follows")
    with pytest.raises(TaskError, match=r"array 'x': its header says shape \(1073741824, 4\)"):
        tasks.build("npz", 0, path=str(tmp_path / "liar.npz"))
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as archive:
        archive.writestr("x.npy", np.lib.format.__name__)  # not an array
        with archive.open("y.npy", "w") as f:
            np.save(f, np.arange(30) % 3)
    with pytest.raises(TaskError, match="odd.npz: array 'x' is not a .npy array"):
        tasks.build("npz", 0, path=str(tmp_path / "odd.npz"))


@pytest.mark.slow
def test_custom_task_by_decorator_and_by_module_function(tmp_path, monkeypatch, capsys):
    @neuroevo.register_task("parity")
    def parity(*, seed, n=90):
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 2, size=(n, 4))
        return neuroevo.from_arrays("parity", "classes", x, x.sum(1) % 2, seed=seed)

    try:
        assert tasks.build("parity", 0, n=60).n_outputs == 2
        with pytest.raises(neuroevo.NeuroevoError, match="already registered"):
            neuroevo.task("parity")(parity)
        assert run_recipe(tmp_path, 'name = "parity"\nn = 60') == 0
    finally:
        tasks.unregister("parity")

    (tmp_path / "lab_tasks.py").write_text(
        textwrap.dedent("""
        import numpy as np
        import neuroevo

        def sines(*, seed, n=100):
            rng = np.random.default_rng(seed)
            x = rng.uniform(-3, 3, size=(n, 1))
            return neuroevo.from_arrays("sines", "regression", x, np.sin(x), seed=seed)

        def broken(*, seed):
            return [1, 2, 3]
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert tasks.build("lab_tasks:sines", 0).kind == "regression"
    assert run_recipe(tmp_path, 'name = "lab_tasks:sines"', "--overwrite") == 0
    assert run_recipe(tmp_path, 'name = "lab_tasks:broken"', "--overwrite") == 2
    assert "returned list, not a Task" in capsys.readouterr().err
