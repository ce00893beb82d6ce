"""The reliability contract (README, "Reliability"): a hostile or careless input is one line
``neuroevo: error: ...`` and exit code 2, naming the culprit; nothing outside the run directory
and nothing of an earlier run changes; a run directory never makes neuroevo write elsewhere."""

import contextlib
import hashlib
import io
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import edit_state, latest, outputs, rewrite

from neuroevo import evolve
from neuroevo.cli import main
from neuroevo.errors import NeuroevoError
from neuroevo.recipe import load
from neuroevo.storage import checkpoint, rundir


def digest(*roots):
    """Names, link targets and bytes of everything under ``roots``, links not followed."""
    h = hashlib.sha256()
    for root in roots:
        root = Path(root)
        if not os.path.lexists(root):
            h.update(b"absent")
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                p = Path(dirpath) / name
                h.update(str(p.relative_to(root)).encode())
                if p.is_symlink():
                    h.update(b"->" + os.readlink(p).encode())
                elif p.is_file():
                    h.update(p.read_bytes())
    return h.hexdigest()


def fails(capsys, argv, *culprits, protect=()):
    """Run the CLI; assert exit 2, one line naming every culprit, nothing in ``protect``
    changed. Returns the message."""
    before = digest(*protect)
    code = main([str(a) for a in argv] + ["--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("neuroevo: error: ") and err.count("\n") == 1, err
    for culprit in culprits:
        assert str(culprit) in err, (culprit, err)
    assert digest(*protect) == before, "a failed command changed files it must not touch"
    return err


@pytest.fixture
def finished(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    assert main(["evolve", str(tiny_recipe()), "--out", str(run), "--quiet"]) == 0
    return run


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text("precious")
    return folder


def resume_more(run):
    return ["resume", run, "--set", "evolution.generations=3"]


# --------------------------------------------------------------------------- 1. links


@pytest.mark.parametrize(
    "planted",
    ["recipe.toml.tmp", "summary.json.tmp", "checkpoints/LATEST.tmp", "best", "history.jsonl"],
)
def test_a_planted_link_is_refused_and_nothing_is_written_through_it(
    finished, outside, capsys, planted
):
    link = finished / planted
    if planted == "best":
        for f in link.iterdir():
            f.unlink()
        link.rmdir()
        link.symlink_to(outside, target_is_directory=True)
    elif planted == "history.jsonl":
        (outside / "history.jsonl").write_bytes(link.read_bytes())
        link.unlink()
        link.symlink_to(outside / "history.jsonl")
    else:
        link.symlink_to(outside / "victim.txt")
    fails(capsys, resume_more(finished), planted, "symbolic link", protect=[outside, finished])


# --------------------------------------------------------------------------- 2. losing runs


def test_resume_of_a_run_without_its_checkpoint_pointer_keeps_the_run(
    finished, tiny_recipe, capsys
):
    (finished / "checkpoints" / "LATEST").unlink()
    other = tiny_recipe(name="other.toml")
    other.write_text(other.read_text().replace("seed = 3", "seed = 4"))
    fails(
        capsys,
        ["evolve", other, "--out", finished, "--resume"],
        "checkpoints/LATEST",
        "nothing was changed",
        protect=[finished],
    )


@pytest.mark.parametrize("where", ["checkpoints/notes.txt", "best/mine.bin"])
def test_overwrite_never_deletes_files_neuroevo_did_not_write(finished, tiny_recipe, capsys, where):
    (finished / where).write_text("mine")
    fails(
        capsys,
        ["evolve", tiny_recipe(), "--out", finished, "--overwrite"],
        where,
        "not written by neuroevo",
        protect=[finished],
    )


def test_a_folder_of_foreign_files_is_not_called_a_run(tiny_recipe, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "notes.txt").write_text("mine")
    err = fails(capsys, ["evolve", tiny_recipe(), "--out", out], "notes.txt", protect=[out])
    assert "already holds a run" not in err


def test_overwrite_with_best_a_link_deletes_nothing(finished, outside, tiny_recipe, capsys):
    best = finished / "best"
    for f in best.iterdir():
        f.unlink()
    best.rmdir()
    best.symlink_to(outside, target_is_directory=True)
    fails(
        capsys,
        ["evolve", tiny_recipe(), "--out", finished, "--overwrite"],
        "best",
        protect=[finished, outside],
    )
    for name in ("recipe.toml", "history.jsonl", "summary.json"):
        assert (finished / name).exists()


def test_a_second_process_on_the_same_run_directory_is_refused(finished, capsys):
    with rundir.locked(finished):  # as another process's run would hold it
        fails(capsys, resume_more(finished), "another neuroevo process", protect=[finished])
    assert main([*map(str, resume_more(finished)), "--quiet"]) == 0  # released: goes on


def test_the_lock_is_held_by_a_real_second_process(finished, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from neuroevo.storage import rundir\n"
            f"with rundir.locked({str(finished)!r}):\n"
            "    print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        proc = subprocess.run(
            [sys.executable, "-m", "neuroevo.cli", *map(str, resume_more(finished)), "--quiet"],
            capture_output=True,
            timeout=120,
        )
        assert proc.returncode == 2 and b"another neuroevo process" in proc.stderr
    finally:
        holder.communicate(b"", timeout=30)


# --------------------------------------------------------------------------- 3. non-finite


USER_TASKS = """
import datetime
import numpy as np
import torch
import neuroevo
from neuroevo.tasks import Task, from_arrays

def _arrays(seed, n=90):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=n)

def huge_test(*, seed):
    t = from_arrays("huge", "regression", *_arrays(seed), seed=seed)
    x_test = t.x_test.clone()
    x_test[0, 0] = 1e25
    return Task("huge", "regression", t.x_train, t.y_train, t.x_valid, t.y_valid,
                x_test, t.y_test)

def scaled(*, seed, scale=1.0, when=None):
    return from_arrays("scaled", "regression", *_arrays(seed), seed=seed)

def bad_labels(*, seed):
    x = torch.randn(30, 2)
    y = torch.tensor([0, 1, 2] * 10)
    return Task("bad", "classes", x, y, x, y, x, y, classes=("a", "b"))
"""


_MODULES = itertools.count()


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write a module of the user's and make it importable; returns its (fresh) name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source, prefix="usermod"):
        name = f"{prefix}_{os.getpid()}_{next(_MODULES)}"
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


@pytest.fixture
def user_tasks(user_module):
    return user_module(USER_TASKS, "usertasks")


LOGBITS_TASK = 'name = "logbits"\nn_train = 800\nn_valid = 400\nn_test = 400'


def with_task(tiny_recipe, file_name, **task):
    """The tiny recipe with ``[task]`` replaced by ``task`` (TOML values)."""
    path = tiny_recipe(name=file_name)
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in task.items())
    path.write_text(path.read_text().replace(LOGBITS_TASK, lines))
    return path


def regression_recipe(tiny_recipe, task):
    return with_task(tiny_recipe, "reg.toml", name=task)


def test_a_non_finite_test_metric_is_null_not_a_crash(user_tasks, tiny_recipe, tmp_path, capsys):
    out = tmp_path / "run"
    recipe = regression_recipe(tiny_recipe, f"{user_tasks}:huge_test")
    relu = ["--set", 'space.activations=["relu"]']  # unbounded: 1e25 in, 1e25 out
    # one net, whose float32 outputs overflow (a bagged refit's mixture is float64, finite)
    one = ["--set", "final.folds=0"]
    assert main(["evolve", str(recipe), "--out", str(out), *relu, *one]) == 0
    summary = rundir.read_summary(out)  # strict: no NaN or infinity
    assert summary["best"]["test_metric"] is None
    assert summary["best"]["validation_metric"] is not None
    assert "test n/a" in capsys.readouterr().out
    rundir.read_history(out)  # strict: NaN or infinity would be an error


def test_every_net_diverging_is_a_clear_error_and_keeps_the_checkpoints(
    user_tasks, tiny_recipe, tmp_path, capsys
):
    out = tmp_path / "run"
    recipe = regression_recipe(tiny_recipe, f"{user_tasks}:scaled")
    huge = [
        "--set",
        "space.lr_min=1e30",
        "--set",
        "space.lr_max=1e32",
        "--set",
        "population.initial=[]",
    ]
    code = main(["evolve", str(recipe), "--out", str(out), "--quiet", *huge])
    err = capsys.readouterr().err
    assert code == 2 and "every net diverged" in err and err.count("\n") == 1, err
    assert checkpoint.exists(out)
    for record in rundir.read_history(out):
        assert record["validation_metric"] is None


@pytest.mark.parametrize(
    "setting, culprit",
    [
        ("mixer.mix_lr=1e20", "mixer.mix_lr: must be above 0 and at most 1000"),
        ("task.scale=nan", "task.scale: expected a finite number"),
        ("task.scale=inf", "task.scale: expected a finite number"),
    ],
)
def test_non_finite_settings_are_refused_before_the_run(
    user_tasks, tiny_recipe, tmp_path, capsys, setting, culprit
):
    recipe = regression_recipe(tiny_recipe, f"{user_tasks}:scaled")
    out = tmp_path / "run"
    fails(capsys, ["evolve", recipe, "--out", out, "--set", setting], culprit)
    assert not out.exists()


USER_MUTATIONS = """
import neuroevo

def nan_attribute(g, rng, space):
    g.graph["note"] = float("nan")
    return g

def set_attribute(g, rng, space):
    g.graph["note"] = {1, 2}
    return g

def exits(g, rng, space):
    raise SystemExit(7)
"""


@pytest.fixture
def user_mutations(user_module):
    return user_module(USER_MUTATIONS, "usermuts")


@pytest.mark.parametrize(
    "func, culprit",
    [
        ("nan_attribute", "not plain JSON"),
        ("set_attribute", "not plain JSON"),
        ("exits", "SystemExit"),
    ],
)
def test_a_misbehaving_user_mutation_is_exit_2_naming_it(
    user_mutations, tiny_recipe, tmp_path, capsys, func, culprit
):
    recipe = tiny_recipe(f'[mutations]\n"{user_mutations}:{func}" = 1.0\n')
    out = tmp_path / "run"
    fails(capsys, ["evolve", recipe, "--out", out], f"{user_mutations}:{func}", culprit)
    assert checkpoint.exists(out)  # the generation before it is kept


# --------------------------------------------------------------------------- 4. bounds


@pytest.mark.parametrize(
    "setting, culprit",
    [
        ("run.threads=100000", "run.threads: must be at most 256"),
        ("run.threads=10000", "run.threads: must be at most 256"),
        ("evolution.tournament_size=100000000", "evolution.tournament_size: must be at most"),
        ("population.size=100000000", "population.size: must be at most 10000"),
        ("mixer.steps=10000000000", "mixer.steps: must be at most"),
        ("evolution.final_steps=10000000000", "evolution.final_steps: must be at most"),
        ("space.width_max=100000000", "space.width_max: must be at most"),
        ("space.layers_max=100000", "space.layers_max: must be at most"),
        ("run.seed=100000000000000", "run.seed: must be at most"),
        ("run.keep_checkpoints=100000000", "run.keep_checkpoints: must be at most"),
    ],
)
def test_settings_that_would_exhaust_the_machine_are_refused(
    tiny_recipe, tmp_path, capsys, setting, culprit
):
    out = tmp_path / "run"
    fails(capsys, ["evolve", tiny_recipe(), "--out", out, "--set", setting], culprit)
    assert not out.exists()


def test_a_recipe_that_is_not_a_regular_file_is_refused(tmp_path, capsys):
    fails(capsys, ["evolve", "/dev/zero", "--out", tmp_path / "r"], "/dev/zero", "regular file")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    fails(capsys, ["evolve", fifo, "--out", tmp_path / "r"], "named pipe")


def test_a_huge_recipe_is_refused(tmp_path, capsys):
    big = tmp_path / "big.toml"
    big.write_text('[task]\nname = "logbits"\n' + "# padding\n" * 200_000)
    fails(capsys, ["evolve", big, "--out", tmp_path / "r"], "larger than the limit")


def test_checkpoint_files_that_are_links_or_pipes_do_not_hang(finished, capsys):
    tensors = latest(finished) / "tensors.safetensors"
    tensors.unlink()
    tensors.symlink_to("/dev/zero")
    fails(capsys, resume_more(finished), "tensors.safetensors", "symbolic link")
    tensors.unlink()
    manifest = latest(finished) / "manifest.json"
    manifest.unlink()
    os.mkfifo(manifest)
    fails(capsys, resume_more(finished), "manifest.json", "named pipe", protect=[finished])


# --------------------------------------------------------------------------- 5. wrong data


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def csv_recipe(tiny_recipe, data, **options):
    return with_task(tiny_recipe, "csv.toml", name="csv", path=str(data), **options)


def rows(n=60, classes=("a", "b", "c")):
    rng = np.random.default_rng(0)
    return [
        [round(float(rng.normal()), 4), round(float(rng.normal()), 4), classes[i % len(classes)]]
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "header, data, options, culprit",
    [
        (["a", "a", "y"], rows(), {"target": "y"}, "column 'a' appears twice"),
        (["a", "b", "y"], rows(), {"target": "y", "features": ["a", "y"]}, "target column 'y'"),
        (
            ["a", "b", "y"],
            [[1e200 * (1 + i), 1, "ab"[i % 2]] for i in range(60)],
            {"target": "y"},
            "column 'a' holds values too large",
        ),
        (  # a deviation below float32's smallest normal number: the same
            ["a", "b", "y"],
            [[1e-39 * (i % 2), 1, "ab"[i % 2]] for i in range(60)],
            {"target": "y"},
            "column 'a' varies by less than float32 can hold",
        ),
        (  # finite in float64, past float32's range: a model the run wrote could not load
            ["a", "b", "y"],
            [[1e39 * (i % 2), 1, "ab"[i % 2]] for i in range(60)],
            {"target": "y"},
            "column 'a' holds values too large",
        ),
        (["a", "b", "y"], rows(classes=("only",)), {"target": "y"}, "every row is of one class"),
        (["a", "b", "y"], rows(), {"target": "y", "delimiter": ";;"}, "task.delimiter"),
        (["a", "b", "y"], rows(), {"target": "y", "delimiter": ""}, "task.delimiter"),
        (["a", "b", "y"], rows(), {"target": "y", "split": 5}, "task.split"),
    ],
)
def test_csv_data_that_would_train_on_something_wrong_is_refused(
    tiny_recipe, tmp_path, capsys, header, data, options, culprit
):
    data_file = write_csv(tmp_path / "data.csv", header, data)
    out = tmp_path / "run"
    fails(capsys, ["evolve", csv_recipe(tiny_recipe, data_file, **options), "--out", out], culprit)
    assert not out.exists()


@pytest.mark.parametrize(
    "arrays, culprit",
    [
        ({"x": np.ones((60, 2)) * (1 + 1j), "y": np.arange(60) % 3}, "complex"),
        (
            {
                "x": np.random.default_rng(0).normal(size=(60, 2)),
                "y": np.r_[np.inf, np.arange(59) % 3],
            },
            "not finite",
        ),
        ({"x": np.ones((60, 2)), "y": np.array(3.0)}, "single number"),
    ],
)
def test_npz_data_that_is_not_real_or_not_per_row_is_refused(
    tiny_recipe, tmp_path, capsys, arrays, culprit
):
    data = tmp_path / "data.npz"
    np.savez(data, **arrays)
    kind = "regression" if arrays["y"].ndim == 0 else "classes"
    recipe = with_task(tiny_recipe, "n.toml", name="npz", path=str(data), kind=kind)
    fails(capsys, ["evolve", recipe, "--out", tmp_path / "run"], culprit)


def test_files_that_are_not_npz_archives_are_refused(tiny_recipe, tmp_path, capsys):
    import zipfile

    npy = tmp_path / "data.npy"
    np.save(npy, np.ones((5, 2)))
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(odd, "w") as z:
        z.writestr("x.txt", "hello")
        z.writestr("y.npy", b"not an array")
    for data, culprit in ((npy, "not a .npz file"), (odd, "odd.npz")):
        recipe = with_task(tiny_recipe, "n.toml", name="npz", path=str(data))
        fails(capsys, ["evolve", recipe, "--out", tmp_path / "run"], culprit)


@pytest.mark.slow
def test_class_labels_have_one_order_whatever_the_hash_seed(tmp_path):
    labels = ["1.0", "b", "01", "1", "a", "2"]
    data = write_csv(
        tmp_path / "d.csv", ["a", "y"], [[i, labels[i % len(labels)]] for i in range(60)]
    )
    code = (
        "from neuroevo import tasks; "
        f"print(tasks.build('csv', 0, path={str(data)!r}, target='y').classes)"
    )
    seen = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        seen.add(out.strip())
    assert seen == {str(("01", "1", "1.0", "2", "a", "b"))}


def test_resume_refuses_changed_data_naming_the_file(tiny_recipe, tmp_path, capsys):
    data = write_csv(tmp_path / "data.csv", ["a", "b", "y"], rows())
    recipe = csv_recipe(tiny_recipe, data, target="y")
    run = tmp_path / "run"
    assert main(["evolve", str(recipe), "--out", str(run), "--quiet"]) == 0
    write_csv(data, ["a", "b", "y"], rows()[::-1])
    fails(capsys, resume_more(run), "the data changed", str(data), protect=[run])


def test_resume_refuses_a_deleted_history(finished, capsys):
    (finished / "history.jsonl").unlink()
    fails(capsys, resume_more(finished), "history.jsonl", protect=[finished])


# --------------------------------------------------------------------------- 6. resume


def test_a_data_path_given_by_set_is_recorded_absolute(tiny_recipe, tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    write_csv(tmp_path / "work" / "data.csv", ["a", "b", "y"], rows())
    recipe = csv_recipe(tiny_recipe, "elsewhere.csv", target="y")
    monkeypatch.chdir(tmp_path / "work")
    run = tmp_path / "run"
    assert (
        main(["evolve", str(recipe), "--out", str(run), "--quiet", "--set", "task.path=data.csv"])
        == 0
    )
    assert str(tmp_path / "work" / "data.csv") in (run / "recipe.toml").read_text()
    monkeypatch.chdir(tmp_path)
    assert main([*map(str, resume_more(run)), "--quiet"]) == 0


def test_already_complete_whatever_the_spelling_of_the_run_directory(
    finished, tmp_path, monkeypatch, capsys
):
    (tmp_path / "elsewhere").mkdir()
    for cwd, spelled in (
        (tmp_path, "run"),
        (tmp_path, str(finished.resolve())),
        (tmp_path / "elsewhere", "../run"),
    ):
        monkeypatch.chdir(cwd)
        fails(capsys, ["resume", spelled], "already complete", protect=[finished])


def test_pruning_orders_checkpoints_by_number(tmp_path):
    root = tmp_path / "checkpoints"
    for g in (9998, 9999, 10000):
        (root / f"gen-{g}").mkdir(parents=True)
    checkpoint._prune(root, keep=2, latest=10000)
    assert sorted(p.name for p in root.iterdir()) == ["gen-10000", "gen-9999"]


def test_checksums_are_verified_before_the_task_module_is_imported(
    user_tasks, tiny_recipe, tmp_path, capsys
):
    run = tmp_path / "run"
    recipe = regression_recipe(tiny_recipe, f"{user_tasks}:scaled")
    assert main(["evolve", str(recipe), "--out", str(run), "--quiet"]) == 0
    marker = tmp_path / "imported"
    sys.modules.pop(user_tasks)
    module = tmp_path / f"{user_tasks}.py"
    module.write_text(f"open({str(marker)!r}, 'w').close()\n" + module.read_text())
    state = latest(run) / "state.json"
    state.write_text(state.read_text().replace('"next_id"', '"next_id" ', 1))
    fails(capsys, resume_more(run), "checksum mismatch", protect=[run])
    assert not marker.exists()


# --------------------------------------------------------------------------- 7. user errors


@pytest.mark.parametrize(
    "setting, culprit",
    [
        ("task.n_train=-5", "task.n_train"),
        ("run.seed=-1", "run.seed"),
        ('mutations."nosuchmodule_xyz:f"=1.0', "nosuchmodule_xyz"),
    ],
)
def test_bad_values_are_user_errors(tiny_recipe, tmp_path, capsys, setting, culprit):
    fails(capsys, ["evolve", tiny_recipe(), "--out", tmp_path / "r", "--set", setting], culprit)


def test_a_deeply_nested_recipe_is_a_user_error(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text('[task]\nname = "logbits"\nx = ' + "[" * 5000 + "]" * 5000 + "\n")
    fails(capsys, ["evolve", deep, "--out", tmp_path / "r"], "deep.toml")


@pytest.mark.parametrize(
    "source, culprit", [("def broken(:\n", "SyntaxError"), ("raise RuntimeError('boom')\n", "boom")]
)
def test_user_modules_that_fail_to_import_are_user_errors(
    tiny_recipe, tmp_path, user_module, capsys, source, culprit
):
    name = user_module(source, "brokenmod")
    fails(
        capsys,
        ["evolve", tiny_recipe(f'[mutations]\n"{name}:f" = 1.0\n'), "--out", tmp_path / "r"],
        name,
        culprit,
    )


def test_a_user_task_with_labels_beyond_its_classes_is_a_user_error(
    user_tasks, tiny_recipe, tmp_path, capsys
):
    recipe = regression_recipe(tiny_recipe, f"{user_tasks}:bad_labels")
    fails(capsys, ["evolve", recipe, "--out", tmp_path / "r"], "2 classes")


def test_a_datetime_option_is_a_user_error(user_tasks, tiny_recipe, tmp_path, capsys):
    recipe = regression_recipe(tiny_recipe, f"{user_tasks}:scaled")
    recipe.write_text(recipe.read_text().replace("[space]", "when = 2024-01-01\n\n[space]"))
    fails(capsys, ["evolve", recipe, "--out", tmp_path / "r"], "task.when", "date")


def test_an_output_directory_that_cannot_be_made_is_a_user_error(tiny_recipe, capsys):
    fails(capsys, ["evolve", tiny_recipe(), "--out", "/proc/neuroevo-x"], "/proc/neuroevo-x")


def test_a_full_disk_mid_run_is_a_user_error_and_the_run_resumes(
    tiny_recipe, tmp_path, monkeypatch, capsys
):
    real = checkpoint._fsync_write
    calls = [0]

    def full(path, data):
        if path.name == "state.json":
            calls[0] += 1
            if calls[0] == 2:
                raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint, "_fsync_write", full)
    run = tmp_path / "run"
    fails(capsys, ["evolve", tiny_recipe(), "--out", run], "No space left on device")
    monkeypatch.setattr(checkpoint, "_fsync_write", real)
    assert main(["resume", str(run), "--quiet"]) == 0


def _widen(genome):
    """A hidden layer one unit wider, still inside the space: only the tensors disagree."""
    node = next(n for n in genome["nodes"] if n["id"].startswith("h"))
    node["width"] = node["width"] + 1 if node["width"] < 32 else node["width"] - 1


@pytest.mark.parametrize(
    "edit, culprit",
    [
        (lambda s: s.pop("population"), "population"),
        (lambda s: s.update(population=[]), "individuals"),
        (lambda s: s.update(next_id="7"), "next_id"),
        (lambda s: s.update(rng="x"), "malformed"),
        (lambda s: s["population"][0].update(fitness="high"), "fitness"),
        (lambda s: _widen(s["population"][0]["genome"]), "its genome needs"),
        (lambda s: s.update(history_bytes=-1), "history_bytes"),
    ],
)
def test_hand_edited_checkpoints_with_recomputed_checksums_are_user_errors(
    finished, capsys, edit, culprit
):
    edit_state(finished, edit)
    fails(capsys, resume_more(finished), culprit, protect=[finished])


def test_checkpoint_tensors_of_the_wrong_shape_are_refused(finished, capsys):
    from safetensors.torch import load, save

    folder = latest(finished)
    tensors = load((folder / "tensors.safetensors").read_bytes())
    key = next(k for k in tensors if k.startswith("population.0.bias."))
    tensors[key] = torch.zeros(tensors[key].shape[0] + 1)
    rewrite(finished, "tensors.safetensors", save(tensors))
    fails(capsys, resume_more(finished), "population 0", protect=[finished])


def test_a_checkpoint_pointer_that_is_a_directory_is_refused(finished, capsys):
    pointer = finished / "checkpoints" / "LATEST"
    pointer.unlink()
    pointer.mkdir()
    fails(capsys, resume_more(finished), "LATEST", "directory", protect=[finished])


SIGNAL_AT_START = textwrap.dedent("""
    import importlib.abc, os, signal, sys

    # Ctrl-C as a terminal delivers it: a process started in the background by a shell (as
    # some CI runners start the suite) inherits SIGINT ignored, and Python keeps it so
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def send():
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))

    class Trap(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "torch":
                sys.meta_path.remove(self)
                send()
            return None

    if sys.argv[1] == "import":  # while `import neuroevo` loads the library (torch first)
        sys.meta_path.insert(0, Trap())
    from neuroevo import recipe
    from neuroevo.cli import main

    if sys.argv[1] == "main":  # once the command runs, as it reads the recipe
        real = recipe.load
        def load(*args, **kwargs):
            send()
            return real(*args, **kwargs)
        recipe.load = load
    sys.exit(main(sys.argv[3:]))
""")


def _start_and_signal(tmp_path, recipe, when, signame):
    launcher = tmp_path / "launch.py"
    launcher.write_text(SIGNAL_AT_START)
    out = tmp_path / "run"
    argv = [sys.executable, str(launcher), when, signame, "evolve", str(recipe), "--out", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("signame, word", [("SIGINT", "interrupted"), ("SIGTERM", "terminated")])
def test_a_signal_once_the_command_runs_is_exit_130_and_one_line(
    tiny_recipe, tmp_path, signame, word
):
    proc = _start_and_signal(tmp_path, tiny_recipe(), "main", signame)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == f"neuroevo: {word}\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_library_loads_stops_it_and_writes_nothing(
    tiny_recipe, tmp_path, signame
):
    """The public API is imported eagerly, so the command's signal handling starts once the
    library has loaded (about a second): a signal before that ends the process as Python
    does (a KeyboardInterrupt, or death by SIGTERM), with nothing written."""
    proc = _start_and_signal(tmp_path, tiny_recipe(), "import", signame)
    assert proc.returncode != 0
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- 9. promises


def test_resume_leaves_the_callers_random_states_alone(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    evolve(load(tiny_recipe(), ["evolution.generations=2"]), out=run)
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    evolve(load(tiny_recipe(), ["evolution.generations=3"]), out=run, resume=True)
    assert random.getstate() == states[0]
    assert (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])


def test_an_initial_net_outside_the_space_is_refused_before_anything_is_made(
    tiny_recipe, tmp_path, capsys
):
    out = tmp_path / "run"
    fails(
        capsys,
        [
            "evolve",
            tiny_recipe(),
            "--out",
            out,
            "--set",
            "population.initial=[{hidden=[16], lr=5.0}]",
        ],
        "population.initial[0].lr",
    )
    assert not out.exists()


def test_the_resume_refusal_names_every_setting_that_may_change(finished, capsys):
    err = fails(capsys, [*resume_more(finished), "--set", "mixer.steps=41"], "mixer.steps")
    for key in (
        "evolution.generations",
        "evolution.time_budget",
        "run.out",
        "run.keep_checkpoints",
    ):
        assert key in err


# --------------------------------------------------------------------------- 10. smaller


def test_errors_in_set_values_are_blamed_on_set(tiny_recipe, tmp_path, capsys):
    for setting in ("space.width_min=0", "mixer.rule=sgd", "mixer.steps=0"):
        err = fails(capsys, ["evolve", tiny_recipe(), "--out", tmp_path / "r", "--set", setting])
        assert err.startswith("neuroevo: error: --set"), err


def test_quoted_keys_in_set_lose_their_quotes(tiny_recipe, tmp_path):
    recipe = load(tiny_recipe(), ['mutations."identity"=1.0', "mutations.add_skip=2"])
    assert dict(recipe.mutations) == {"identity": 1.0, "add_skip": 2.0}


def test_a_zero_width_initial_net_names_the_key(tiny_recipe, tmp_path, capsys):
    fails(
        capsys,
        [
            "evolve",
            tiny_recipe(),
            "--out",
            tmp_path / "r",
            "--set",
            "population.initial=[{hidden=[0]}]",
        ],
        "--set",
        "population.initial[0].hidden",
    )


def test_an_empty_out_is_refused(tiny_recipe, capsys):
    fails(capsys, ["evolve", tiny_recipe(), "--out", ""], "--out")


def test_control_characters_in_keys_are_escaped(tiny_recipe, tmp_path, capsys):
    recipe = tiny_recipe()
    recipe.write_text(recipe.read_text().replace("[mixer]\n", '[mixer]\n"bad\\u001b[2Jkey" = 1\n'))
    err = fails(capsys, ["evolve", recipe, "--out", tmp_path / "r"], "unknown key")
    assert "\x1b" not in err and "\\x1b" in err


# --------------------------------------------------------------------------- property


@pytest.mark.slow
@pytest.mark.slow
def test_random_edits_of_a_checkpoint_give_exit_2_or_a_faithful_resume(
    finished, tiny_recipe, tmp_path
):
    """Any field of state.json changed (checksums recomputed): exit 2 with one line and an
    unchanged directory, or a resume that completes with the very run an uninterrupted one
    gives (an edit that resume accepts must not change the result: a stale metric kept in the
    hall of fame, a lineage field, a setting that may change on resume); never exit 1 or a
    hang."""
    import shutil

    reference = tmp_path / "reference"
    generations = ["--set", "evolution.generations=3"]
    assert (
        main(["evolve", str(tiny_recipe()), "--out", str(reference), "--quiet", *generations]) == 0
    )
    want = outputs(reference)
    accepted = []

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = json.loads((latest(finished) / "state.json").read_text())

    def paths(node, prefix=()):
        yield prefix
        if isinstance(node, dict):
            for k, v in node.items():
                yield from paths(v, (*prefix, k))
        elif isinstance(node, list):
            for i, v in enumerate(node[:3]):
                yield from paths(v, (*prefix, i))

    all_paths = [p for p in paths(base) if p]
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
        st.lists(st.integers(-3, 3), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
    counter = [0]

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(st.sampled_from(all_paths), values, st.booleans())
    def check(path, value, delete):
        counter[0] += 1
        run = tmp_path / f"p{counter[0]}"
        shutil.copytree(finished, run, symlinks=True)
        state = json.loads(json.dumps(base))
        node = state
        for part in path[:-1]:
            node = node[part]
        if delete and isinstance(node, dict):
            node.pop(path[-1])
        else:
            node[path[-1]] = value
        rewrite(run, "state.json", json.dumps(state).encode())
        before = digest(run)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["resume", str(run), "--quiet", "--set", "evolution.generations=3"])
        err = err.getvalue()
        assert code in (0, 2), (path, value, err)
        if code == 2:
            assert err.startswith("neuroevo: error: ") and err.count("\n") == 1, err
            assert digest(run) == before, (path, value)
        else:
            assert outputs(run) == want, (path, value, delete)
            accepted.append(path)
        shutil.rmtree(run)

    check()
    assert accepted  # some edits (of times) are harmless, and those resumes were compared


def test_the_signals_we_install_are_given_back(tiny_recipe, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    assert main(["evolve", str(tiny_recipe()), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_history_reader_names_a_bad_line(finished):
    records = rundir.read_history(finished)
    assert len(records) == 12 and {r["generation"] for r in records} == {0, 1}
    with open(finished / "history.jsonl", "a") as f:
        f.write('{"fitness": NaN}\n')
    with pytest.raises(NeuroevoError, match=r"history.jsonl: line 13"):
        rundir.read_history(finished)


# --------------------------------------------------------------------------- 8. resume and verify
# A probe's findings: what resume and verify do with a run directory edited by hand. One run,
# copied for each test.


@pytest.fixture(scope="module")
def _one_run(tmp_path_factory):
    from conftest import TINY

    base = tmp_path_factory.mktemp("one-run")
    recipe = base / "tiny.toml"
    recipe.write_text(TINY + "report = false\n")
    assert main(["evolve", str(recipe), "--out", str(base / "run"), "--quiet"]) == 0
    return base / "run"


@pytest.fixture
def run_copy(_one_run, tmp_path):
    import shutil

    return Path(shutil.copytree(_one_run, tmp_path / "run"))


@pytest.mark.parametrize("command", ["resume", "verify"])
@pytest.mark.parametrize("names", ["mutation", "task"])
def test_a_module_an_edited_recipe_names_is_not_imported_before_the_checks(
    run_copy, user_module, tmp_path, capsys, command, names
):
    marker = tmp_path / "imported"
    module = user_module(f"open({str(marker)!r}, 'w').close()\nprint('imported!')\n", "planted")
    recipe = run_copy / "recipe.toml"
    text = recipe.read_text()
    if names == "mutation":
        text = text.replace("[mutations]\n", f'[mutations]\n"{module}:f" = 1.0\n')
    else:
        text = text.replace('name = "logbits"', f'name = "{module}:f"')
    recipe.write_text(text)
    argv = resume_more(run_copy) if command == "resume" else ["verify", run_copy, "--steps", "5"]
    fails(capsys, argv, "different recipe", f"{module}:f", protect=[run_copy])
    assert not marker.exists()
    assert "imported!" not in capsys.readouterr().out


@pytest.mark.parametrize("where", ["gen-0000/notes.txt", "gen-0009/notes.txt", ".tmp-gen-0002/a"])
def test_resume_never_deletes_files_neuroevo_did_not_write(run_copy, capsys, where):
    notes = run_copy / "checkpoints" / where
    notes.parent.mkdir(exist_ok=True)
    notes.write_text("mine")
    fails(capsys, resume_more(run_copy), notes, "not written by neuroevo", protect=[run_copy])
    assert notes.read_text() == "mine"


def test_a_foreign_file_in_a_checkpoint_folder_outlives_pruning(tmp_path):
    root = tmp_path / "checkpoints"
    for g in (0, 1, 2):
        (root / f"gen-{g:04d}").mkdir(parents=True)
        (root / f"gen-{g:04d}" / "state.json").write_text("{}")
    (root / "gen-0000" / "notes.txt").write_text("mine")
    checkpoint._prune(root, keep=1, latest=1)
    assert sorted(p.name for p in root.iterdir()) == ["gen-0000", "gen-0001"]
    assert [p.name for p in (root / "gen-0000").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("cut", ["mid-line", "to nothing", "a record short", "past the end"])
def test_a_forged_history_bytes_is_refused(run_copy, capsys, cut):
    history = run_copy / "history.jsonl"
    size, last = history.stat().st_size, history.read_bytes().splitlines(keepends=True)[-1]
    value = {
        "mid-line": size - 5,
        "to nothing": 0,
        "a record short": size - len(last),
        "past the end": size + len(last),
    }[cut]
    said = {
        "mid-line": "ends mid-line",
        "to nothing": "holds no record",
        "a record short": "ends after 11 records",
        "past the end": "holds",
    }[cut]
    edit_state(run_copy, lambda s: s.update(history_bytes=value))
    fails(capsys, resume_more(run_copy), "history_bytes", said, protect=[run_copy])


def test_a_generation_written_as_a_float_is_refused(run_copy, capsys):
    edit_state(run_copy, lambda s: s.update(generation=float(s["generation"])))
    fails(capsys, resume_more(run_copy), "state.json", protect=[run_copy])


def test_a_signal_while_the_report_is_drawn_is_resumed_by_drawing_it(
    tiny_recipe, tmp_path, monkeypatch, capsys
):
    from neuroevo.results import report

    real = report.write

    def interrupted(path, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write", interrupted)
    run = tmp_path / "run"
    assert main(["evolve", str(tiny_recipe(report=True)), "--out", str(run), "--quiet"]) == 130
    assert f"Continue with: neuroevo resume {run}" in capsys.readouterr().err
    assert (run / "summary.json").exists() and not (run / "report.html").exists()
    monkeypatch.setattr(report, "write", real)
    before = digest(run / "history.jsonl", run / "summary.json", run / "best", run / "checkpoints")
    assert main(["resume", str(run), "--quiet"]) == 0
    assert (run / "report.html").exists()
    assert digest(
        run / "history.jsonl", run / "summary.json", run / "best", run / "checkpoints"
    ) == (before)
    fails(capsys, ["resume", run], "already complete")


def test_an_extension_stopped_in_its_final_training_resumes(run_copy, monkeypatch):
    from neuroevo.search import final

    real = final.finish

    def interrupted(evo, deadline=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(final, "finish", interrupted)
    assert main([*map(str, resume_more(run_copy)), "--quiet"]) == 130
    monkeypatch.setattr(final, "finish", real)
    assert main(["resume", str(run_copy), "--quiet"]) == 0
    assert rundir.read_summary(run_copy)["generations_completed"] == 3


@pytest.mark.parametrize(
    "edit, culprit",
    [
        (lambda s: s.update(durations=[]), "durations"),
        (lambda s: s.update(next_id=2**70), "next_id"),
        (lambda s: s["hall_of_fame"][0].update(generation=2**70), "hall of fame 0"),
        (lambda s: s["logbook"][0].update(seconds="slow"), "logbook"),
        (lambda s: s.update(search_seconds=-5.0), "search_seconds"),
        (lambda s: s.update(data_sha256=7), "data_sha256"),
    ],
)
def test_hand_edited_checkpoint_fields_out_of_range_are_user_errors(
    run_copy, capsys, edit, culprit
):
    edit_state(run_copy, edit)
    # a time budget, as a rewritten recipe.toml may set: the mean of the durations is taken
    argv = [*resume_more(run_copy), "--set", "evolution.time_budget=1000"]
    fails(capsys, argv, culprit, "state.json", protect=[run_copy])


def test_a_number_of_5000_digits_in_a_checkpoint_is_refused(run_copy, capsys):
    state = json.loads((latest(run_copy) / "state.json").read_text())
    text = json.dumps(state).replace(f'"next_id": {state["next_id"]}', '"next_id": ' + "9" * 5000)
    rewrite(run_copy, "state.json", text.encode())
    fails(capsys, resume_more(run_copy), "state.json", "not valid JSON", protect=[run_copy])


def test_a_pointer_naming_a_generation_of_5000_digits_is_refused(run_copy, capsys):
    pointer = run_copy / "checkpoints" / "LATEST"
    data = json.loads(pointer.read_text())
    data["checkpoint"] = "gen-" + "1" * 5000
    pointer.write_text(json.dumps(data))
    err = fails(capsys, resume_more(run_copy), "LATEST", "9 digits", protect=[run_copy])
    assert len(err) < 500


@pytest.mark.slow
def test_the_runner_imports_where_fcntl_is_missing(tmp_path):
    code = textwrap.dedent("""
        import sys
        sys.modules["fcntl"] = None  # as on Windows: `import fcntl` raises ImportError
        import neuroevo.runner
        from neuroevo.storage import rundir
        from neuroevo.errors import NeuroevoError
        try:
            with rundir.locked(sys.argv[1]):
                print("locked")
        except NeuroevoError as exc:
            print(exc)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    assert "run-directory locking is unavailable on this platform" in out
