import pytest

from neuroevo import recipe as R
from neuroevo.mutations import BUILTINS, CONV_OPERATORS


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


MINIMAL = '[task]\nname = "logbits"\n'


def test_minimal_recipe_gets_defaults_and_an_output_directory(tmp_path):
    r = R.load(write(tmp_path, MINIMAL, "mine.toml"))
    assert r.task.name == "logbits"
    assert r.run.out == "runs/mine"
    assert r.population.size == 18 and r.mixer.steps == 1500
    assert set(r.mutations) == set(BUILTINS)


def test_the_shipped_recipe_is_valid_and_starts_from_the_18_demo_nets():
    r = R.load("recipes/logbits.toml")
    nets = {(net.hidden, net.activation) for net in r.population.initial}
    expected = {((w,) * d, "sigmoid") for w in range(16, 57, 8) for d in (1, 2, 3)}
    assert nets == expected
    dense = set(BUILTINS) - set(CONV_OPERATORS)  # logbits' input has no shape
    assert dense <= set(r.mutations)
    assert all(r.mutations[name] > 0 for name in dense)


def test_resolved_recipe_round_trips_through_toml(tmp_path):
    r = R.load("recipes/logbits.toml", ["mixer.steps=77"])
    again = R.load(write(tmp_path, r.to_toml()))
    assert again.to_dict() == r.to_dict()
    assert again.mixer.steps == 77


def test_overrides_take_toml_values_and_bare_words():
    assert R.parse_override("evolution.generations=3") == ("evolution", "generations", 3)
    assert R.parse_override("mixer.mix_lr=1e-2") == ("mixer", "mix_lr", 0.01)
    assert R.parse_override("run.out=runs/x") == ("run", "out", "runs/x")
    assert R.parse_override('space.activations=["relu"]') == ("space", "activations", ["relu"])
    assert R.parse_override('mutations."pkg.mod:fn"=2') == ("mutations", "pkg.mod:fn", 2)
    for bad in ("generations", "a.b.c=1", "=1", "a.b"):
        with pytest.raises(R.RecipeError, match="expected section.key=value"):
            R.parse_override(bad)


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        (
            MINIMAL + "[mixer]\nstepz = 5\n",
            [],
            r"r\.toml: mixer\.stepz: unknown key \(did you mean mixer\.steps\?\)",
        ),
        (MINIMAL + "[mixr]\nsteps = 5\n", [], r"mixr: unknown section \(did you mean mixer\?\)"),
        (
            MINIMAL + '[mixer]\nsteps = "many"\n',
            [],
            r"r\.toml: mixer\.steps: expected an integer, got \"many\"",
        ),
        (
            MINIMAL + '[space]\nactivations = "relu"\n',
            [],
            r"space\.activations: expected a list of strings",
        ),
        (MINIMAL + "[space]\nwidth_min = 64\nwidth_max = 8\n", [], r"space\.width_max \(8\)"),
        (MINIMAL + "[mixer]\nsteps = 0\n", [], r"mixer\.steps: must be at least 1, got 0"),
        (MINIMAL + "[evolution]\nfolds = 1\n", [], r"evolution\.folds: must be 0 \(no bagged"),
        (MINIMAL + "[evolution]\nfolds = 21\n", [], r"evolution\.folds: must be at most 20"),
        (
            MINIMAL + '[mixer]\nrule = "sgd"\n',
            [],
            r"r\.toml: mixer\.rule: unknown mixer rule 'sgd'",
        ),
        (
            MINIMAL + "[mutations]\ninsert_layr = 1.0\n",
            [],
            r"mutations\.insert_layr: unknown mutation 'insert_layr'; did you mean 'insert_layer'",
        ),
        (MINIMAL + '[mutations]\n"nowhere_mod:f" = 1.0\n', [], r"cannot import 'nowhere_mod'"),
        (MINIMAL + "[mutations]\nidentity = 0\n", [], r"at least one weight must be positive"),
        ("[space]\nwidth_min = 8\n", [], r"task\.name: missing"),
        ('[task]\nname = "logbitz"\n', [], r"unknown task 'logbitz'; did you mean 'logbits'"),
        (MINIMAL + "n_trian = 5\n", [], r"task\.n_trian: .*did you mean task\.n_train"),
        (
            MINIMAL + "[population]\nsize = 4\n[evolution]\nelites = 4\n",
            [],
            r"evolution\.elites: must be below population\.size",
        ),
        (
            MINIMAL + '[population]\ninitial = [{ hidden = [8], activation = "swish" }]\n',
            [],
            r"population\.initial\[0\]\.activation: unknown activation 'swish'",
        ),
        (MINIMAL, ["mixer.stepz=3"], r"^--set: mixer\.stepz: unknown key"),
        (MINIMAL, ["evolution.generations=three"], r"^--set: evolution\.generations: expected"),
        ("[task\nname = 1", [], r"r\.toml: not valid TOML"),
    ],
)
def test_bad_recipes_name_the_file_and_the_key(tmp_path, text, overrides, message):
    with pytest.raises(R.RecipeError, match=message):
        R.load(write(tmp_path, text), overrides)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(R.RecipeError, match=r"nope\.toml: no such recipe file"):
        R.load(tmp_path / "nope.toml")
