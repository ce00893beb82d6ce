"""Every seed a run derives from its recipe's ``run.seed``, in one place.

A run draws from several independent streams, each seeded by a fixed function of the run's
seed (and of an island, a generation or an individual), so that nothing but the run seed and
the checkpointed generator states decides a result, and a resumed run draws exactly what an
uninterrupted one does. The arithmetic below is the file format of every run written so far:
changing any of it changes every run, so it never changes.

=====================  ===============================================================
stream                 seed
=====================  ===============================================================
an island's draws      the run's seed for island 0, else ``seed + 0x9E3779B1 * island``
                       modulo ``2**61`` (:func:`island`)
mutation choices       the island's seed (``random.Random``)
tournament selection   the island's seed + 1 (:func:`selection`)
a generation's batches ``island seed * 7919 + generation`` (:func:`mixer`); the mixer
                       draws validation batches from that + 1
an individual's fresh  ``island seed * 1_000_003 + id`` (:func:`fresh_weights`): a pure
weights                function of (seed, id), so there is no state to save
the final training's   ``run seed * 31 + 17`` (:func:`final_batches`)
batches
the bagged refit       ``run seed * 31 + 23`` (:func:`bagging`): its folds, then each
                       copy's fresh weights and batch seed, in order
=====================  ===============================================================

With ``islands.count`` at most 1,000, every derived seed stays within torch's 64-bit
generator seeds (the checkpoint format checks ids below 2**53 for the same reason).
"""

from __future__ import annotations


def island(seed: int, index: int) -> int:
    """The seed of island ``index``'s draws: the run's own for island 0 (so one island is
    exactly a run without islands), distinct for every other island of a run."""
    return seed if index == 0 else (seed + 0x9E3779B1 * index) % (1 << 61)


def selection(island_seed: int) -> int:
    """The seed of an island's tournament selection (DEAP draws from the global generator,
    swapped in for each selection)."""
    return island_seed + 1


def mixer(island_seed: int, generation: int) -> int:
    """The seed of a generation's mixer batches."""
    return island_seed * 7919 + generation


def fresh_weights(island_seed: int, individual_id: int) -> int:
    """The seed of an individual's fresh weights."""
    return island_seed * 1_000_003 + individual_id


def final_batches(run_seed: int) -> int:
    """The seed of the final training's batches."""
    return run_seed * 31 + 17


def bagging(run_seed: int) -> int:
    """The seed of the bagged refit's draws: its stratified folds, then each copy's fresh
    weights and the seed of its batches."""
    return run_seed * 31 + 23
