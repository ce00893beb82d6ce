"""The generation loop: DEAP's tournament selection, mutations, and one mixer run per generation.

One generation: the whole population (elites, which keep training their weights, and
children, which start from their parent's weights) is trained in one mixer run; the mixer's
fitness is set on every individual; the hall of fame keeps the best nets by their own
validation metric (comparable across generations, unlike the mixer's relative scores); the
elites survive unchanged and tournament winners are mutated to fill the population.

At the end the best net by validation metric trains alone for ``final.final_steps`` steps
and is scored once on the test split, which nothing else sees.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import networkx as nx
import torch
from deap import tools
from deap.tools import emo

from neuroevo import tasks
from neuroevo.callbacks.base import Callback, notify
from neuroevo.errors import MutationNotApplicable, NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.genome import mutations
from neuroevo.recipe import Recipe
from neuroevo.search import seeds
from neuroevo.search.individuals import (
    Champion,
    GenerationSummary,
    Individual,
    Migrant,
)
from neuroevo.search.objectives import Objectives
from neuroevo.search.protocol import Search
from neuroevo.search.snapshot import (
    _checked_front,
    _checked_state,
    _new_logbook,
    _random_state_from_json,
    _random_state_to_json,
    finite,
)
from neuroevo.storage.checkpoint import CheckpointError, Snapshot
from neuroevo.training import engine as engine_
from neuroevo.training import kinds, mixer

log = logging.getLogger("neuroevo")

_GLOBAL_RANDOM = threading.Lock()
#: random nets drawn for an initial population's place before a constraint is given up on
RANDOM_DRAWS = 1000


def _canonical(genome: nx.DiGraph) -> str:
    """The architecture and learning rate, lineage left out."""
    g = G.copy(genome)
    g.graph.update(id=None, parent=None, mutation=None, born=None, fresh_weights=False)
    return G.to_json(g)


class Evolution:
    """The population and everything that moves it from one generation to the next."""

    def __init__(
        self,
        recipe: Recipe,
        task: tasks.Task,
        *,
        callbacks: Sequence[Callback] = (),
        engine: engine_.Engine | None = None,
        device: torch.device | str = "cpu",
        island: int = 0,
    ) -> None:
        self.recipe = recipe
        self.task = task
        self.callbacks = list(callbacks)
        # the run's search where this is one of its islands: the hooks go through it, so
        # every hook of a run gets the same ``evolution`` (neuroevo.callbacks.base)
        self.owner: Search | None = None
        # trains a generation's nets in one mixer run (neuroevo.training.engine); the recipe's
        # by default
        self.engine = engine or engine_.choose(recipe.mixer.engine)
        self.device = torch.device(device)  # where the nets train (the driver resolves it)
        self.kind = kinds.get(task.kind)
        # one of recipe.islands.count populations (neuroevo.search.islands); island 0 is the
        # run's own
        self.island = island
        self.islands = recipe.islands.count
        if not 0 <= island < self.islands:
            raise NeuroevoError(f"island {island} of islands.count = {self.islands}")
        self.seed = seed = seeds.island(recipe.run.seed, island)
        self.rng = random.Random(seed)  # mutation choices and the operators' own draws
        # DEAP's selection draws from the global `random`: it runs on this state, swapped in.
        self.selection_state = random.Random(seeds.selection(seed)).getstate()
        self.operators = {name: mutations.resolve(name) for name in recipe.mutations}
        self.next_id = island  # ids step by the island count: unique over every island
        self.generation = 0
        self.hall_of_fame = tools.HallOfFame(
            5, similar=lambda a, b: (a.id, a.generation) == (b.id, b.generation)
        )
        self.objectives = Objectives.of(
            recipe, task.n_inputs, task.n_outputs, task.shape, device=self.device
        )
        # with several objectives, the nets no net seen since beats on every objective
        self.front = self.objectives.new_front()
        self.logbook = _new_logbook(self.objectives.several)
        self.stop_reason: str | None = None
        self._evaluated = False  # the population has been trained and has fitness
        self.population = [Individual(self._new_id(g, born=0)) for g in self._initial_genomes()]

    # ------------------------------------------------------------------ helpers

    def _new_id(self, genome: nx.DiGraph, *, born: int) -> nx.DiGraph:
        genome.graph["id"] = self.next_id
        genome.graph["born"] = born
        self.next_id += self.islands
        return genome

    def _initial_genomes(self) -> list[nx.DiGraph]:
        r, space = self.recipe, self.recipe.space
        genomes = []
        shape = self.task.shape
        for net in r.population.initial:
            try:
                g = G.mlp(
                    self.task.n_inputs,
                    self.task.n_outputs,
                    list(net.hidden),
                    net.activation,
                    lr=net.lr,
                    shape=shape,
                    convs=net.convs(),
                )
                G.validate(g, space)
                problem = self.objectives.broken(g)
                if problem:
                    raise NeuroevoError(f"{problem}; drop it or raise the constraint")
            except NeuroevoError as exc:
                raise NeuroevoError(
                    f"{r.source}: population.initial {list(net.hidden)} {net.activation}: {exc}"
                ) from None
            genomes.append(g)
        while len(genomes) < r.population.size:
            genomes.append(self._random_genome())
        return genomes

    def _random_genome(self) -> nx.DiGraph:
        """A random net of the space, drawn again while it breaks a constraint."""
        space, shape = self.recipe.space, self.task.shape
        for _ in range(RANDOM_DRAWS):
            g = G.random_genome(
                self.task.n_inputs, self.task.n_outputs, space, self.rng, shape=shape
            )
            problem = self.objectives.broken(g)
            if problem is None:
                return g
        raise NeuroevoError(
            f"{self.recipe.source}: {RANDOM_DRAWS} random nets of the space in a row break a "
            f"constraint (the last: {problem}); raise the constraint or narrow the space "
            "(space.width_max, space.layers_max, space.channels_max)"
        )

    def members(self) -> list[engine_.Member]:
        """The population as the engine takes it: genomes, start weights, init seeds."""
        return [
            engine_.Member(ind.genome, ind.start_from, self._init_seed(ind.id))
            for ind in self.population
        ]

    def mixer_seed(self) -> int:
        """The seed of this generation's mixer batches."""
        return seeds.mixer(self.seed, self.generation)

    def _init_seed(self, individual_id: int) -> int:
        """The seed of an individual's fresh weights: (run seed, id), so no state to save."""
        return seeds.fresh_weights(self.seed, individual_id)

    @property
    def evaluated(self) -> bool:
        """Whether the population has been trained and has fitness (until the next breed)."""
        return self._evaluated

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` of every callback with ``evolution`` the run's search: this
        evolution, or the archipelago it is an island of."""
        if self.owner is not None:
            self.owner.notify(hook, **kwargs)
        else:
            notify(self.callbacks, hook, evolution=self, **kwargs)

    def stop(self, reason: str = "callback") -> None:
        """End the run after the current generation."""
        self.stop_reason = reason

    def close(self) -> None:
        """Nothing to release (the :class:`~neuroevo.search.protocol.Search` contract)."""

    @contextmanager
    def _deap_random(self) -> Iterator[None]:
        """DEAP's selection draws from the global ``random``: it runs on this evolution's own
        state, swapped in and out under a lock (islands in threads never interleave), so the
        caller's ``random`` is left as it was."""
        with _GLOBAL_RANDOM:
            saved = random.getstate()
            random.setstate(self.selection_state)
            try:
                yield
            finally:
                self.selection_state = random.getstate()
                random.setstate(saved)

    # ------------------------------------------------------------------ one generation

    def step(self, immigrants: Sequence[Migrant] = ()) -> GenerationSummary:
        """One generation: breed the next population from the last evaluated one (not before
        the first), let ``immigrants`` (nets from other islands) take the places of its last
        children, then train it in one mixer run, set fitness and the hall of fame. No file
        I/O; the caller checkpoints :meth:`state_dict` after it."""
        self.next_population(immigrants)
        return self.evaluate()

    def next_population(self, immigrants: Sequence[Migrant] = ()) -> None:
        """The population a generation trains, as :meth:`step` makes it: bred from the last
        evaluated one (not before the first), ``immigrants`` in the places of its last
        children."""
        if self._evaluated:
            self.breed()
        if immigrants:
            self.receive(immigrants)

    def emigrants(self, k: int) -> list[Migrant]:
        """The ``k`` fittest nets of the evaluated population (by the mixer's fitness, ties by
        place), as they travel to another island: genome JSON and safetensors bytes."""
        if not self._evaluated:
            raise NeuroevoError("emigrants come from an evaluated population")
        ranked = sorted(self.population, key=lambda ind: -ind.fitness.values[0])
        return [Migrant.of(ind.genome, ind.state, self.island) for ind in ranked[:k]]

    def receive(self, immigrants: Sequence[Migrant]) -> None:
        """Put ``immigrants`` in the places of the last children of the bred population: each
        gets a new id of this island (its ``parent`` is its id on the island it left, its
        ``mutation`` ``"migrate"``) and starts its first mixer run here from its weights."""
        if self._evaluated:
            raise NeuroevoError("immigrants join a bred population, before its mixer run")
        children = len(self.population) - self.recipe.evolution.elites
        if len(immigrants) > children:
            raise NeuroevoError(f"{len(immigrants)} immigrants for {children} places")
        arrived = []
        for migrant in immigrants:
            genome, state = migrant.unpack(self.recipe.space)
            genome.graph.update(parent=genome.graph["id"], mutation="migrate")
            arrived.append(Individual(self._new_id(genome, born=self.generation), state))
        if arrived:
            self.population[-len(arrived) :] = arrived

    def evaluate(self) -> GenerationSummary:
        """Train the population in one mixer run and set every individual's fitness."""
        started = time.perf_counter()
        gen, pop = self.generation, self.population
        self.notify("on_generation_begin", generation=gen, population=pop, island=self.island)
        trained = self._train()
        result = trained.mixer
        records = []
        for ind, state, r in zip(pop, trained.states, result.nets):
            ind.genome.graph["fresh_weights"] = False  # consumed: from now on it has weights
            ind.state = state
            ind.result = r
            ind.fitness.values = (r.fitness,)
            if self.objectives.several:
                ind.fitness = self.objectives.fitness(r.fitness, ind.genome)
            records.append(self._record(ind))
        scored = [ind for ind in pop if ind.result.validation_metric is not None]
        self.hall_of_fame.update([Champion.of(ind, gen) for ind in scored])
        if self.objectives.several:
            self._update_front(scored, records)
        metrics = [ind.result.validation_metric for ind in scored]
        best = max(scored, key=lambda i: i.result.validation_metric) if scored else pop[0]
        elapsed = time.perf_counter() - started
        summary = GenerationSummary(
            generation=gen,
            best_metric=max(metrics) if metrics else None,
            mean_metric=sum(metrics) / len(metrics) if metrics else None,
            best_signature=G.signature(best.genome),
            best_id=best.id,
            elapsed=elapsed,
            records=records,
            mixing=(result.recording(), self._mixing(result, elapsed)),
        )
        self._evaluated = True
        front = {"hypervolume": records[0]["hypervolume"]} if self.objectives.several else {}
        self.logbook.record(
            gen=gen,
            nets=len(pop),
            best_metric=summary.best_metric,
            mean_metric=summary.mean_metric,
            max_fitness=max(r.fitness for r in result.nets),
            seconds=round(summary.elapsed, 3),
            **front,
        )
        return summary

    def _update_front(self, scored: list[Individual], records: list[dict[str, Any]]) -> None:
        """Put the generation's nets into the front (by their validation metric and costs),
        and say in each record whether the net is on it and the front's hypervolume."""
        entries = []
        for ind in scored:
            metric = ind.result.validation_metric
            if metric is not None and math.isfinite(metric):
                # not copied here: the front copies what it keeps (DEAP deep-copies on insert)
                entry = Champion(ind.genome, ind.state, self.generation, metric)
                entry.fitness = self.objectives.fitness(metric, ind.genome)
                entries.append(entry)
        self.front.update(entries)
        on = {(c.id, c.generation) for c in self.front}
        volume = round(self.hypervolume(), 6)
        for record in records:
            record["front"] = (record["id"], self.generation) in on
            record["hypervolume"] = volume

    def hypervolume(self) -> float:
        """The front's hypervolume (:meth:`Objectives.hypervolume`)."""
        return self.objectives.hypervolume([c.fitness.values for c in self.front])

    def _train(self) -> engine_.EngineResult:
        """The generation's mixer run, on the population's members, through the engine (with
        several objectives, the race keeps every net no other dominates)."""
        gen, steps = self.generation, self.recipe.mixer.steps
        costs = {}
        if self.objectives.several:
            costs["costs"] = [
                tuple(self.objectives.cost_values(ind.genome).values()) for ind in self.population
            ]

        def on_step(step: int, live: int) -> None:
            self.notify(
                "on_mixer_step",
                generation=gen,
                step=step,
                steps=steps,
                live=live,
                island=self.island,
            )

        return self.engine(
            self.members(),
            kind=self.task.kind,
            train=self.task.train,
            valid=self.task.valid,
            steps=steps,
            seed=self.mixer_seed(),
            config=self.recipe.mixer.config(),
            on_step=on_step,
            device=self.device,
            **costs,
        )

    def _mixing(self, result: mixer.MixerResult, elapsed: float) -> dict[str, Any]:
        """The plain data of the generation's mixer run (:attr:`GenerationSummary.mixing`)."""
        return {
            "generation": self.generation,
            **({"island": self.island} if self.islands > 1 else {}),
            "ids": [ind.id for ind in self.population],
            "retired_at": [r.retired_at for r in result.nets],
            "diverged": [r.diverged for r in result.nets],
            "race_steps": result.race_steps,
            "steps": result.steps,
            "rule": result.rule,
            "metric": result.metric_name,
            "seconds": round(elapsed, 3),
        }

    def _record(self, ind: Individual) -> dict[str, Any]:
        g, r = ind.genome.graph, ind.result
        island = {"island": self.island} if self.islands > 1 else {}
        return {
            "generation": self.generation,
            **island,
            "id": g["id"],
            "parent": g["parent"],
            "mutation": g["mutation"],
            "born": g["born"],
            "signature": G.signature(ind.genome),
            "params": G.n_parameters(ind.genome),
            "lr": g["lr"],
            "fitness": finite(r.fitness),
            "score": finite(r.score),
            "round": r.round,
            "steps_trained": r.steps_trained,
            "diverged": r.diverged,
            "validation_metric": finite(r.validation_metric),
            **self._costs(ind.genome),
        }

    def _costs(self, genome: nx.DiGraph) -> dict[str, int]:
        """A record's costs besides ``params`` (which every record holds)."""
        if not self.objectives.several:
            return {}
        return {k: v for k, v in self.objectives.cost_values(genome).items() if k != "params"}

    def breed(self) -> None:
        """Elites survive unchanged; tournament winners, mutated, fill the population."""
        pop = self.population
        size, elites_n = self.recipe.population.size, self.recipe.evolution.elites
        if self.objectives.several:  # NSGA-II (neuroevo.search.objectives)
            ranked = tools.selNSGA2(pop, elites_n)
            for front in tools.sortNondominated(pop, len(pop)):
                emo.assignCrowdingDist(front)
        else:
            ranked = sorted(pop, key=lambda ind: ind.fitness.values[0], reverse=True)
        next_gen = self.generation + 1
        elites = []
        seen = set()
        for ind in ranked[:elites_n]:
            survivor = Individual(ind.genome, start_from=ind.state)
            elites.append(survivor)
            seen.add((ind.id, _canonical(ind.genome)))
        with self._deap_random():
            if self.objectives.several:
                # DEAP picks four at a time from one shuffle of the population: as many
                # rounds as it takes, the first size - elites picks
                parents = []
                while len(parents) < size - elites_n:
                    parents += tools.selTournamentDCD(pop, len(pop) - len(pop) % 4)
                parents = parents[: size - elites_n]
            else:
                parents = tools.selTournament(
                    pop, size - elites_n, self.recipe.evolution.tournament_size
                )
        children = [self._child(parent, seen, born=next_gen) for parent in parents]
        self.population = elites + children
        self.generation = next_gen
        self._evaluated = False

    def _child(self, parent: Individual, seen: set, *, born: int) -> Individual:
        names = list(self.operators)
        weights = [self.recipe.mutations[n] for n in names]
        duplicate = None
        for _ in range(100):
            name = self.rng.choices(names, weights)[0]
            try:
                genome = self.operators[name](parent.genome, self.rng, self.recipe.space)
            except MutationNotApplicable:
                continue
            if self.objectives.broken(genome):
                continue  # drawn again: no net breaks a constraint
            inherits = not genome.graph["fresh_weights"]
            key = (parent.id if inherits else None, _canonical(genome))
            if inherits and key in seen:
                if duplicate is None:  # the same net twice would train in lockstep
                    duplicate = genome
                continue
            seen.add(key)
            return Individual(self._new_id(genome, born=born), parent.state if inherits else None)
        if duplicate is not None:
            return Individual(self._new_id(duplicate, born=born), parent.state)
        raise NeuroevoError(
            f"no mutation in [mutations] applies to {G.signature(parent.genome)} "
            "(give a positive weight to identity or reset_weights)"
            + (" within [constraints]" if any(self.objectives.limits.values()) else "")
        )

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> Snapshot:
        """The evaluated generation as plain data and tensors (see
        :mod:`neuroevo.storage.checkpoint`); :meth:`load_state_dict` puts an evolution back
        where this left it."""
        tensors: dict[str, torch.Tensor] = {}
        population = []
        for i, ind in enumerate(self.population):
            population.append(
                {"genome": G.to_dict(ind.genome), "fitness": finite(ind.fitness.values[0], -1.0)}
            )
            tensors.update({f"population.{i}.{k}": v for k, v in ind.state.items()})
        champions = []
        for j, champ in enumerate(self.hall_of_fame):
            champions.append(
                {
                    "genome": G.to_dict(champ.genome),
                    "generation": champ.generation,
                    "validation_metric": champ.validation_metric,
                }
            )
            tensors.update({f"hall_of_fame.{j}.{k}": v for k, v in champ.state.items()})
        front = []
        for j, member in enumerate(self.front):  # with several objectives
            front.append(
                {
                    "genome": G.to_dict(member.genome),
                    "generation": member.generation,
                    "validation_metric": member.validation_metric,
                }
            )
            tensors.update({f"front.{j}.{k}": v for k, v in member.state.items()})
        state = {
            "next_id": self.next_id,
            "rng": _random_state_to_json(self.rng.getstate()),
            "selection_rng": _random_state_to_json(self.selection_state),
            "population": population,
            "hall_of_fame": champions,
            "logbook": [dict(record) for record in self.logbook],
            **({"front": front} if self.objectives.several else {}),
            **({"latency_ms": self.objectives.latency.state()} if self.objectives.timed else {}),
        }
        return Snapshot(generation=self.generation, state=state, tensors=tensors)

    def load_state_dict(self, snapshot: Snapshot) -> None:
        """Put the evolution back where :meth:`state_dict` left it (extra keys a driver stored
        beside, such as the recipe, are ignored). Every field is checked
        first (a hand-edited checkpoint with recomputed checksums is a clear
        :class:`CheckpointError`); the process-global random states are left alone."""
        s, t = snapshot.state, snapshot.tensors
        if "islands" in s:
            raise CheckpointError("the checkpoint holds several islands; islands.count is 1")
        where = f"checkpoint of generation {snapshot.generation + 1}"
        try:
            population, champions = _checked_state(s, t, self.recipe, where)
            front = _checked_front(s, t, self.recipe, where) if self.objectives.several else []
            if self.objectives.timed:
                self.objectives.latency.load(s.get("latency_ms"), where)
            rng_state = _random_state_from_json(s["rng"])
            selection_state = _random_state_from_json(s["selection_rng"])
            random.Random().setstate(rng_state)  # raises on a malformed state
            random.Random().setstate(selection_state)
        except CheckpointError:
            raise
        except (
            KeyError,
            TypeError,
            ValueError,
            IndexError,
            AttributeError,
            OverflowError,
            NeuroevoError,
            nx.NetworkXException,
        ) as exc:
            raise CheckpointError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
        self.generation = snapshot.generation
        self.next_id = s["next_id"]
        self.rng.setstate(rng_state)
        self.selection_state = selection_state
        self.population = population
        # the same order as before, ties included (HallOfFame keeps keys ascending)
        self.hall_of_fame.items = champions
        self.hall_of_fame.keys = [c.fitness for c in reversed(champions)]
        self.front = self.objectives.new_front()
        for member in front:
            member.fitness = self.objectives.fitness(member.validation_metric, member.genome)
        self.front.items = front  # the same order as before, ties included (as the hall of fame)
        self.front.keys = [c.fitness for c in reversed(front)]
        if self.objectives.several:
            for ind in population:
                ind.fitness = self.objectives.fitness(ind.fitness.values[0], ind.genome)
        self.logbook = _new_logbook(self.objectives.several)
        for record in s["logbook"]:
            self.logbook.record(**record)
        self._evaluated = True
