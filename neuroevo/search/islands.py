"""Islands: several populations that evolve side by side and send each other their best nets.

``[islands] count = N`` gives a run N populations (islands), each a full
:class:`~neuroevo.search.evolution.Evolution` with its own draws (island 0's are the run's own, so
``count = 1`` is a run without islands, bit for bit) and its own mixer run per generation. The
islands advance in lockstep, one generation at a time, so a run is deterministic wherever its
islands train. Every ``migrate_every`` generations each island sends its ``migrants`` fittest
nets (by the mixer's fitness) to the next island of the ring (island k to k + 1, the last to
0: DEAP's ``migRing`` topology); they arrive as genome JSON and safetensors bytes, take the
places of the last children bred there, and start their first mixer run on the new island from
the weights they travelled with. (``migRing`` itself is not called: it puts immigrants into the
*evaluated* population, where their fitness, relative to their own island's mixer run, would
compete with fitness from another run.)

Where the islands train (``run.backend``):

``local``
    one after another in this process.
``ray``
    each island's generation is a Ray task (``ray.init(address=run.ray_address)``; without an
    address a local cluster sized to the machine, dashboard off). The task gets the island's
    state as JSON and safetensors bytes, the training and validation tensors (put in Ray's object
    store once; workers never see the test split) and its immigrants, and returns the island's
    next state; Ray retries a task whose worker died, so a lost worker costs one generation of
    that island, never the island. The driver keeps every island's state, so one checkpoint
    holds them all. Ray is the optional extra ``ray``.

``count = 1`` is no archipelago: :func:`build` gives the run its one
:class:`~neuroevo.search.evolution.Evolution`, trained in this process whatever the backend
(Ray has nothing to spread; the result is the same on every backend). Both honour
:class:`~neuroevo.search.protocol.Search`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import torch
from deap import tools
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from neuroevo import tasks
from neuroevo.callbacks.base import Callback, notify
from neuroevo.errors import NeuroevoError
from neuroevo.recipe import Recipe, from_dict
from neuroevo.search.evolution import Evolution
from neuroevo.search.individuals import GenerationSummary, Migrant
from neuroevo.search.objectives import Latency, Objectives
from neuroevo.search.protocol import Search
from neuroevo.storage.checkpoint import CheckpointError, Snapshot

log = logging.getLogger("neuroevo")

RAY_HINT = "run.backend = \"ray\" needs Ray: pip install 'neuroevo[ray]'"


def build(
    recipe: Recipe,
    task: tasks.Task,
    *,
    callbacks: Sequence[Callback] = (),
    device: torch.device | str = "cpu",
    backend: Backend | None = None,
) -> Search:
    """The run's search: its one :class:`Evolution` (``islands.count = 1``), else an
    :class:`Archipelago` of its islands on ``backend`` (default: the recipe's)."""
    if recipe.islands.count == 1:
        return Evolution(recipe, task, callbacks=callbacks, device=device)
    return Archipelago(recipe, task, callbacks=callbacks, device=device, backend=backend)


class Archipelago:
    """Every island of a run (two or more), advanced one generation at a time in lockstep,
    with migration: a :class:`~neuroevo.search.protocol.Search` like one evolution, whose
    ``hall_of_fame`` holds the best nets of every island and whose checkpoint holds them all."""

    def __init__(
        self,
        recipe: Recipe,
        task: tasks.Task,
        *,
        callbacks: Sequence[Callback] = (),
        device: torch.device | str = "cpu",
        backend: Backend | None = None,
    ) -> None:
        if recipe.islands.count < 2:
            raise NeuroevoError(
                f"an archipelago has at least 2 islands, not {recipe.islands.count} (one is "
                "a plain Evolution: neuroevo.search.islands.build)"
            )
        self.recipe = recipe
        self.task = task
        self.callbacks = list(callbacks)
        self.islands = [
            Evolution(recipe, task, device=device, island=k) for k in range(recipe.islands.count)
        ]
        for evo in self.islands:
            evo.owner = self  # their hooks are the archipelago's
        self.device = self.islands[0].device
        self.engine = self.islands[0].engine
        self.backend = backend or (Local() if recipe.run.backend == "local" else Ray(recipe))
        self._stop_reason: str | None = None

    # ------------------------------------------------------------------ as one evolution

    @property
    def generation(self) -> int:
        return self.islands[0].generation

    @property
    def stop_reason(self) -> str | None:
        reasons = [self._stop_reason] + [evo.stop_reason for evo in self.islands]
        return next((r for r in reasons if r), None)

    def stop(self, reason: str = "callback") -> None:
        """End the run after the current generation (of every island)."""
        self._stop_reason = reason

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on every callback, with ``evolution`` the archipelago."""
        notify(self.callbacks, hook, evolution=self, **kwargs)

    @property
    def hall_of_fame(self) -> tools.HallOfFame:
        """The best nets over every island, by their validation metric."""
        merged = tools.HallOfFame(
            5, similar=lambda a, b: (a.id, a.generation) == (b.id, b.generation)
        )
        merged.update([champion for evo in self.islands for champion in evo.hall_of_fame])
        return merged

    @property
    def objectives(self) -> Objectives:
        """The islands' objectives, with the latencies every island measured (island 0's
        time where two measured one architecture)."""
        first = self.islands[0].objectives
        latency = Latency(first.latency.device)
        for evo in reversed(self.islands):
            latency.times.update(evo.objectives.latency.times)
        return replace(first, latency=latency)

    @property
    def front(self) -> tools.ParetoFront:
        """With several objectives, the front over every island (empty with one)."""
        merged = self.islands[0].objectives.new_front()
        merged.update([member for evo in self.islands for member in evo.front])
        return merged

    @property
    def logbook(self) -> tools.Logbook:
        """Every island's records, with an ``island`` column."""
        book = tools.Logbook()
        book.header = ["gen", "island", *self.islands[0].logbook.header[1:]]
        rows = [(r["gen"], k, r) for k, evo in enumerate(self.islands) for r in evo.logbook]
        for _, k, record in sorted(rows, key=lambda row: row[:2]):
            book.record(island=k, **record)
        return book

    # ------------------------------------------------------------------ one generation

    def migrating(self) -> bool:
        """Whether the next generation receives migrants: after every ``migrate_every``
        evaluated generations, with migrants to send."""
        section = self.recipe.islands
        return (
            section.migrants > 0
            and self.islands[0].evaluated
            and (self.generation + 1) % section.migrate_every == 0
        )

    def immigrants(self) -> list[list[Migrant]]:
        """What each island receives in the next generation: around the ring, island k's
        ``migrants`` fittest go to island k + 1 where migration is due; else nothing."""
        n = len(self.islands)
        arriving: list[list[Migrant]] = [[] for _ in range(n)]
        if self.migrating():
            for k, evo in enumerate(self.islands):
                arriving[(k + 1) % n] = evo.emigrants(self.recipe.islands.migrants)
        return arriving

    def step(self) -> GenerationSummary:
        """One generation of every island: migration first where it is due, then every island
        breeds and trains. Returns the generation's summary over all islands, each island's
        own under ``islands``."""
        started = time.perf_counter()
        immigrants = self.immigrants()
        if any(immigrants):
            sent = sum(m.size for group in immigrants for m in group)
            log.info("migration: %d nets, %d bytes", sum(map(len, immigrants)), sent)
        summaries = self.backend.step(self, immigrants)
        return _merged(summaries, time.perf_counter() - started)

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> Snapshot:
        """Each island's state under ``islands``, its tensors prefixed ``island.K.``."""
        states, tensors = [], {}
        for k, evo in enumerate(self.islands):
            snapshot = evo.state_dict()
            states.append(snapshot.state)
            tensors.update({f"island.{k}.{name}": t for name, t in snapshot.tensors.items()})
        return Snapshot(self.generation, {"islands": states}, tensors)

    def load_state_dict(self, snapshot: Snapshot) -> None:
        states = snapshot.state.get("islands")
        if not isinstance(states, list) or len(states) != len(self.islands):
            held = len(states) if isinstance(states, list) else 1
            raise CheckpointError(
                f"checkpoint of generation {snapshot.generation + 1}: holds {held} island(s), "
                f"islands.count is {len(self.islands)}"
            )
        for k, (evo, state) in enumerate(zip(self.islands, states)):
            if not isinstance(state, dict):
                raise CheckpointError(f"checkpoint: island {k} is not a table")
            prefix = f"island.{k}."
            tensors = {
                name[len(prefix) :]: t
                for name, t in snapshot.tensors.items()
                if name.startswith(prefix)
            }
            evo.load_state_dict(Snapshot(snapshot.generation, state, tensors))


def _merged(summaries: list[GenerationSummary], elapsed: float) -> GenerationSummary:
    """The generation over every island: the best and mean metric of all its nets."""
    records = [r for s in summaries for r in s.records]
    metrics = [r["validation_metric"] for r in records if r["validation_metric"] is not None]
    best = max(
        (s for s in summaries if s.best_metric is not None),
        key=lambda s: s.best_metric,
        default=summaries[0],
    )
    return GenerationSummary(
        generation=summaries[0].generation,
        best_metric=max(metrics) if metrics else None,
        mean_metric=sum(metrics) / len(metrics) if metrics else None,
        best_signature=best.best_signature,
        best_id=best.best_id,
        elapsed=elapsed,
        records=records,
        islands=summaries,
    )


# --------------------------------------------------------------------------- backends


class Backend:
    """Trains one generation of every island: ``step(archipelago, immigrants)`` returns each
    island's summary, in island order, the islands' states advanced."""

    def step(
        self, archipelago: Archipelago, immigrants: list[list[Migrant]]
    ) -> list[GenerationSummary]:
        raise NotImplementedError

    def close(self) -> None: ...


class Local(Backend):
    """The islands one after another, in this process."""

    def step(self, archipelago, immigrants):
        return [evo.step(arriving) for evo, arriving in zip(archipelago.islands, immigrants)]


class Ray(Backend):
    """Each island's generation is a Ray task (see the module's docstring)."""

    def __init__(self, recipe: Recipe) -> None:
        try:
            import ray
        except ImportError:
            raise NeuroevoError(RAY_HINT) from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            address = recipe.run.ray_address or None
            try:
                ray.init(
                    address=address,
                    num_cpus=None if address else os.cpu_count(),
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
                raise NeuroevoError(
                    f"run.ray_address: cannot start or reach {where} ({exc})"
                ) from None
        gpus = 1 if recipe.run.device.startswith("cuda") else 0
        self.remote = ray.remote(max_retries=3, num_cpus=recipe.run.threads, num_gpus=gpus)(
            _advance
        )
        self.data: Any = None

    def step(self, archipelago, immigrants):
        if self.data is None:  # the training and validation rows, once
            self.data = self.ray.put(_task_bytes(archipelago.task))
        recipe = json.dumps(archipelago.recipe.to_dict())
        futures = [
            self.remote.remote(
                recipe,
                k,
                _pack(evo.state_dict()) if evo.evaluated else None,
                [asdict(m) for m in arriving],
                str(evo.device),
                self.data,
            )
            for k, (evo, arriving) in enumerate(zip(archipelago.islands, immigrants))
        ]
        summaries = []
        for evo, (state, summary) in zip(archipelago.islands, self._results(futures)):
            evo.load_state_dict(_unpack(state))
            summaries.append(_summary_from(summary))
        return summaries

    def _results(self, futures: list[Any]) -> list[Any]:
        """Every island's result; an island whose task failed stops the run (the last
        complete checkpoint holds every island): an error of the run's own (a recipe's user
        mutation, say) as itself, a worker lost more often than Ray retries as one line."""
        try:
            return self.ray.get(futures)
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, NeuroevoError):
                raise cause from None
            raise
        except self.ray.exceptions.RayError as exc:
            raise NeuroevoError(
                f"an island's Ray task failed after Ray's retries ({type(exc).__name__}); the "
                "last complete checkpoint holds every island: go on with neuroevo resume"
            ) from None

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()


# --------------------------------------------------------------------------- the Ray task


def _advance(
    recipe_json: str,
    island: int,
    state: dict[str, Any] | None,
    immigrants: list[dict[str, Any]],
    device: str,
    data: bytes,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One generation of island ``island`` on a Ray worker: plain data in, plain data out."""
    from neuroevo.training import engine

    recipe = from_dict(json.loads(recipe_json), source="the run's recipe")
    with engine.threads(recipe.run.threads):
        evo = Evolution(recipe, _worker_task(data), device=device, island=island)
        if state is not None:
            evo.load_state_dict(_unpack(state))
        summary = evo.step([Migrant(**m) for m in immigrants])
        return _pack(evo.state_dict()), _summary_to(summary)


_TASK_CACHE: dict[str, tasks.Task] = {}


def _task_bytes(task: tasks.Task) -> bytes:
    """The kind, class names and training and validation tensors as safetensors bytes."""
    classes = list(task.classes) or (
        [str(c) for c in range(task.n_outputs)] if task.kind == "classes" else []
    )
    meta = {
        "name": task.name,
        "kind": task.kind,
        "classes": json.dumps(classes),
        "shape": json.dumps(task.shape),
    }
    tensors = {
        "x_train": task.x_train,
        "y_train": task.y_train,
        "x_valid": task.x_valid,
        "y_valid": task.y_valid,
    }
    return save_tensors({k: v.contiguous() for k, v in tensors.items()}, metadata=meta)


def _worker_task(data: bytes) -> tasks.Task:
    """The task a worker trains on, from :func:`_task_bytes`; built once per worker."""
    key = hashlib.sha256(data).hexdigest()
    if key not in _TASK_CACHE:
        meta = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
        t = load_tensors(data)
        _TASK_CACHE.clear()
        _TASK_CACHE[key] = tasks.Task(
            name=meta["name"],
            kind=meta["kind"],
            x_train=t["x_train"],
            y_train=t["y_train"],
            x_valid=t["x_valid"],
            y_valid=t["y_valid"],
            x_test=t["x_valid"][:0],  # workers never see the test split
            y_test=t["y_valid"][:0],
            classes=tuple(json.loads(meta["classes"])),
            shape=tuple(shape) if (shape := json.loads(meta["shape"])) else None,
        )
    return _TASK_CACHE[key]


def _pack(snapshot: Snapshot) -> dict[str, Any]:
    tensors = {k: v.detach().contiguous().cpu() for k, v in snapshot.tensors.items()}
    return {
        "generation": snapshot.generation,
        "state": json.dumps(snapshot.state, allow_nan=False),
        "tensors": save_tensors(tensors),
    }


def _unpack(packed: dict[str, Any]) -> Snapshot:
    return Snapshot(
        packed["generation"], json.loads(packed["state"]), load_tensors(packed["tensors"])
    )


def _summary_to(summary: GenerationSummary) -> dict[str, Any]:
    plain = {k: v for k, v in vars(summary).items() if k != "mixing"}
    if summary.mixing is not None:
        tensors, meta = summary.mixing
        plain["mixing"] = (save_tensors({k: v.contiguous() for k, v in tensors.items()}), meta)
    return plain


def _summary_from(plain: dict[str, Any]) -> GenerationSummary:
    mixing = plain.pop("mixing", None)
    if mixing is not None:
        mixing = (load_tensors(mixing[0]), mixing[1])
    return GenerationSummary(**plain, mixing=mixing)
