"""Recipes: a TOML file -> a validated :class:`Recipe`.

Every value has a default except ``task.name``. Every unknown key, wrong type or out-of-range
value is a :class:`RecipeError` naming the file (or ``--set``) and the dotted key, with the
nearest valid key where one is close. ``--set key=value`` overrides take a dotted key and a
TOML value (a bare word is taken as a string). Each key's type, default, bounds, help and
whether it may change on resume are written once, in :mod:`neuroevo.sections` (:func:`schema`
lists them); the checks here derive from it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

from neuroevo import schema as S
from neuroevo import tasks
from neuroevo.errors import InvalidSetting, NeuroevoError
from neuroevo.errors import printable as show
from neuroevo.genome import mutations
from neuroevo.genome.space import ACTIVATIONS, SearchSpace
from neuroevo.registry import did_you_mean
from neuroevo.sections import (
    BACKENDS,
    DEFAULT_MUTATIONS,
    EXTENDABLE,
    FINAL_CHOICES,
    MAX_NET_PARAMETERS,
    MAX_RUN_PARAMETERS,
    MOVED,
    OBJECTIVES,
    SECTIONS,
    TOPOLOGIES,
    ConstraintsSection,
    EvolutionSection,
    FinalSection,
    InitialNet,
    IslandsSection,
    MixerSection,
    PopulationSection,
    RecipeError,
    RunSection,
    TaskSection,
    check_initial,
    check_together,
    plain,
    schema,
    upgrade,
)
from neuroevo.sections import check_size as _check_size
from neuroevo.storage import fileio
from neuroevo.training import engine

# the public face of recipes stays here; the sections and their schema live in neuroevo.sections
__all__ = ["Recipe", "RecipeError", "load", "from_dict", "parse_override", "check_size"]
__all__ += ["schema", "upgrade", "EXTENDABLE", "MAX_NET_PARAMETERS", "MAX_RUN_PARAMETERS"]
__all__ += ["BACKENDS", "TOPOLOGIES", "FINAL_CHOICES", "DEFAULT_MUTATIONS", "InitialNet"]
__all__ += ["TaskSection", "PopulationSection", "EvolutionSection", "FinalSection"]
__all__ += ["MixerSection", "RunSection", "IslandsSection", "ConstraintsSection", "OBJECTIVES"]

log = logging.getLogger("neuroevo")

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
#: a ``"package.module:function"`` reference, as ``mutations`` and ``task.name`` take one
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

#: the largest recipe file read
MAX_RECIPE_BYTES = 1 << 20


@dataclass(frozen=True)
class Recipe:
    """A whole recipe, every key checked (:func:`load` reads one from TOML, :func:`from_dict`
    from plain data, :func:`neuroevo.evolve` from keyword arguments): one attribute per
    section, each a frozen dataclass of that section's keys; ``replace`` makes a changed copy,
    ``to_toml`` writes it as ``recipe.toml`` holds it."""

    task: TaskSection
    space: SearchSpace = field(default_factory=SearchSpace)
    population: PopulationSection = field(default_factory=PopulationSection)
    evolution: EvolutionSection = field(default_factory=EvolutionSection)
    final: FinalSection = field(default_factory=FinalSection)
    mutations: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MUTATIONS))
    mixer: MixerSection = field(default_factory=MixerSection)
    run: RunSection = field(default_factory=RunSection)
    islands: IslandsSection = field(default_factory=IslandsSection)
    constraints: ConstraintsSection = field(default_factory=ConstraintsSection)
    source: str = "<recipe>"
    #: the dotted keys ``--set`` gave (an error about them names ``--set``, not the file)
    overridden: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def where(self, key: str) -> str:
        """Where ``key``'s value came from: ``--set`` or the recipe file."""
        return "--set" if key in self.overridden else self.source

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as the TOML file would hold it."""
        out: dict[str, Any] = {"task": {"name": self.task.name, **self.task.options}}
        for name in ("space", "population", "evolution", "final"):
            out[name] = plain(getattr(self, name))
        out["mutations"] = dict(self.mutations)
        out["mixer"] = plain(self.mixer)
        out["run"] = plain(self.run)
        out["islands"] = plain(self.islands)
        out["constraints"] = plain(self.constraints)
        if not self.population.initial:
            del out["population"]["initial"]
        else:
            out["population"]["initial"] = [net.plain() for net in self.population.initial]
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- loading


def load(path: str | Path, overrides: Sequence[str] = (), *, out: str | None = None) -> Recipe:
    """Read and validate a recipe file, with ``--set`` overrides applied."""
    path = Path(path)
    source = str(path)
    if not path.exists() and not path.is_symlink():
        raise RecipeError(f"{source}: no such recipe file")
    try:
        text = fileio.read_text(path, limit=MAX_RECIPE_BYTES, what="recipe", follow=True)
    except fileio.UnsafeFile as exc:
        raise RecipeError(str(exc)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{source}: not valid TOML ({exc})") from None
    except RecursionError:
        raise RecipeError(f"{source}: not a recipe (values nested too deeply)") from None
    recipe = from_dict(raw, source=source, overrides=overrides)
    if out is not None:
        recipe = recipe.replace(run=dataclasses.replace(recipe.run, out=out))
    if not recipe.run.out:
        recipe = recipe.replace(run=dataclasses.replace(recipe.run, out=f"runs/{path.stem}"))
    return recipe


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"mixer.steps=200"`` -> ``("mixer", "steps", 200)``. The key is a TOML key of two
    parts (quoted parts allowed: ``mutations."pkg.mod:fn"=1.0``); the value is TOML, else a
    string."""
    key, sep, value = text.partition("=")
    usage = f"--set {show(text)}: expected section.key=value, e.g. mixer.steps=500"
    if not sep:
        raise RecipeError(usage)
    section, dot, rest = key.strip().partition(".")
    if dot and _BARE_KEY.match(section) and _REFERENCE.match(rest):
        # mutations.pkg.mod:fn=1: a "module:function" reference, unquoted (a shell drops the
        # quotes of mutations."pkg.mod:fn" unless the whole setting is quoted too)
        key = f'{section}."{rest}"'
    elif dot and _BARE_KEY.match(section) and re.search(r"[^\w.-]", rest) and '"' not in rest:
        usage += (
            f"; a key holding characters other than letters, digits, _ and - is quoted (and "
            f'the whole setting, for the shell): --set \'{show(section)}."{show(rest)}"='
            f"{show(value.strip())}'"
        )
    try:
        parsed_key = tomllib.loads(f"{key.strip()} = 0")
    except (tomllib.TOMLDecodeError, RecursionError):
        raise RecipeError(usage) from None
    section = next(iter(parsed_key)) if len(parsed_key) == 1 else None
    inner = parsed_key.get(section)
    if (
        not isinstance(inner, dict)
        or len(inner) != 1
        or isinstance(next(iter(inner.values())), dict)
    ):
        raise RecipeError(usage)
    name = next(iter(inner))
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")
        parsed = parsed["v"] if set(parsed) == {"v"} else value.strip()
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    except RecursionError:
        raise RecipeError(f"--set {show(key.strip())}: value nested too deeply") from None
    return section, name, parsed


def dotted(section: str, name: str) -> str:
    return f"{section}.{name}" if _BARE_KEY.match(name) else f'{section}."{show(name)}"'


#: every section a recipe may hold
SECTION_NAMES = ("task", "space", "population", "evolution", "final", "mutations", "mixer")
SECTION_NAMES += ("run", "islands", "constraints")


@dataclass
class _Given:
    """Where a recipe's values came from: ``overridden``, the dotted keys (and sections)
    ``--set`` gave; ``spelled``, a moved key's dotted name of now -> the name it was given
    under (errors name it so); ``moved``, ``(as given, now, where)`` for the deprecation line."""

    source: str
    overridden: set[str] = field(default_factory=set)
    spelled: dict[str, str] = field(default_factory=dict)
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, key: str) -> str:
        """``--set`` or the file: where ``key``'s value came from."""
        overridden = key in self.overridden or key.split("[")[0] in self.overridden
        return "--set" if overridden else self.source

    def name(self, key: str) -> str:
        return self.spelled.get(key, key)

    def move(self, raw: dict[str, Any], old: str, name: str, value: Any, how: str) -> None:
        new = MOVED[old, name]
        if not isinstance(raw.setdefault(new, {}), dict):
            return  # the section's own error names it
        was, now = f"{old}.{name}", f"{new}.{name}"
        if how != "--set" and name in raw[new]:
            raise RecipeError(
                f"{how}: {was}: given twice, here and as {now} (its place now); keep {now}"
            )
        raw[new][name] = value
        self.spelled[now] = was
        self.moved = [m for m in self.moved if m[0] != was] + [(was, now, how)]


def from_dict(
    raw: Mapping[str, Any], *, source: str = "<recipe>", overrides: Sequence[str] = ()
) -> Recipe:
    """Validate plain data (a parsed TOML file) into a :class:`Recipe`."""
    raw = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    given = _Given(source)
    for old, name in MOVED:
        if isinstance(raw.get(old), dict) and name in raw[old]:
            given.move(raw, old, name, raw[old].pop(name), source)
    _apply_overrides(raw, overrides, given)
    if given.moved:
        log.warning(
            "recipe keys moved: %s; give them there (the old place still loads, for now)",
            ", ".join(f"{was} is now {now} ({how})" for was, now, how in given.moved),
        )
    for name, value in raw.items():
        if name not in SECTION_NAMES:
            raise RecipeError(
                f"{given(name)}: {show(name)}: unknown section{_hint(name, SECTION_NAMES)}"
            )
        if not isinstance(value, dict):
            raise RecipeError(f"{given(name)}: {name}: expected a [{name}] table")
    recipe = _build(raw, given)
    _check(recipe, given)
    return recipe


def _apply_overrides(raw: dict[str, Any], overrides: Sequence[str], given: _Given) -> None:
    """Put each ``--set`` value in ``raw`` (one given at a key's old place goes to its new)."""
    if isinstance(overrides, str):  # one override, not its characters
        overrides = [overrides]
    for text in overrides:
        section, name, value = parse_override(text)
        if section in raw and not isinstance(raw[section], dict):
            raise RecipeError(f"--set {show(text)}: {show(section)} is not a section")
        given.overridden |= {dotted(section, name), section}
        if (section, name) in MOVED:
            given.move(raw, section, name, value, "--set")
            given.overridden |= {f"{MOVED[section, name]}.{name}", MOVED[section, name]}
            continue
        raw.setdefault(section, {})[name] = value
        given.spelled.pop(dotted(section, name), None)  # given under its name of now


def _build(raw: dict[str, Any], given: _Given) -> Recipe:
    """The sections, each key type-checked."""
    task = _task(raw.get("task"), given, given.source)
    space_values = _fields(SearchSpace, raw.get("space", {}), "space", given)
    try:
        space = SearchSpace(**space_values)
    except NeuroevoError as exc:
        named = re.search(r"space\.\w+", str(exc))
        raise RecipeError(f"{given(named.group(0) if named else 'space')}: {exc}") from None
    sections = {
        name: cls(**_fields(cls, raw.get(name, {}), name, given))
        for name, cls in SECTIONS.items()
        if name != "population"
    }
    return Recipe(
        task=task,
        space=space,
        population=_population(raw.get("population", {}), given),
        mutations=_mutations(raw.get("mutations"), given),
        source=given.source,
        overridden=frozenset(given.overridden),
        **sections,
    )


def _check(recipe: Recipe, given: _Given) -> None:
    """Every key within its bounds (:mod:`neuroevo.schema`), then the keys together."""
    try:
        for name in SECTIONS:
            S.check_section(name, getattr(recipe, name), given.spelled)
        engine.choose(recipe.mixer.engine)
        engine.check_device(recipe.run.device)
    except InvalidSetting as exc:
        raise RecipeError(f"{given(exc.key)}: {exc}") from None
    check_together(recipe, given)
    check_initial(recipe.population, recipe.space, given)
    _check_size(
        recipe.space,
        recipe.population,
        recipe.islands,
        given,
        recipe.task.options.get("shape") or None,
    )


def _hint(name: str, known) -> str:
    return did_you_mean(name, known, show=str)


def _check_type(value: Any, expected: Any, key: str, where) -> Any:
    """``value`` as ``expected`` (:func:`neuroevo.schema.coerce`), else a :class:`RecipeError`."""
    try:
        return S.coerce(value, expected, key)
    except InvalidSetting as exc:
        raise RecipeError(f"{where(key)}: {exc}") from None


def _fields(cls: type, raw: Mapping[str, Any], section: str, where) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    values = {}
    spelled = getattr(where, "name", str)  # a moved key: the name it was given under
    for key, value in raw.items():
        dotted = spelled(f"{section}.{key}")
        if key not in known:
            raise RecipeError(
                f"{where(dotted)}: {show(dotted)}: unknown key"
                f"{_hint(key, known).replace('mean ', f'mean {section}.')}"
            )
        values[key] = _check_type(value, hints[key], dotted, where)
    return values


#: the task a data file's suffix implies where a recipe gives ``task.path`` and no name
FILE_TASKS = {".csv": "csv", ".npz": "npz"}


def _task(raw: Any, where, source: str) -> TaskSection:
    path = raw.get("path") if isinstance(raw, Mapping) else None
    implied = FILE_TASKS.get(Path(path).suffix.lower()) if isinstance(path, str) else None
    if raw and "name" not in raw and implied is not None:
        raw = {"name": implied, **raw}  # [task] path = "data.csv" is a csv task
    if not raw or "name" not in raw:
        raise RecipeError(
            f"{where('task.name')}: task.name: missing; every recipe names its task "
            f"(known: {', '.join(tasks.names())}), or gives task.path to a .csv or .npz file"
        )
    name = _check_type(raw["name"], str, "task.name", where)
    options = {k: v for k, v in raw.items() if k != "name"}
    for key, value in options.items():
        _check_plain(value, dotted("task", key), where)
    try:
        accepted = tasks.options(name)
    except NeuroevoError as exc:
        raise RecipeError(f"{where('task.name')}: task.name: {show(str(exc))}") from None
    for key, value in options.items():
        key_name = dotted("task", key)
        if accepted is not None and key not in accepted:
            raise RecipeError(
                f"{where(key_name)}: {key_name}: the {name} task has no such option"
                f"{_hint(key, accepted).replace('mean ', 'mean task.')}; "
                f"its options: {', '.join(accepted) or 'none'}"
            )
        default = accepted.get(key) if accepted is not None else None
        if default is not None and type(default) in S.TYPE_NAMES:
            options[key] = _check_type(value, type(default), key_name, where)
        if isinstance(default, list) and not isinstance(value, list):
            raise RecipeError(
                f"{where(key_name)}: {key_name}: expected a list such as "
                f"{json.dumps(default)}, got {json.dumps(value, default=str)}"
            )
        if key == "path" and isinstance(value, str) and value:
            # a data file named in a recipe is found beside the recipe, wherever one runs it;
            # one named by --set, from the working directory; either is recorded absolute
            base = Path.cwd() if where(key_name) == "--set" else Path(source).parent
            options[key] = str((base / value).resolve())
    return TaskSection(name=name, options=options)


def _check_plain(value: Any, key: str, where, depth: int = 0) -> None:
    """Task options are plain data (JSON can hold them; a checkpoint records them): strings,
    booleans, finite numbers, and lists and tables of these."""
    if isinstance(value, bool) or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise RecipeError(f"{where(key)}: {key}: {value} is out of range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecipeError(f"{where(key)}: {key}: expected a finite number, got {value}")
        return
    if isinstance(value, (list, dict)) and depth < 8:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            _check_plain(v, f"{key}[{show(str(k))}]", where, depth + 1)
        return
    what = "nested too deeply" if isinstance(value, (list, dict)) else type(value).__name__
    raise RecipeError(
        f"{where(key)}: {key}: not a supported value ({what}); task options are strings, "
        "booleans, numbers, and lists and tables of these"
    )


def _population(raw: Mapping[str, Any], where) -> PopulationSection:
    raw = dict(raw)
    initial_raw = raw.pop("initial", [])
    values = _fields(PopulationSection, raw, "population", where)
    if not isinstance(initial_raw, list):
        raise RecipeError(
            f"{where('population.initial')}: population.initial: expected a "
            'list of tables such as { hidden = [32, 32], activation = "relu" }'
        )
    initial = []
    for i, item in enumerate(initial_raw):
        key = f"population.initial[{i}]"
        if not isinstance(item, dict):
            raise RecipeError(
                f"{where('population.initial')}: {key}: expected a table such as "
                '{ hidden = [32, 32], activation = "relu", lr = 0.003 }'
            )
        try:
            net = InitialNet(
                **_fields(InitialNet, item, key, lambda _: where("population.initial"))
            )
        except TypeError:
            raise RecipeError(
                f"{where('population.initial')}: {key}: 'hidden' (a list of widths) is required"
            ) from None
        if net.activation not in ACTIVATIONS:
            raise RecipeError(
                f"{where('population.initial')}: {key}.activation: unknown "
                f"activation {net.activation!r} (known: {', '.join(ACTIVATIONS)})"
            )
        initial.append(net)
    return PopulationSection(initial=tuple(initial), **values)


def _mutations(raw: Mapping[str, Any] | None, where) -> dict[str, float]:
    if raw is None:
        return dict(DEFAULT_MUTATIONS)
    weights = {}
    for name, weight in raw.items():
        key = dotted("mutations", name)
        weight = _check_type(weight, float, key, where)
        if weight < 0:
            raise RecipeError(f"{where(key)}: {key}: a weight cannot be negative, got {weight}")
        try:
            mutations.resolve(name)
        except NeuroevoError as exc:
            raise RecipeError(f"{where(key)}: {key}: {show(str(exc))}") from None
        weights[name] = weight
    if not any(w > 0 for w in weights.values()):
        raise RecipeError(f"{where('mutations')}: mutations: at least one weight must be positive")
    return weights


def check_size(recipe: Recipe, task: tasks.Task) -> None:
    """Raise :class:`RecipeError` where the largest net ``recipe.space`` allows between
    ``task``'s inputs and outputs, or a run's population of them, is above
    :data:`MAX_NET_PARAMETERS` or :data:`MAX_RUN_PARAMETERS`. Counts a graph, allocates
    nothing: call it once the task is built, before a net is."""
    _check_size(
        recipe.space,
        recipe.population,
        recipe.islands,
        recipe.where,
        task.shape,
        (task.n_inputs, task.n_outputs, f"task {show(task.name)!r}"),
    )
