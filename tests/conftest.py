import random

import numpy as np
import pytest
import torch
from hypothesis import settings

# The same examples on every run, so CI's result depends on the code alone; a property test
# that fails names its example, which then fails every time. `pytest --hypothesis-profile
# explore` draws new examples instead.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


# Fixtures that run a whole evolve (the tiny recipe, or a finished run built from it or from a
# recipe of the module's own): a test that asks for one, directly or through another fixture,
# is an end-to-end run, marked slow. `pytest -m "not slow"` runs the rest, in under a minute.
END_TO_END = {
    "tiny_recipe",
    "finished",
    "finished_run",
    "reference",
    "classes_run",
    "shared_run",
    "run_copy",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if END_TO_END & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Tests that draw from global generators (torch.randn in a test body) repeat exactly."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


TINY = """
[task]
name = "logbits"
n_train = 800
n_valid = 400
n_test = 400

[space]
width_min = 4
width_max = 32
layers_min = 1
layers_max = 3

[population]
size = 6
initial = [{ hidden = [16], activation = "relu", lr = 0.01 }]

[evolution]
generations = 2
elites = 1

[final]
final_steps = 40
folds = 0  # no bagged refit (five more trainings) where a test does not look at it

[mixer]
steps = 40
batch_size = 32

[run]
seed = 3
"""


@pytest.fixture
def tiny_recipe(tmp_path):
    """A small logbits recipe that runs end to end in about a second."""

    def write(extra: str = "", name: str = "tiny.toml", *, report: bool = False):
        # the report (plots/, report.html) only where a test looks at it: drawing it takes
        # about a second a run, and most tests run many
        path = tmp_path / name
        path.write_text(TINY + ("" if report else "report = false\n") + extra)
        return path

    return write
