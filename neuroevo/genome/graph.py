"""The genome: a network architecture as a ``networkx.DiGraph`` (its nodes, edges, shapes and
attributes are described in :mod:`neuroevo.genome.structure`).

This module is the genome's one import for its callers (``from neuroevo.genome import graph as
G``): it gathers the structure and its queries (:mod:`~neuroevo.genome.structure`), building
genomes (:mod:`~neuroevo.genome.builders`), their invariants
(:mod:`~neuroevo.genome.validation`) and their JSON form (:mod:`~neuroevo.genome.serialization`).
It knows nothing of torch: it is the bottom layer of neuroevo.
"""

from neuroevo.genome.builders import (
    add_conv,
    add_hidden,
    empty,
    largest,
    largest_parameters,
    log_uniform,
    mlp,
    random_channels,
    random_genome,
    random_pool,
)
from neuroevo.genome.serialization import (
    FORMAT,
    FORMAT_VERSION,
    from_dict,
    from_json,
    to_dict,
    to_json,
)
from neuroevo.genome.structure import (
    CONV,
    IN,
    OUT,
    conv_nodes,
    conv_positions,
    copy,
    dense_nodes,
    depth,
    edges_keeping_paths,
    equal,
    features,
    hidden_nodes,
    is_conv,
    is_spatial,
    n_inputs,
    n_macs,
    n_outputs,
    n_parameters,
    node_shapes,
    signature,
    topological_order,
)
from neuroevo.genome.validation import check_plain, shape_problem, validate

__all__ = [
    "CONV",
    "FORMAT",
    "FORMAT_VERSION",
    "IN",
    "OUT",
    "add_conv",
    "add_hidden",
    "check_plain",
    "conv_nodes",
    "conv_positions",
    "copy",
    "dense_nodes",
    "depth",
    "edges_keeping_paths",
    "empty",
    "equal",
    "features",
    "from_dict",
    "from_json",
    "hidden_nodes",
    "is_conv",
    "is_spatial",
    "largest",
    "largest_parameters",
    "log_uniform",
    "mlp",
    "n_inputs",
    "n_macs",
    "n_outputs",
    "n_parameters",
    "node_shapes",
    "random_channels",
    "random_genome",
    "random_pool",
    "shape_problem",
    "signature",
    "to_dict",
    "to_json",
    "topological_order",
    "validate",
]
