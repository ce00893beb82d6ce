"""A checkpoint's population and hall of fame read back, every field checked before it is
used (a hand-edited checkpoint is one located error, never a crash), and the plain-data forms
of random generator states."""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import torch
from deap import tools

from neuroevo.genome import graph as G
from neuroevo.recipe import Recipe
from neuroevo.search.individuals import Champion, Individual
from neuroevo.storage.checkpoint import CheckpointError
from neuroevo.training import network
from neuroevo.training.network import State


def _new_logbook(several: bool = False) -> tools.Logbook:
    """The logbook's columns (with several objectives, the front's hypervolume too)."""
    logbook = tools.Logbook()
    logbook.header = ["gen", "nets", "best_metric", "mean_metric", "max_fitness", "seconds"]
    if several:
        logbook.header.append("hypervolume")
    return logbook


def finite(value: float | None, default: float | None = None) -> float | None:
    """JSON holds no NaN or infinity: a value that is not a finite number is ``default``."""
    return value if value is not None and math.isfinite(value) else default


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked_state(
    s: dict[str, Any], t: dict[str, torch.Tensor], recipe: Recipe, where: str
) -> tuple[list[Individual], list[Champion]]:
    """The population and hall of fame of a checkpoint, every field checked."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise CheckpointError(f"{where}: {what}")

    need(isinstance(s.get("next_id"), int) and not isinstance(s["next_id"], bool), "next_id")
    need(s["next_id"] >= 0, "next_id is negative")
    for key in ("population", "hall_of_fame", "logbook"):
        need(isinstance(s.get(key), list), f"{key} is not a list")
    need(
        len(s["population"]) == recipe.population.size,
        f"holds {len(s['population'])} individuals, population.size is {recipe.population.size}",
    )
    for record in s["logbook"]:
        need(isinstance(record, dict), "a logbook record is not a table")
        need(set(record) <= set(_new_logbook(True).header), "a logbook record has unknown keys")

    def net(item: Any, prefix: str, label: str) -> tuple[nx.DiGraph, State]:
        return _checked_net(item, t, prefix, label, recipe, s["next_id"], where)

    population = []
    for i, item in enumerate(s["population"]):
        genome, state = net(item, f"population.{i}.", f"population {i}")
        need(is_number(item.get("fitness")), f"population {i} fitness is not a number")
        ind = Individual(genome)
        ind.state = state
        ind.fitness.values = (float(item["fitness"]),)
        population.append(ind)
    champions = []
    for j, item in enumerate(s["hall_of_fame"]):
        genome, state = net(item, f"hall_of_fame.{j}.", f"hall of fame {j}")
        gen, metric = item.get("generation"), item.get("validation_metric")
        need(isinstance(gen, int) and 0 <= gen, f"hall of fame {j} generation")
        need(is_number(metric), f"hall of fame {j} validation_metric is not a number")
        champions.append(Champion(genome, state, gen, float(metric)))
    need(len(champions) <= 5, "the hall of fame holds more than 5 nets")
    return population, champions


def _checked_front(
    s: dict[str, Any], t: dict[str, torch.Tensor], recipe: Recipe, where: str
) -> list[Champion]:
    """The front of a checkpoint of a run with several objectives, every field checked."""
    if not isinstance(s.get("front"), list):
        raise CheckpointError(
            f"{where}: holds no front (the checkpoint was written with one objective)"
        )
    front = []
    for j, item in enumerate(s["front"]):
        genome, state = _checked_net(
            item, t, f"front.{j}.", f"front {j}", recipe, s["next_id"], where
        )
        gen, metric = item.get("generation"), item.get("validation_metric")
        if not (isinstance(gen, int) and not isinstance(gen, bool) and gen >= 0):
            raise CheckpointError(f"{where}: front {j} generation")
        if not is_number(metric):
            raise CheckpointError(f"{where}: front {j} validation_metric is not a number")
        front.append(Champion(genome, state, gen, float(metric)))
    return front


def _checked_net(
    item: Any,
    t: dict[str, torch.Tensor],
    prefix: str,
    label: str,
    recipe: Recipe,
    next_id: int,
    where: str,
) -> tuple[nx.DiGraph, State]:
    """A checkpoint's net, checked: ``item`` a table whose genome is valid in the recipe's
    space with an id below ``next_id``, its weights (``t``'s tensors under ``prefix``) its
    genome's shapes in float32."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise CheckpointError(f"{where}: {what}")

    need(isinstance(item, dict), f"{label} is not a table")
    genome = G.from_dict(item.get("genome"), source=f"{where}: {label}")
    G.validate(genome, recipe.space)
    gid = genome.graph["id"]
    need(
        isinstance(gid, int) and not isinstance(gid, bool) and 0 <= gid < next_id,
        f"{label} has id {gid!r}, not below next_id",
    )
    state = _prefixed(t, prefix)
    expected = network.shapes(genome)
    need(
        set(state) == set(expected),
        f"{label}'s weights do not match its genome ({len(state)} tensors, "
        f"{len(expected)} expected)",
    )
    for key, shape in expected.items():
        v = state[key]
        need(
            tuple(v.shape) == shape and v.dtype == torch.float32,
            f"{label} tensor {key} has shape {tuple(v.shape)} {v.dtype}, "
            f"its genome needs {shape} float32",
        )
    return genome, state


def _random_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _random_state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in internal):
        raise ValueError("a random state holds a value that is not an integer")
    return (version, tuple(internal), gauss)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> State:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
