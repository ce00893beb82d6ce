"""neuroevo: neural architecture search by evolution, each generation trained jointly in a
weighted mixer whose mixing weights are the fitness.

The names below load on first use (PEP 562), so ``import neuroevo`` and the ``neuroevo``
command start without importing PyTorch: the command handles Ctrl-C and SIGTERM from its first
instruction.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "evolve": "neuroevo.runner",
    "resume": "neuroevo.runner",
    "RunResult": "neuroevo.runner",
    "Callback": "neuroevo.evolution",
    "load": "neuroevo.model",
    "Model": "neuroevo.model",
    "TensorBoard": "neuroevo.tensorboard",
    "InvalidGenome": "neuroevo.errors",
    "InvalidSpace": "neuroevo.errors",
    "MutationError": "neuroevo.errors",
    "MutationNotApplicable": "neuroevo.errors",
    "NeuroevoError": "neuroevo.errors",
    "UnknownMutation": "neuroevo.errors",
    "from_json": "neuroevo.genome",
    "mlp": "neuroevo.genome",
    "random_genome": "neuroevo.genome",
    "signature": "neuroevo.genome",
    "to_json": "neuroevo.genome",
    "validate": "neuroevo.genome",
    "mutation": "neuroevo.mutations",
    "SearchSpace": "neuroevo.space",
    "Task": "neuroevo.tasks",
    "from_arrays": "neuroevo.tasks",
    "task": "neuroevo.tasks",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neuroevo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
