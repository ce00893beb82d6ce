"""The run driver: a recipe in, a finished run directory out.

:func:`evolve` resolves the recipe, builds the task, takes the run directory's lock, decides
between a fresh run and a resume (checksums, recipe and data fingerprint checked first), then
advances the run's :class:`~neuroevo.search.protocol.Search` (one evolution, or islands)
generation by generation, writing history and a checkpoint after each, until a stopping rule of
:mod:`neuroevo.search.stopping` ends it; then the best net's final training and the summary
(:class:`~neuroevo.results.summary.Summary`). The search holds the populations and one
generation; this module owns I/O and resume: :meth:`_Run.restore`, :meth:`_Run.search`,
:meth:`_Run.finish`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from deap import tools

from neuroevo import tasks
from neuroevo.callbacks.base import Callback
from neuroevo.errors import NeuroevoError, printable
from neuroevo.genome import graph as G
from neuroevo.recipe import (
    EXTENDABLE,
    Recipe,
    check_size,
    from_dict,
    load,
    parse_override,
    upgrade,
)
from neuroevo.results import report
from neuroevo.results.history import history as history_frame
from neuroevo.results.summary import Best, Final, Summary
from neuroevo.results.summary import read as read_summary
from neuroevo.search import final, islands, stopping
from neuroevo.search.individuals import Champion
from neuroevo.search.protocol import Search
from neuroevo.search.snapshot import finite, is_number
from neuroevo.storage import checkpoint, fileio, rundir
from neuroevo.storage.checkpoint import CheckpointError, Snapshot
from neuroevo.storage.rundir import RunDir
from neuroevo.training import engine, kinds
from neuroevo.training.network import State

log = logging.getLogger("neuroevo")


@dataclass
class RunResult:
    """What :func:`evolve` and :func:`resume` return: the run directory, its summary, the best
    net (genome and weights) and DEAP's logbook and hall of fame of the search."""

    out: Path
    summary: Summary  # as summary.json holds it (Summary.to_dict)
    best_genome: nx.DiGraph
    best_state: State
    logbook: tools.Logbook
    hall_of_fame: tools.HallOfFame

    def history(self) -> Any:
        """The run's history as a pandas DataFrame (:func:`neuroevo.results.history.history`)."""
        return history_frame(self.out)


#: keys recipes gained after checkpoints were first written, with the value runs used before:
#: a checkpoint whose recipe lacks one goes on with that value, so it resumes as it started
BEFORE_KEY = {
    ("mixer", "engine"): "loop",
    ("run", "device"): "cpu",
    ("islands", "count"): 1,
    ("islands", "migrate_every"): 5,
    ("islands", "migrants"): 1,
    ("islands", "topology"): "ring",
    ("space", "pools"): [1],  # convolutions did not pool
    ("evolution", "objectives"): ["metric"],  # one objective
    ("final", "pick"): "metric",
    ("constraints", "max_params"): 0,
    ("constraints", "max_macs"): 0,
    ("constraints", "max_latency_ms"): 0.0,
    ("mixer", "mix_rows"): 0,  # updates read a batch of batch_size rows
}


def _as_written(recipe: Recipe, snapshot: Snapshot | None) -> Recipe:
    """``recipe`` with the values of :data:`BEFORE_KEY` its checkpoint's recipe implies."""
    saved = snapshot.state.get("recipe") if snapshot is not None else None
    if not isinstance(saved, dict):
        return recipe
    for (section, key), value in BEFORE_KEY.items():
        part = saved.get(section)
        if isinstance(part, dict) and key not in part:
            changed = dataclasses.replace(getattr(recipe, section), **{key: value})
            recipe = recipe.replace(**{section: changed})
    return recipe


def _recipe_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    changes = []
    for section in sorted(set(saved) | set(now)):
        a, b = saved.get(section, {}), now.get(section, {})
        if not isinstance(a, dict) or not isinstance(b, dict):
            changes.append(f"[{section}]")
            continue
        for key in sorted(set(a) | set(b), key=str):
            was = a.get(key, BEFORE_KEY.get((section, key)))
            if (section, key) not in EXTENDABLE and was != b.get(key):
                changes.append(f"{section}.{key}: {was!r} in the checkpoint, {b.get(key)!r} now")
    return changes


def evolve(
    recipe: Recipe | str | Path | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    task: str | Mapping[str, Any] | tasks.Task | None = None,
    **sections: Mapping[str, Any],
) -> RunResult:
    """Run a recipe (an object or a TOML path) into its run directory; return the result.

    Or build the recipe from keyword arguments, as a TOML file with those tables would give it
    (the same checks and one-line errors, the same defaults, written to the run directory as
    ``recipe.toml``): ``task`` is a registered task's name, a ``[task]`` table as a dict, or a
    :class:`~neuroevo.tasks.Task` (such as :func:`~neuroevo.tasks.from_arrays` makes; the
    recipe names it, so a resume in another process needs it registered again), and each
    other keyword a section: ``evolve(task="logbits", space={"width_max": 64},
    population={"size": 12}, out="runs/small")``.

    After every generation a checkpoint is written (see :mod:`neuroevo.storage.checkpoint`). With
    ``resume=True`` a run directory that holds one goes on from it, giving the same result as
    a run never interrupted; the recipe may differ only by more generations or a longer time
    budget (and where the run directory and how many checkpoints are kept). An interrupt
    (``KeyboardInterrupt``) at any moment leaves the last complete checkpoint;
    ``evolution.stop()`` in a callback ends the run after the current generation. The run
    holds the run directory's lock throughout (see :mod:`neuroevo.storage.rundir`).
    """
    if recipe is None:
        return _evolve_from_arguments(
            task, sections, out=out, overwrite=overwrite, resume=resume, callbacks=callbacks
        )
    if task is not None or sections:
        given = ", ".join(["task", *sections] if task is not None else sections)
        raise NeuroevoError(f"evolve: a recipe, or its sections as keyword arguments, not both "
                            f"(got a recipe and {given})")  # fmt: skip
    if not isinstance(recipe, Recipe):
        recipe = load(recipe)
    if out is not None:
        recipe = recipe.replace(run=dataclasses.replace(recipe.run, out=str(out)))
    if not recipe.run.out:
        raise NeuroevoError("run.out: no output directory given")
    snapshot = None
    if resume and checkpoint.exists(recipe.run.out):
        rundir.check_no_links(Path(recipe.run.out))
        snapshot = checkpoint.load_latest(recipe.run.out)
    return _start(recipe, snapshot, overwrite=overwrite, resume=resume, callbacks=callbacks)


def _evolve_from_arguments(
    task: str | Mapping[str, Any] | tasks.Task | None,
    sections: Mapping[str, Mapping[str, Any]],
    **how: Any,
) -> RunResult:
    """:func:`evolve` of a recipe built from keyword arguments."""
    if task is None:
        raise NeuroevoError("evolve: give a recipe, or task= and the other sections by name")
    if isinstance(task, tasks.Task):
        made, name = task, task.name
        if name in tasks.names():
            raise NeuroevoError(
                f"evolve: task={name!r}: a registered task has that name; name the data "
                "another way (from_arrays' first argument)"
            )
        tasks.register_task(name)(lambda *, seed, **_: made)
        try:
            return _evolve_from_arguments(name, sections, **how)
        finally:
            tasks.unregister(name)
    table = {"name": task} if isinstance(task, str) else dict(task)
    return evolve(from_dict({"task": table, **sections}, source="evolve()"), **how)


def resume(
    run_dir: str | Path, overrides: Sequence[str] = (), *, callbacks: Sequence[Callback] = ()
) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint, with its own recipe
    (``overrides`` may extend it: see :data:`EXTENDABLE`). Every checksum is verified before
    the recipe is loaded, so nothing a tampered run directory names is imported first."""
    path = Path(run_dir)
    if not path.is_dir():
        raise NeuroevoError(f"{path}: not a run directory (no such directory)")
    rundir.check_no_links(path)
    if not (path / "recipe.toml").exists():
        raise NeuroevoError(f"{path}: not a run directory (no recipe.toml)")
    if not checkpoint.exists(path):
        raise NeuroevoError(f"{path}: no checkpoint to resume from (no generation completed)")
    snapshot = checkpoint.load_latest(path)
    check_named_modules(path, snapshot, overrides)  # before load() imports what it names
    recipe = load(path / "recipe.toml", overrides, out=str(path))
    return _start(recipe, snapshot, overwrite=False, resume=True, callbacks=callbacks)


def check_named_modules(path: Path, snapshot: Snapshot, overrides: Sequence[str] = ()) -> None:
    """:func:`neuroevo.storage.checkpoint.check_named_modules` with ``--set`` overrides applied."""
    if isinstance(overrides, str):  # one override, not its characters
        overrides = [overrides]
    checkpoint.check_named_modules(path, snapshot, [parse_override(t) for t in overrides])


def _start(
    recipe: Recipe,
    snapshot: Snapshot | None,
    *,
    overwrite: bool,
    resume: bool,
    callbacks: Sequence[Callback],
) -> RunResult:
    """Build the task, take the lock, check the resume, run. ``snapshot``: the verified
    checkpoint to go on from (None: a fresh run, or a resume with nothing completed)."""
    started = stopping.now()  # the whole run's time counts from here (run.time_limit)
    recipe = _as_written(recipe, snapshot)
    device = engine.device(recipe.run.device)  # a missing GPU stops the run before it starts
    with engine.threads(recipe.run.threads):
        path = Path(recipe.run.out)
        task = tasks.build(recipe.task.name, recipe.run.seed, **recipe.task.options)
        if task.kind not in kinds.KINDS:
            raise NeuroevoError(f"task {recipe.task.name!r} has unknown kind {task.kind!r}")
        check_size(recipe, task)  # the largest net between the task's own inputs and outputs
        fingerprint = task.fingerprint()
        with rundir.locked(path, create=True):
            if resume and snapshot is None and checkpoint.exists(path):  # written meanwhile
                snapshot = checkpoint.load_latest(path)
                recipe = _as_written(recipe, snapshot)
                device = engine.device(recipe.run.device)
            if snapshot is not None:
                if _check_resumable(path, snapshot, recipe, fingerprint, task):
                    return _draw_report(recipe, task, snapshot, callbacks, device)
                run_dir = RunDir(path, existing=True)
            else:
                if resume and rundir.holds_run(path) not in ([], ["recipe.toml"]):
                    raise CheckpointError(
                        f"{path}: holds a run ({', '.join(rundir.holds_run(path))}) but no "
                        f"checkpoint to resume from ({checkpoint.DIRECTORY}/{checkpoint.POINTER} "
                        "is missing); nothing was changed; replace the run with --overwrite"
                    )
                # nothing completed yet: a resume starts afresh
                run_dir = RunDir(path, overwrite=overwrite or resume)
            search = islands.build(recipe, task, callbacks=callbacks, device=device)
            run = _Run(search, recipe, task, run_dir, fingerprint, device, stopping.Clock(started))
            try:
                run.restore(snapshot)
                return run.finish(run.search_until_stopped())
            finally:
                search.close()


def _draw_report(
    recipe: Recipe,
    task: tasks.Task,
    snapshot: Snapshot,
    callbacks: Sequence[Callback],
    device: torch.device,
) -> RunResult:
    """A complete run stopped while its report was drawn (after ``summary.json``): draw the
    report, change nothing else, and give the run's result back."""
    from neuroevo.results import model

    path = Path(recipe.run.out)
    log.info("%s: the run is complete; drawing its report", path)
    genome, state = model.read_net(path / "best")
    summary = read_summary(path)
    if summary is None:
        raise NeuroevoError(f"{path}: the run is complete but has no summary.json")
    report.write_safely(path)
    evo = islands.build(recipe, task, callbacks=callbacks, device=device, backend=islands.Local())
    try:
        evo.load_state_dict(snapshot)
        result = RunResult(path, summary, genome, state, evo.logbook, evo.hall_of_fame)
        evo.notify("on_run_end", result=result)
    finally:
        evo.close()
    return result


@dataclass
class _Run:
    """One run being driven: its search, its directory and what its checkpoints record."""

    search: Search
    recipe: Recipe
    task: tasks.Task
    run_dir: RunDir
    fingerprint: str  # the data's (tasks.Task.fingerprint)
    device: torch.device
    clock: stopping.Clock = field(default_factory=stopping.Clock)
    stoppers: list[stopping.Stopper] = field(default_factory=list)
    since: float | None = None  # the clock where the last generation's training ended

    def restore(self, snapshot: Snapshot | None) -> None:
        """Put the search where ``snapshot`` left it (None: a fresh run), cut the history
        there, write the recipe and call ``on_run_begin``."""
        if snapshot is not None:
            before = snapshot.state.get("device")
            if before is not None and before != str(self.device):
                log.warning(
                    "the run went on %s and resumes on %s: from here its floating-point "
                    "results may differ in the last bits from a run on one device",
                    printable(str(before)),  # the checkpoint's text: shown, never obeyed
                    self.device,
                )
            self.search.load_state_dict(snapshot)
            self.run_dir.truncate_history(snapshot.state["history_bytes"])
            self.clock.durations = list(snapshot.state["durations"])
            self.clock.before = snapshot.state["search_seconds"]
            log.info("resuming %s after generation %d", self.run_dir.path, snapshot.generation + 1)
        self.run_dir.write_recipe(self.recipe.to_toml())
        self.search.notify(
            "on_run_begin",
            recipe=self.recipe,
            task=self.task,
            out=self.run_dir.path,
            engine=self.search.engine.__name__,
            device=str(self.device),
        )

    def search_until_stopped(self) -> str:
        """Generations until a stopping rule answers (at least one in all); its reason."""
        if not self.clock.durations:
            self.generation()
        self.stoppers = stopping.rules(self.recipe)
        while not (reason := stopping.first_reason(self.stoppers, self.search, self.clock)):
            self.generation()
        return reason

    def generation(self) -> None:
        """One generation: its history and mixing records, then its checkpoint. Its duration
        counts from the end of the training of the one before (its records, callbacks and the
        stopping rules included), where this process ran that one."""
        began = self.clock.now() if self.since is None else self.since
        summary = self.search.step()
        self.since = self.clock.now()
        took = self.since - began
        parts = summary.islands or [summary]  # one population: the summary is its own
        self.run_dir.append_history(summary.records)
        for part in parts:
            if part.mixing is not None:
                self.run_dir.write_mixing(*part.mixing)
        self.clock.durations.append(took)
        saved = self.search.state_dict()
        saved.state.update(
            recipe=self.recipe.to_dict(),
            data_sha256=self.fingerprint,
            history_bytes=self.run_dir.history_size(),
            durations=self.clock.durations,
            search_seconds=self.clock.seconds(),
            device=str(self.device),
        )
        checkpoint.save(self.run_dir.path, saved, keep=self.recipe.run.keep_checkpoints)
        self.search.notify(
            "on_generation_end", summary=summary, logbook=self.search.logbook, islands=parts
        )
        log.info("generation %d: best %s", summary.generation, summary.best_signature)

    def finish(self, stopped_by: str) -> RunResult:
        """The final model, ``best/``, ``summary.json``, the report and ``on_run_end``."""
        completed = self.search.generation + 1
        searched = self.clock.seconds()
        if not self.search.hall_of_fame:
            raise NeuroevoError(
                f"every net diverged: no net has a finite validation metric after {completed} "
                "generation(s) (lower space.lr_max, or check the data's scale); the run's "
                "checkpoints are kept"
            )
        limit = self.recipe.run.time_limit
        final_started = self.clock.now()
        finished = final.finish(self.search, self.clock.deadline(limit) if limit else None)
        final_seconds = self.clock.now() - final_started
        champion, state = finished.members[0].champion, finished.members[0].state
        if finished.weights is not None:  # before model.json, which names the ensemble
            self.run_dir.write_ensemble(
                [m.genome for m in finished.members],
                [m.state for m in finished.members],
                finished.weights,
            )
        several = "ensemble" if finished.weights is not None else "best"  # model.json's
        data_format = {**self.task.data_format(), "final": several}
        self.run_dir.write_best(champion.genome, state, data_format)
        self._write_front(finished.front)
        summary = self.summary(champion, finished, stopped_by, searched, final_seconds)
        self.run_dir.write_summary(summary.to_dict())
        if self.recipe.run.report:
            report.write_safely(self.run_dir.path)
        hall_of_fame, logbook = self.search.hall_of_fame, self.search.logbook
        result = RunResult(
            self.run_dir.path, summary, champion.genome, state, logbook, hall_of_fame
        )
        self.search.notify("on_run_end", result=result)
        return result

    def _write_front(self, front: list[final.FrontModel]) -> None:
        """``front/N``: each member of the front as a model (none with one objective)."""
        for i, model in enumerate(front):
            folder = f"{rundir.FRONT}/{i}"
            if model.weights is not None:
                self.run_dir.write_ensemble(
                    [m.genome for m in model.members],
                    [m.state for m in model.members],
                    model.weights,
                    folder,
                )
            several = "ensemble" if model.weights is not None else "best"
            data_format = {**self.task.data_format(), "final": several}
            first = model.members[0]
            self.run_dir.write_best(first.genome, first.state, data_format, folder)
        self.run_dir.prune_front(len(front))

    def summary(
        self,
        champion: Champion,
        finished: final.Finished,
        stopped_by: str,
        searched: float,
        final_seconds: float,
    ) -> Summary:
        count = self.recipe.islands.count
        best = Best(
            id=champion.id,
            generation=champion.generation,
            signature=G.signature(champion.genome),
            params=G.n_parameters(champion.genome),
            genome=json.loads(G.to_json(champion.genome)),
            search_validation_metric=finite(champion.validation_metric),
            # the final model's (the ensemble's, where final.choice is "ensemble")
            validation_metric=finite(finished.validation_metric),
            test_metric=finite(finished.test_metric),
            island=champion.id % count if count > 1 else None,
        )
        return Summary(
            metric=self.task.metric_name,
            task=self.recipe.task.name,
            best=best,
            islands=count,
            final=Final(**finished.summary()),
            generations_completed=self.search.generation + 1,
            stopped_by=stopped_by,
            seed=self.recipe.run.seed,
            threads=self.recipe.run.threads,
            device=str(self.device),
            engine=self.search.engine.__name__,
            torch=torch.__version__,
            wall_seconds=round(searched + final_seconds, 3),
            search_seconds=round(searched, 3),
            final_seconds=round(final_seconds, 3),
            time=self._time(finished),
            front=[m.summary(i, i == finished.picked) for i, m in enumerate(finished.front)]
            or None,
        )

    def _time(self, finished: final.Finished) -> dict[str, Any] | None:
        """``summary.json``'s ``time``: the run's limit and how it was planned (None: no
        limit)."""
        limit = self.recipe.run.time_limit
        if not limit:
            return None
        rule = next((s for s in self.stoppers if isinstance(s, stopping.TimeLimit)), None)
        reserved = rule.reserved if rule is not None else None
        return {
            "limit": limit,
            "end_share": self.recipe.final.time_share,
            "end_reserved": None if reserved is None else round(reserved, 3),
            **(finished.plan or {}),
        }


def _without_out(recipe_dict: dict[str, Any]) -> dict[str, Any]:
    """A recipe's plain data without ``run.out``: the same run directory may be spelled in
    many ways (relative, absolute, from another working directory)."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in recipe_dict.items()}
    if isinstance(data.get("run"), dict):
        data["run"].pop("out", None)
    return data


def _check_resumable(
    path: Path, snapshot: Snapshot, recipe: Recipe, fingerprint: str, task: tasks.Task
) -> bool:
    """Refuse a checkpoint that cannot go on (every field it holds checked first, with its
    place named); True where the run is complete but its report was never drawn."""
    s = snapshot.state
    saved = s.get("recipe")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the checkpoint does not record its recipe")
    saved = upgrade(saved)  # keys that moved since the checkpoint, where they are now
    completed = snapshot.generation + 1
    where = f"{path / checkpoint.DIRECTORY / f'gen-{snapshot.generation:04d}' / 'state.json'}"
    durations = s.get("durations")
    if not isinstance(durations, list) or not all(is_number(d) and d >= 0 for d in durations):
        raise CheckpointError(f"{where}: durations are not a list of times")
    if len(durations) != completed:
        raise CheckpointError(
            f"{where}: durations holds {len(durations)} times for {completed} generations"
        )
    bytes_ = s.get("history_bytes")
    if not isinstance(bytes_, int) or isinstance(bytes_, bool) or bytes_ < 0:
        raise CheckpointError(f"{where}: history_bytes is not a byte count")
    seconds = s.get("search_seconds")
    if not is_number(seconds) or seconds < 0:
        raise CheckpointError(f"{where}: search_seconds is not a number of seconds")
    for key in ("data_sha256", "device"):
        if s.get(key) is not None and not isinstance(s[key], str):
            raise CheckpointError(f"{where}: {key} is not a string")
    changes = _recipe_changes(saved, recipe.to_dict())
    if changes:
        may = ", ".join(".".join(k) for k in sorted(EXTENDABLE))
        raise CheckpointError(
            f"{path}: the checkpoint was written by a different recipe ({'; '.join(changes)}); "
            f"only {may} may change on resume"
        )
    recorded = snapshot.state.get("data_sha256")
    if recorded is not None and recorded != fingerprint:
        source = recipe.task.options.get("path") or f"the {recipe.task.name} task"
        raise CheckpointError(
            f"{path}: the data changed since the checkpoint was written ({source}); resuming "
            "would mix two data sets in one run (restore the data, or start afresh with "
            "--overwrite)"
        )
    _check_history(path, bytes_, completed * recipe.population.size * recipe.islands.count, where)
    if recipe.evolution.generations < completed:
        raise CheckpointError(
            f"{path}: evolution.generations={recipe.evolution.generations} is below the "
            f"{completed} generations already completed"
        )
    summary = path / "summary.json"
    if os.path.lexists(summary) and _without_out(saved) == _without_out(recipe.to_dict()):
        if _summarised(path) not in (None, completed):
            return False  # the final training of an extension was stopped: it goes on
        if recipe.run.report and not os.path.lexists(path / "report.html"):
            return True  # stopped while the report was drawn
        longer = [
            f"a longer {key} (now {value:g} s)"
            for key, value in (
                ("run.time_limit", recipe.run.time_limit),
                ("evolution.time_budget", recipe.evolution.time_budget),
            )
            if value
        ]
        raise CheckpointError(
            f"{path}: the run is already complete ({completed} generations); extend it with "
            f"--set evolution.generations={completed + 5}{''.join(f' and {t}' for t in longer)}"
        )
    return False


def _summarised(path: Path) -> int | None:
    """The generations ``summary.json`` says the run completed (None: it does not say)."""
    try:
        completed = rundir.read_summary(path).get("generations_completed")
    except NeuroevoError:
        return None
    return completed if isinstance(completed, int) and not isinstance(completed, bool) else None


def _check_history(path: Path, n_bytes: int, records: int, where: str) -> None:
    """``history.jsonl`` holds at least ``n_bytes``, which end a line and hold ``records``
    lines: the checkpoint's ``history_bytes`` cuts it where the checkpoint was written."""
    file = path / "history.jsonl"
    size = file.stat().st_size if os.path.lexists(file) else 0
    if size < n_bytes:
        raise CheckpointError(
            f"{file}: holds {size} bytes but the checkpoint records history_bytes={n_bytes}; it "
            "was deleted or cut, and resuming would lose the generations it held (restore it, "
            "or start afresh with --overwrite)"
        )
    lines, last = fileio.count_lines(file, n_bytes, what="history")
    if last != b"\n" or lines != records:
        if not n_bytes:
            cut = "holds no record"
        else:
            cut = "ends mid-line" if last != b"\n" else f"ends after {lines} records"
        raise CheckpointError(
            f"{where}: history_bytes={n_bytes} {cut} of {file}, not after the {records} "
            "records of the generations it holds"
        )
