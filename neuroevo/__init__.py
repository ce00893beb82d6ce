"""neuroevo: neural architecture search by evolution, each generation trained jointly in a
weighted mixer whose mixing weights are the fitness.

The public API, imported eagerly (so IDEs and type checkers see every signature). The package
is split into wings, one per concern: :mod:`neuroevo.genome` (graphs, spaces, mutations; no
torch), :mod:`neuroevo.training` (the mixer, the engines), :mod:`neuroevo.tasks`,
:mod:`neuroevo.storage` (run directories, checkpoints), :mod:`neuroevo.search` (evolution,
islands, the end of a run, verify), :mod:`neuroevo.results` (load, predict, export, the report),
:mod:`neuroevo.callbacks` and :mod:`neuroevo.estimators` (scikit-learn's face, imported on first
use).
"""

from neuroevo.callbacks.base import Callback
from neuroevo.callbacks.tensorboard import TensorBoard
from neuroevo.errors import (
    InvalidGenome,
    InvalidSpace,
    MutationError,
    MutationNotApplicable,
    NeuroevoError,
    UnknownMutation,
)
from neuroevo.genome.graph import from_json, mlp, random_genome, signature, to_json, validate
from neuroevo.genome.mutations import mutation, register_mutation
from neuroevo.genome.space import SearchSpace
from neuroevo.genome.testing import check_mutation
from neuroevo.recipe import Recipe
from neuroevo.recipe import load as load_recipe
from neuroevo.results.history import history
from neuroevo.results.model import Model, load
from neuroevo.runner import RunResult, evolve, resume
from neuroevo.tasks import Task, from_arrays, register_task, task

__version__ = "0.1.0"

#: the scikit-learn estimators, imported on first use: scikit-learn is an optional extra (so
#: they are not in ``__all__``: ``from neuroevo import *`` works without it)
_ESTIMATORS = ("NeuroevoClassifier", "NeuroevoRegressor")
SKLEARN_HINT = "pip install 'neuroevo[sklearn]'"


def __getattr__(name: str):
    if name in _ESTIMATORS:
        try:
            from neuroevo import estimators
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "sklearn":
                raise
            raise ImportError(
                f"neuroevo.{name} needs scikit-learn: {SKLEARN_HINT}", name=name
            ) from None
        return getattr(estimators, name)
    raise AttributeError(f"module 'neuroevo' has no attribute {name!r}")


__all__ = [
    "Callback",
    "InvalidGenome",
    "InvalidSpace",
    "Model",
    "MutationError",
    "MutationNotApplicable",
    "NeuroevoError",
    "Recipe",
    "RunResult",
    "SearchSpace",
    "Task",
    "TensorBoard",
    "UnknownMutation",
    "__version__",
    "check_mutation",
    "evolve",
    "from_arrays",
    "from_json",
    "history",
    "load",
    "load_recipe",
    "mlp",
    "mutation",
    "random_genome",
    "register_mutation",
    "register_task",
    "resume",
    "signature",
    "task",
    "to_json",
    "validate",
]
