"""The scikit-learn estimators: scikit-learn's own checks, clone, cross-validation, pipelines,
DataFrames and string labels, and one objective's search as a TOML file would run it."""

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the estimators are the sklearn extra's")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import neuroevo  # noqa: E402
from neuroevo import NeuroevoError  # noqa: E402
from neuroevo.estimators import NeuroevoClassifier, NeuroevoRegressor  # noqa: E402
from neuroevo.genome import graph as G  # noqa: E402

#: a search of seconds, not minutes: two generations of four small nets, no time limit (so a
#: fit is the same on any machine and scikit-learn's idempotence checks hold)
QUICK = {
    "evolution": {"generations": 2, "elites": 1},
    "mixer": {"steps": 40, "batch_size": 32},
    "final": {"final_steps": 60, "folds": 0},
    "space": {"width_max": 32, "layers_max": 2},
}


def quick(cls, **kwargs):
    return cls(time_limit=0, population_size=4, recipe=QUICK, **kwargs)


#: scikit-learn checks a search cannot honour, each with its reason
EXPECTED_FAILURES = {
    "check_classifiers_one_label": "a search needs two classes: one label is an error, "
    "not a constant predictor",
    "check_fit2d_1sample": "a search splits its rows into training, validation and test "
    "splits: it needs at least 3 rows of each class (for regression, 3 rows)",
}


def _expected(estimator):
    return EXPECTED_FAILURES


@pytest.mark.slow
@parametrize_with_checks(
    [quick(NeuroevoClassifier), quick(NeuroevoRegressor)], expected_failed_checks=_expected
)
def test_scikit_learn_s_estimator_checks(estimator, check):
    check(estimator)


def test_clone_keeps_every_parameter():
    estimator = NeuroevoClassifier(
        time_limit=7, random_state=3, population_size=6, space={"width_max": 16},
        objectives=["metric", "params"], recipe={"mixer": {"steps": 10}}, out="x", verbose=1,
    )  # fmt: skip
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy is not estimator


@pytest.mark.slow
def test_cross_val_score_on_iris_with_string_labels():
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    scores = cross_val_score(quick(NeuroevoClassifier), x, names, cv=3)
    assert scores.shape == (3,) and (scores > 0.6).all()


@pytest.mark.slow
def test_string_labels_and_column_names_round_trip():
    pytest.importorskip("pandas")
    x, y = load_iris(return_X_y=True, as_frame=True)
    labels = y.map({0: "setosa", 1: "versicolor", 2: "virginica"})
    model = quick(NeuroevoClassifier).fit(x, labels)
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    assert list(model.feature_names_in_) == list(x.columns) and model.n_features_in_ == 4
    predicted = model.predict(x)
    assert set(predicted) <= set(model.classes_) and isinstance(predicted[0], str)
    assert model.predict_proba(x).shape == (150, 3)
    assert list(model.model_.features) == list(x.columns)  # the saved model names them too
    with pytest.raises(ValueError, match="feature names"):
        model.predict(x.rename(columns={"petal width (cm)": "other"}))


@pytest.mark.slow
def test_a_pipeline_of_a_scaler_and_a_regressor_on_diabetes():
    x, y = load_diabetes(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), quick(NeuroevoRegressor))
    pipeline.fit(x[:300], y[:300])
    predicted = pipeline.predict(x[300:])
    assert predicted.shape == (142,) and np.isfinite(predicted).all()
    assert pipeline.score(x[300:], y[300:]) > 0.0  # better than the mean


@pytest.mark.slow
def test_the_same_random_state_gives_the_same_model_and_out_keeps_the_run(tmp_path):
    x, y = load_iris(return_X_y=True)
    kept = tmp_path / "run"
    first = quick(NeuroevoClassifier, random_state=4, out=str(kept)).fit(x, y)
    second = quick(NeuroevoClassifier, random_state=4).fit(x, y)
    assert (first.predict_proba(x) == second.predict_proba(x)).all()
    assert (kept / "best" / "model.json").exists() and (kept / "recipe.toml").exists()
    assert neuroevo.load(kept).predict(x).shape == (150,)


def test_a_bad_recipe_key_is_the_recipe_s_error_and_nothing_runs():
    x, y = load_iris(return_X_y=True)
    with pytest.raises(NeuroevoError, match=r"space\.widht_max: unknown key"):
        NeuroevoClassifier(recipe={"space": {"widht_max": 3}}).fit(x, y)
    with pytest.raises(NeuroevoError, match="no \\[task\\] section"):
        NeuroevoClassifier(recipe={"task": {"name": "logbits"}}).fit(x, y)


@pytest.mark.slow
def test_images_with_a_shape_search_convolutions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 1, 6, 6))
    y = (x[:, 0, :3].mean(axis=(1, 2)) > 0).astype(int)
    model = quick(NeuroevoClassifier, space={"conv_layers_min": 1}).fit(x, y)
    assert G.conv_nodes(model.model_.genome)  # the 4-D rows were searched as images
    assert model.predict(x[:5]).shape == (5,)
    flat = quick(NeuroevoClassifier, space={"conv_layers_min": 1}, shape=(1, 6, 6))
    assert G.conv_nodes(flat.fit(x.reshape(90, 36), y).model_.genome)


@pytest.mark.slow
def test_verbose_0_prints_nothing_and_verbose_1_a_line_per_generation(capsys):
    x, y = load_iris(return_X_y=True)
    quick(NeuroevoClassifier).fit(x, y)
    assert capsys.readouterr() == ("", "")
    quick(NeuroevoClassifier, verbose=1).fit(x, y)
    out = capsys.readouterr().out
    assert out.count("\ngen ") == 2 and "neuroevo: estimator_" in out
