import json

import pytest

from neuroevo import recipe as R
from neuroevo.genome.mutations import BUILTINS, CONV_OPERATORS


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
            r"r\.toml: mixer\.rule: must be one of .*'experts', got 'sgd'",
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


def test_an_unquoted_function_reference_key_is_taken_as_meant():
    # a shell drops the quotes of mutations."pkg.mod:fn"=2 unless the whole setting is quoted
    assert R.parse_override("mutations.mymod:fn=2.0") == ("mutations", "mymod:fn", 2.0)
    r = R.load("recipes/logbits.toml", ["mutations.neuroevo.genome.mutations:identity=2.0"])
    assert r.mutations["neuroevo.genome.mutations:identity"] == 2.0


def test_a_key_that_needs_quotes_gets_the_quoted_form_in_the_error(tiny_recipe, capsys):
    from neuroevo.cli import main

    code = main(["evolve", str(tiny_recipe()), "--set", "mutations.my mod:fn()=2.0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "expected section.key=value" in err
    assert "--set 'mutations.\"my mod:fn()\"=2.0'" in err


def _evolve_without_building_a_net(monkeypatch, recipe, *overrides):
    """``neuroevo evolve`` that fails (exit 1) if a net is ever built; its exit code, stderr
    and seconds."""
    import time

    from neuroevo.cli import main
    from neuroevo.training import network

    def refuse(*args, **kwargs):
        raise AssertionError("a net was built")

    monkeypatch.setattr(network, "build", refuse)
    started = time.perf_counter()
    out = ["--out", str(recipe.parent / "run"), "--quiet"]
    args = ["evolve", str(recipe), *out, *(a for o in overrides for a in ("--set", o))]
    code = main(args)
    return code, time.perf_counter() - started


@pytest.mark.parametrize(
    "overrides, keys, count",
    [
        # two layers of 65,536: one 65,536 x 65,536 matrix, 17 GB, per net
        (
            ["space.width_min=65536", "space.width_max=65536", "space.layers_min=2",
             "space.layers_max=2"],
            "space.width_max, space.layers_max",
            "at least 4,295,229,441 parameters",
        ),
        # 65,536 channels: convolutions into convolutions (task.shape makes logbits an image)
        (
            ["space.channels_max=65536", "space.conv_layers_max=2", "task.shape=[1, 4, 4]"],
            "space.width_max, space.layers_max, space.channels_max, space.conv_layers_max, "
            "space.kernel_sizes",
            "at least 107,644,585,217 parameters",
        ),
    ],
)  # fmt: skip
def test_a_space_whose_largest_net_is_too_large_fails_before_any_net_is_built(
    tmp_path, monkeypatch, capsys, overrides, keys, count
):
    recipe = write(tmp_path, MINIMAL)
    code, seconds = _evolve_without_building_a_net(monkeypatch, recipe, *overrides)
    err = capsys.readouterr().err
    assert code == 2 and seconds < 5
    assert err.startswith(f"neuroevo: error: --set: {keys}: the largest net these allow has")
    assert count in err and "above the limit of 100,000,000 per net" in err
    assert err.count("\n") == 1


def test_a_population_of_the_largest_nets_is_bounded_too(tmp_path, monkeypatch, capsys):
    recipe = write(tmp_path, MINIMAL + "[islands]\ncount = 2\n")
    code, _ = _evolve_without_building_a_net(
        monkeypatch, recipe, "population.size=10000", "space.width_max=4096"
    )
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "--set: population.size, islands.count, space.width_max, space.layers_max: 20,000 nets "
        "as large as the space allows hold at least " in err
    )
    assert "above the limit of 1,000,000,000 in a run" in err


def test_the_task_s_inputs_count_once_the_task_is_built(tmp_path):
    import numpy as np

    from neuroevo.tasks import from_arrays

    r = R.load(write(tmp_path, MINIMAL + "[space]\nwidth_max = 65536\nlayers_max = 1\n"))
    small = from_arrays("small", "classes", np.zeros((30, 10)), np.arange(30) % 3, seed=0)
    R.check_size(r, small)  # 65,536 x 11 + 3 x 65,537
    wide = from_arrays("wide", "classes", np.zeros((30, 2000)), np.arange(30) % 3, seed=0)
    with pytest.raises(
        R.RecipeError,
        match=r"r\.toml: space\.width_max, space\.layers_max: the largest net these allow for "
        r"task 'wide' \(2,000 inputs, 3 outputs\) has 131,334,147 parameters, above the "
        r"limit of 100,000,000 per net",
    ):
        R.check_size(r, wide)


def test_a_csv_too_wide_for_the_space_fails_before_any_net_is_built(tmp_path, monkeypatch, capsys):
    """The recipe alone allows the space; the data's 2,000 columns make its largest net too
    large: evolve says so before a net is built or anything is written."""
    import numpy as np

    rows = np.random.default_rng(0).normal(size=(30, 2001))
    rows[:, -1] = np.arange(30) % 3
    header = ",".join([*(f"f{i}" for i in range(2000)), "label"])
    np.savetxt(tmp_path / "wide.csv", rows, delimiter=",", header=header, comments="")
    recipe = write(
        tmp_path,
        '[task]\npath = "wide.csv"\ntarget = "label"\n[space]\nwidth_max = 65536\nlayers_max = 1\n',
    )
    code, seconds = _evolve_without_building_a_net(monkeypatch, recipe)
    err = capsys.readouterr().err
    assert code == 2 and seconds < 5, err
    assert err.startswith("neuroevo: error: ") and err.count("\n") == 1
    assert "space.width_max, space.layers_max: the largest net these allow for task" in err
    assert "(2,000 inputs, 3 outputs) has 131,334,147 parameters" in err
    assert not (tmp_path / "run").exists()


def test_a_task_with_a_label_of_a_million_fails_before_any_net_is_built(
    tmp_path, monkeypatch, capsys
):
    import torch

    import neuroevo
    from neuroevo import tasks
    from neuroevo.tasks import Task

    @neuroevo.register_task("million_labels")
    def million_labels(seed):
        x = torch.zeros(4, 3)
        y = torch.tensor([0, 1, 2, 10**6])
        return Task("million_labels", "classes", x, y, x, y, x, y)

    try:
        recipe = write(tmp_path, '[task]\nname = "million_labels"\n')
        code, seconds = _evolve_without_building_a_net(monkeypatch, recipe)
    finally:
        tasks.unregister("million_labels")
    err = capsys.readouterr().err
    assert code == 2 and seconds < 5
    assert err == (
        "neuroevo: error: task 'million_labels': 1,000,001 classes (labels 0..1,000,000, a net "
        "output each), above the limit of 10,000 classes; labels are 0..C-1, and a number to "
        'predict is a task of kind "regression"\n'
    )


# --------------------------------------------------------------------------- the schema and [final]

FINAL_KEYS = (
    "final_steps", "patience", "final", "ensemble_size", "refit", "refit_steps", "folds",
    "folds_max_rows", "pick", "time_share",
)  # fmt: skip


def test_the_end_of_run_keys_live_in_final_and_the_resolved_recipe_writes_them_there(tmp_path):
    r = R.load(write(tmp_path, MINIMAL + '[final]\nfinal_steps = 7\nfinal = "ensemble"\n'))
    assert r.final.final_steps == 7 and r.final.final == "ensemble"
    data = r.to_dict()
    assert set(FINAL_KEYS) == set(data["final"]) and not set(FINAL_KEYS) & set(data["evolution"])
    assert "[final]" in r.to_toml()


def test_an_old_recipe_with_them_under_evolution_loads_with_one_deprecation_line(tmp_path, caplog):
    old = MINIMAL + "[evolution]\ngenerations = 3\nfinal_steps = 7\nfolds = 0\n"
    with caplog.at_level("WARNING", logger="neuroevo"):
        r = R.load(write(tmp_path, old), ["evolution.refit=false"])
    assert (r.evolution.generations, r.final.final_steps, r.final.folds) == (3, 7, 0)
    assert r.final.refit is False
    lines = [rec.getMessage() for rec in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0]
    for key in ("final_steps", "folds", "refit"):
        assert f"evolution.{key} is now final.{key}" in lines[0]
    assert "(--set)" in lines[0] and "r.toml" in lines[0]
    # the same recipe written the new way loads the same, without a word
    caplog.clear()
    with caplog.at_level("WARNING", logger="neuroevo"):
        again = R.load(write(tmp_path, r.to_toml(), "new.toml"))
    assert again.to_dict() == r.to_dict() and not caplog.records


def test_an_old_key_given_by_set_overrides_the_new_place_and_errors_name_it_as_given(tmp_path):
    path = write(tmp_path, MINIMAL + "[final]\nfinal_steps = 7\n")
    assert R.load(path, ["evolution.final_steps=9"]).final.final_steps == 9
    with pytest.raises(R.RecipeError, match=r"^--set: evolution\.final_steps: must be at most"):
        R.load(path, ["evolution.final_steps=10000000000"])
    with pytest.raises(R.RecipeError, match=r"^--set: evolution\.folds: expected an integer"):
        R.load(path, ["evolution.folds=many"])
    with pytest.raises(R.RecipeError, match=r"^--set: final\.folds: must be 0 \(no bagged"):
        R.load(path, ["final.folds=1"])


def test_a_key_given_at_both_places_is_refused(tmp_path):
    both = MINIMAL + "[evolution]\nfolds = 2\n[final]\nfolds = 3\n"
    with pytest.raises(
        R.RecipeError, match=r"r\.toml: evolution\.folds: given twice.*final\.folds"
    ):
        R.load(write(tmp_path, both))


def test_a_checkpoint_s_old_recipe_upgrades_to_the_recipe_of_now(tmp_path):
    r = R.load(write(tmp_path, MINIMAL + "[final]\nfinal_steps = 7\n"))
    old = r.to_dict()
    from neuroevo.sections import MOVED

    for (section, name), now in MOVED.items():  # as 0.1.0 recorded the keys it had
        old[section][name] = old[now].pop(name)
    assert R.upgrade(old) == r.to_dict()
    assert R.upgrade(r.to_dict()) == r.to_dict()


def test_every_bound_of_the_schema_is_checked_at_load_naming_the_key(tmp_path):
    from neuroevo import sections
    from neuroevo.genome.space import SearchSpace

    rows = {row.key: row for row in R.schema()}
    assert {f"final.{k}" for k in FINAL_KEYS} <= set(rows)
    checked = 0
    for section, cls in {"space": SearchSpace, **sections.SECTIONS}.items():
        for name, spec in sections.S.settings(cls).items():
            key = f"{section}.{name}"
            assert rows[key].help, key  # every key says what it is
            listed = rows[key].type.startswith("list")
            for bad in (
                spec.low - 1 if spec.low is not None else None,
                spec.high + 1 if spec.high is not None else None,
                spec.above if spec.above is not None else None,  # the open bound itself
                spec.below if spec.below is not None else None,
                "nowhere" if spec.choices else None,
            ):
                if bad is None:
                    continue
                given = json.dumps([bad] if listed else bad)
                with pytest.raises(R.RecipeError, match=rf"^--set: {key}: (each )?must be"):
                    R.load(write(tmp_path, MINIMAL), [f"{key}={given}"])
                checked += 1
    assert checked >= 40


def test_what_may_change_on_resume_is_the_schema_s_word_everywhere(capsys):
    from neuroevo import runner
    from neuroevo.cli import main

    assert runner.EXTENDABLE == R.EXTENDABLE
    assert ("final", "folds") in R.EXTENDABLE and ("final", "final_steps") not in R.EXTENDABLE
    assert {row.key for row in R.schema() if row.resume} == {".".join(k) for k in R.EXTENDABLE}
    with pytest.raises(SystemExit):
        main(["resume", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for section, key in R.EXTENDABLE - {("run", "out")}:
        assert f"{section}.{key}" in shown


@pytest.mark.slow
@pytest.mark.parametrize("name", ["logbits", "digits", "digits_conv"])
def test_every_shipped_recipe_loads_and_runs_shortened(name, tmp_path):
    from pathlib import Path

    from neuroevo.cli import main

    recipe = Path(__file__).parent.parent / "recipes" / f"{name}.toml"
    assert sorted(p.stem for p in recipe.parent.glob("*.toml")) == [
        "digits",
        "digits_conv",
        "logbits",
    ]  # a new recipe joins this test
    short = [
        "evolution.generations=1",
        "evolution.time_budget=0",
        "mixer.steps=20",
        "final.final_steps=5",
        "final.folds=0",
        "run.report=false",
    ]
    args = ["evolve", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*args, *(a for s in short for a in ("--set", s))]) == 0
    assert (tmp_path / "run" / "best" / "model.json").exists()


def test_a_recipe_in_the_old_layout_loads_with_one_line_naming_what_moved(tmp_path, caplog):
    old = write(tmp_path, MINIMAL + "[evolution]\nfinal_steps = 7\nfolds = 0\n", "old.toml")
    with caplog.at_level("WARNING", logger="neuroevo"):
        r = R.load(old)
    assert r.final.final_steps == 7 and r.final.folds == 0
    moved = [rec.getMessage() for rec in caplog.records if "moved" in rec.getMessage()]
    assert len(moved) == 1 and "evolution.final_steps is now final.final_steps" in moved[0]
