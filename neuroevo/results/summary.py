"""``summary.json``: what a finished run records of itself, as a typed object.

The driver builds a :class:`Summary` and writes :meth:`Summary.to_dict`; the report,
``neuroevo show`` and the callbacks read it back with :func:`read`, every field they use
checked first (a missing or wrong field is one error naming the file and the dotted key).
Fields that older runs did not write read as ``None`` (``islands`` as 1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroevo.results.records import check
from neuroevo.storage import rundir

__all__ = ["Best", "Final", "Summary", "read"]

#: what is read of ``summary.json`` and its parts, checked before it is used (see
#: :data:`neuroevo.results.records.RECORD_FIELDS` for the notation)
SUMMARY_FIELDS = {
    "metric": "text",
    "task?": "text",
    "seed": "integer",
    "best": "object",
    "generations_completed": "count",
    "stopped_by": "text",
    "wall_seconds": "number",
    "search_seconds": "number",
    "final_seconds": "number",
    "engine?": "text|null",
    "device?": "text|null",
    "islands?": "count",
    "final?": "object|null",
    "time?": "object|null",
    "front?": "objects|null",
}
#: each member of ``front`` (a run with several objectives)
FRONT_FIELDS = {
    "member": "count",
    "id": "count",
    "generation": "count",
    "signature": "text",
    "params": "count",
    "macs": "count",
    "latency_ms?": "number",
    "validation_metric": "number|null",
    "test_metric": "number|null",
    "picked": "flag",
}
TIME_FIELDS = {"limit": "number", "end_reserved?": "number|null"}
BEST_FIELDS = {
    "id": "count",
    "generation": "count",
    "params": "count",
    "signature": "text",
    "test_metric?": "number|null",
    "validation_metric?": "number|null",
    "island?": "count",
}
FINAL_FIELDS = {"choice?": "text|null", "members?": "counts|null", "refit?": "object|null"}
REFIT_FIELDS = {
    "rows": "count",
    "steps?": "counts|null",
    "folds?": "count|null",
    "out_of_fold_metric?": "number|null",
}


@dataclass(frozen=True)
class Best:
    """The search's best net and the final model's metrics."""

    id: int
    generation: int  # counted from 0
    signature: str
    params: int
    genome: dict[str, Any] | None = None  # as best/genome.json holds it
    search_validation_metric: float | None = None  # the net's, as the search left it
    validation_metric: float | None = None  # the final model's (the ensemble's, where chosen)
    test_metric: float | None = None
    island: int | None = None  # written only where the run has several islands

    def to_dict(self) -> dict[str, Any]:
        plain = dataclasses.asdict(self)
        if self.island is None:
            del plain["island"]  # written only where the run has several islands
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Best:
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Final:
    """The end of the run (:meth:`neuroevo.search.final.Finished.summary`)."""

    choice: str | None = None  # "best" or "ensemble"
    members: list[int] = field(default_factory=list)
    member_validation_metrics: list[float | None] = field(default_factory=list)
    validation_metric_of: dict[str, float | None] = field(default_factory=dict)
    refit: dict[str, Any] | None = None  # see neuroevo.search.final; REFIT_FIELDS are checked

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Final:
        return cls(
            choice=data.get("choice"),
            members=list(data.get("members") or []),
            member_validation_metrics=list(data.get("member_validation_metrics") or []),
            validation_metric_of=dict(data.get("validation_metric_of") or {}),
            refit=data.get("refit"),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Summary:
    """A finished run, as ``summary.json`` holds it."""

    metric: str
    best: Best
    generations_completed: int
    stopped_by: str  # "generations", "time_budget", or a callback's reason
    seed: int
    wall_seconds: float
    search_seconds: float
    final_seconds: float
    task: str | None = None
    islands: int = 1
    final: Final | None = None
    threads: int | None = None
    device: str | None = None
    engine: str | None = None
    torch: str | None = None
    # within run.time_limit: the limit, the share of it the end may take and the seconds the
    # search left it, and neuroevo.search.final.Finished.plan (None: no limit)
    time: dict[str, Any] | None = None
    # with several objectives: each member of the front (FRONT_FIELDS), the most accurate first
    front: list[dict[str, Any]] | None = None

    def timing(self) -> str:
        """The run's time by phase, and its limit where it had one, as a line says it."""
        minutes, rest = divmod(round(self.wall_seconds), 60)
        line = (
            f"{f'{minutes} min {rest} s' if minutes else f'{rest} s'} "
            f"({self.search_seconds:.0f} s search, "
            f"{self.final_seconds:.0f} s end of run"
        )
        limit = (self.time or {}).get("limit")
        if isinstance(limit, (int, float)) and limit:
            line += f"; limit {limit:g} s, the report drawn after it"
        return line + ")"

    def to_dict(self) -> dict[str, Any]:
        """The plain data ``summary.json`` holds."""
        return {
            "metric": self.metric,
            "task": self.task,
            "best": self.best.to_dict(),
            "islands": self.islands,
            "final": self.final.to_dict() if self.final is not None else None,
            "generations_completed": self.generations_completed,
            "stopped_by": self.stopped_by,
            "seed": self.seed,
            "threads": self.threads,
            "device": self.device,
            "engine": self.engine,
            "torch": self.torch,
            "wall_seconds": self.wall_seconds,
            "search_seconds": self.search_seconds,
            "final_seconds": self.final_seconds,
            "time": self.time,
            **({"front": self.front} if self.front is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "summary.json") -> Summary:
        """``data`` checked (:data:`SUMMARY_FIELDS` and those of its parts), as a summary."""
        check(data, SUMMARY_FIELDS, where)
        check(data["best"], BEST_FIELDS, where, "best")
        final = data.get("final")
        if final:
            check(final, FINAL_FIELDS, where, "final")
            if final.get("refit"):
                check(final["refit"], REFIT_FIELDS, where, "final.refit")
        if data.get("time"):
            check(data["time"], TIME_FIELDS, where, "time")
        for i, member in enumerate(data.get("front") or []):
            check(member, FRONT_FIELDS, where, f"front[{i}]")
        best = Best.from_dict(data["best"])
        return cls(
            metric=data["metric"],
            best=best,
            generations_completed=data["generations_completed"],
            stopped_by=data["stopped_by"],
            seed=data["seed"],
            wall_seconds=data["wall_seconds"],
            search_seconds=data["search_seconds"],
            final_seconds=data["final_seconds"],
            task=data.get("task"),
            islands=data.get("islands", 1),
            final=Final.from_dict(final) if final else None,
            threads=data.get("threads"),
            device=data.get("device"),
            engine=data.get("engine"),
            torch=data.get("torch"),
            time=data.get("time"),
            front=data.get("front"),
        )


def read(path: str | Path) -> Summary | None:
    """The ``summary.json`` of the run in ``path``, checked; None where the run is unfinished."""
    file = Path(path) / "summary.json"
    if not file.exists():
        return None
    return Summary.from_dict(rundir.read_summary(path), str(file))
