"""neuroevo: neural architecture search by evolution, each generation trained jointly in a
weighted mixer whose mixing weights are the fitness."""

from neuroevo.errors import (
    InvalidGenome,
    InvalidSpace,
    MutationError,
    MutationNotApplicable,
    NeuroevoError,
    UnknownMutation,
)
from neuroevo.genome import from_json, mlp, random_genome, signature, to_json, validate
from neuroevo.mutations import mutation
from neuroevo.space import SearchSpace
from neuroevo.tasks import Task, from_arrays, task

__version__ = "0.1.0"

__all__ = [
    "InvalidGenome",
    "InvalidSpace",
    "MutationError",
    "MutationNotApplicable",
    "NeuroevoError",
    "SearchSpace",
    "Task",
    "UnknownMutation",
    "from_arrays",
    "from_json",
    "mlp",
    "mutation",
    "random_genome",
    "signature",
    "task",
    "to_json",
    "validate",
]
