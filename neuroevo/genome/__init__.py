"""The genome wing: a net's architecture as a graph, the space it lives in, the mutations that
change it and the contract test for a user's own mutation. Imports no torch.

``neuroevo.genome`` is also the graph's public face: ``genome.mlp``, ``genome.from_json``,
``genome.hidden_nodes`` ... are :mod:`neuroevo.genome.graph`'s (gathered
from its modules: structure, builders, validation, serialization).
"""

from neuroevo.genome.builders import add_conv, add_hidden, empty, mlp, random_genome
from neuroevo.genome.serialization import from_dict, from_json, to_dict, to_json
from neuroevo.genome.structure import (
    CONV,
    IN,
    OUT,
    conv_nodes,
    copy,
    dense_nodes,
    depth,
    equal,
    hidden_nodes,
    n_inputs,
    n_outputs,
    n_parameters,
    signature,
    topological_order,
)
from neuroevo.genome.validation import validate

__all__ = [
    "CONV",
    "IN",
    "OUT",
    "add_conv",
    "add_hidden",
    "conv_nodes",
    "copy",
    "dense_nodes",
    "depth",
    "empty",
    "equal",
    "from_dict",
    "from_json",
    "hidden_nodes",
    "mlp",
    "n_inputs",
    "n_outputs",
    "n_parameters",
    "random_genome",
    "signature",
    "to_dict",
    "to_json",
    "topological_order",
    "validate",
]
