"""Contract checks for authors of custom mutations.

>>> from neuroevo.genome.testing import check_mutation
>>> applied = check_mutation("neuroevo.genome.mutations:alter_width")  # or "my_package.ops:widen"

It raises on the first violation, naming it.

The check applies the operator to many random genomes and verifies what every mutation must
guarantee: a new genome that keeps every invariant inside the space, the parent unchanged, the
lineage recorded, and the same result from the same seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from neuroevo.errors import MutationNotApplicable
from neuroevo.genome import graph as G
from neuroevo.genome.mutations import Mutation, Operator, resolve
from neuroevo.genome.space import SearchSpace


def check_mutation(
    op: str | Mutation | Operator,
    *,
    space: SearchSpace | None = None,
    n_in: int = 8,
    n_out: int = 3,
    trials: int = 50,
    seed: int = 0,
    shape: Sequence[int] | None = None,
) -> int:
    """Apply ``op`` to ``trials`` random genomes; return how many times it applied. With the
    input's ``shape`` (``n_in`` values), the genomes start with random convolutions.

    Raises :class:`AssertionError` (or the operator's own :class:`MutationError`) on the first
    broken promise.
    """
    if isinstance(op, str):
        op = resolve(op)
    elif not isinstance(op, Mutation):
        op = Mutation(getattr(op, "__name__", "user_mutation"), op)
    space = space or SearchSpace(width_min=2, width_max=32, layers_min=0, layers_max=4)
    applied = 0
    for trial in range(trials):
        draw = random.Random(seed * 100_003 + trial)
        parent = G.random_genome(n_in, n_out, space, draw, shape=shape)
        if trial % 2:  # half the parents get a skip edge, so skip removal is exercised too
            order = G.topological_order(parent)
            free = [
                (u, v)
                for i, u in enumerate(order)
                for v in order[i + 1 :]
                if not parent.has_edge(u, v)
                and (not G.is_conv(parent, v) or G.is_spatial(parent, u))
            ]
            if free:
                parent.add_edge(*draw.choice(free))
        parent.graph["id"] = trial
        before = G.to_json(parent)
        try:
            child = op(parent, random.Random(trial), space)
        except MutationNotApplicable:
            continue
        applied += 1
        assert G.to_json(parent) == before, f"{op.name} changed its parent"
        assert child.graph["parent"] == trial, f"{op.name} did not record the parent id"
        assert child.graph["mutation"] == op.name, f"{op.name} did not record its name"
        again = op(parent, random.Random(trial), space)
        assert G.equal(child, again), f"{op.name} gave two results for one seed"
    return applied
