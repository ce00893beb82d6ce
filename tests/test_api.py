"""The Python way in: a recipe from keyword arguments, the public recipe names, the history
as a table."""

import sys

import numpy as np
import pytest
from helpers import outputs

import neuroevo
from neuroevo import NeuroevoError
from neuroevo.cli import main

SECTIONS = {
    "space": {"width_min": 4, "width_max": 32, "layers_max": 3},
    "population": {"size": 6, "initial": [{"hidden": [16], "activation": "relu", "lr": 0.01}]},
    "evolution": {"generations": 2, "elites": 1},
    "final": {"final_steps": 40, "folds": 0},
    "mixer": {"steps": 40, "batch_size": 32},
    "run": {"seed": 3, "report": False},
}
TASK = {"name": "logbits", "n_train": 800, "n_valid": 400, "n_test": 400}


@pytest.mark.slow  # end to end: a whole run
def test_keyword_arguments_and_the_same_toml_give_identical_runs(tmp_path):
    by_name = neuroevo.evolve(task=TASK, out=tmp_path / "kwargs", **SECTIONS)
    written = (tmp_path / "kwargs" / "recipe.toml").read_text()
    (tmp_path / "same.toml").write_text(written)
    by_file = neuroevo.evolve(tmp_path / "same.toml", out=tmp_path / "toml")
    assert outputs(by_name.out) == outputs(by_file.out)
    # the written recipe is a whole one: the run resumes from it like any other
    assert main(["resume", str(tmp_path / "kwargs"), "--set", "evolution.generations=3"]) == 0


def test_a_bad_keyword_argument_is_the_toml_key_s_one_line_error(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text('[task]\nname = "logbits"\n[space]\nwidht_max = 3\n')
    assert main(["evolve", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o")]) == 2
    from_file = capsys.readouterr().err.strip().removeprefix("neuroevo: error: ")
    with pytest.raises(NeuroevoError) as raised:
        neuroevo.evolve(task="logbits", space={"widht_max": 3}, out=tmp_path / "k")
    # the same line, where the file's name was
    assert str(raised.value) == from_file.replace(str(tmp_path / "bad.toml"), "evolve()")
    assert "space.widht_max: unknown key (did you mean space.width_max?)" in from_file
    with pytest.raises(NeuroevoError, match="unknown section"):
        neuroevo.evolve(task="logbits", spaces={"width_max": 3}, out=tmp_path / "k")
    with pytest.raises(NeuroevoError, match="not both"):
        neuroevo.evolve("recipes/logbits.toml", space={"width_max": 3})
    with pytest.raises(NeuroevoError, match="give a recipe, or task="):
        neuroevo.evolve(space={"width_max": 3})
    assert not (tmp_path / "k").exists()


@pytest.mark.slow  # end to end: a whole run
def test_a_task_made_from_arrays_runs_under_its_name(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 5))
    made = neuroevo.from_arrays("mine", "classes", x, (x[:, 0] > 0).astype(int), seed=0)
    result = neuroevo.evolve(task=made, out=tmp_path / "run", **SECTIONS)
    assert result.summary.task == "mine" and result.summary.best.test_metric is not None
    assert "mine" not in neuroevo.tasks.names()  # registered for the run only


@pytest.mark.slow  # end to end: a whole run
def test_the_history_as_a_table(tmp_path):
    pytest.importorskip("pandas")
    result = neuroevo.evolve(task=TASK, out=tmp_path / "run", **SECTIONS)
    frame = result.history()
    assert len(frame) == 12 and {"generation", "id", "params", "validation_metric"} <= set(
        frame.columns
    )
    assert frame.equals(neuroevo.history(tmp_path / "run"))
    assert frame.groupby("generation").size().tolist() == [6, 6]
    with pytest.raises(NeuroevoError, match="no history.jsonl"):
        neuroevo.history(tmp_path)


def test_recipes_are_public():
    recipe = neuroevo.load_recipe("recipes/logbits.toml")
    assert isinstance(recipe, neuroevo.Recipe) and recipe.task.name == "logbits"


def test_without_scikit_learn_the_estimators_say_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "sklearn"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if it were not installed
    for name in [m for m in sys.modules if m.startswith("neuroevo.estimators")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(neuroevo, "estimators", raising=False)
    with pytest.raises(ImportError, match=r"needs scikit-learn: pip install 'neuroevo\[sklearn\]'"):
        neuroevo.NeuroevoClassifier  # noqa: B018
