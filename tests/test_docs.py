"""The docs site says what the code does: every Python block of the README and of docs/ runs as
written, the reference lists every recipe key with the code's defaults, and the CLI reference
has every command. (CI also builds the site with ``mkdocs build --strict``: links and
references.)"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from neuroevo import recipe as R
from neuroevo import tasks
from neuroevo.cli import parser
from neuroevo.genome import mutations

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: what a page's Python blocks print, beside the lines that must appear in it
PRINTED = {
    "README.md": [],
    "docs/concepts/genomes.md": [
        "16-[56 relu]-[56 relu]-16 skip(in>2) lr=3.0e-03",
        "1x8x8-[c16 k3 s1 relu]-[c32 k3 s2 relu]-[32 relu]-10 lr=1.0e-03",
    ],
    "docs/guides/results.md": ["Model(bits, 16 features -> 16 outputs"],
}


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _blocks(page):
    return re.findall(r"```python\n(.*?)\n```", page.read_text(), flags=re.S)


def test_every_page_with_python_is_run_by_the_next_test():
    with_python = {str(p.relative_to(ROOT)) for p in PAGES if _blocks(p)}
    assert with_python >= set(PRINTED) and len(with_python) >= 5, with_python


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", [p for p in PAGES if _blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_python_blocks_of_a_page_run_as_written(
    page, tiny_recipe, tmp_path, monkeypatch, capsys
):
    """A page's blocks run in order in one namespace, in an empty directory; a block whose
    first line is ``# path/to/file.py`` is that file (a later block imports it). Only the
    recipe changes: ``recipes/logbits.toml`` is the tiny test recipe, so a search takes a
    second. Whatever a block registers (a task, a mutation) is unregistered after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    known = (set(tasks.names()), set(mutations.names()))
    namespace = {"__name__": "__docs__"}
    try:
        for block in _blocks(page):
            first = block.splitlines()[0]
            if re.fullmatch(r"# [\w/]+\.py", first):
                file = tmp_path / first[2:]
                file.parent.mkdir(parents=True, exist_ok=True)
                (file.parent / "__init__.py").touch()
                file.write_text(block)
                continue
            exec(block.replace('"recipes/logbits.toml"', repr(str(tiny_recipe()))), namespace)
    finally:
        for name in set(tasks.names()) - known[0]:
            tasks.unregister(name)
        for name in set(mutations.names()) - known[1]:
            mutations.unregister(name)
        for module in [m for m in sys.modules if m.split(".")[0] == "my_package"]:
            del sys.modules[module]
    printed = capsys.readouterr().out
    for line in PRINTED.get(str(page.relative_to(ROOT)), []):
        assert line in printed, (line, printed)
    if "evolve(" in "".join(_blocks(page)) and "result" in namespace:
        # the search example prints the run's test metric last
        assert 0.0 <= float(printed.strip().splitlines()[-1]) <= 1.0


def test_the_recipe_reference_lists_every_key_with_the_code_s_defaults(tmp_path):
    table = _hooks().recipe_keys()
    listed = re.findall(r"^\| `([\w.]+)` \|", table, flags=re.M)
    assert listed == [row.key for row in R.schema()]
    # every key a resolved recipe writes is in the reference, with the value it resolved to
    (tmp_path / "r.toml").write_text('[task]\nname = "logbits"\n')
    written = R.load(tmp_path / "r.toml").to_dict()
    keys = {f"{s}.{k}" for s, part in written.items() if isinstance(part, dict) for k in part}
    keys -= {"task.name"} | {k for k in keys if k.startswith("mutations.")}
    assert keys | {"population.initial"} == set(listed), keys ^ set(listed)  # none: not written
    rows = {row.key: row for row in R.schema()}
    for key in keys - {"run.out"}:  # runs/<recipe file stem> where the recipe leaves it empty
        section, name = key.split(".")
        default = rows[key].default
        value = written[section][name]
        assert (list(default) if isinstance(default, tuple) else default) == value, key


def test_the_cli_reference_has_every_command():
    text = _hooks().cli_reference()
    commands = next(a for a in parser()._actions if a.dest == "command").choices
    assert len(commands) >= 7
    for name, sub in commands.items():
        assert f"## `neuroevo {name}`" in text
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text, (name, flag)


def test_every_benchmark_table_is_a_results_file_that_names_its_command():
    """The benchmarks page writes no table of its own: each is included from a file under
    ``bench/results/`` (written by its script, or under ``earlier/`` copied from an earlier
    run's printed output), and each such file opens with the command that made it. So is
    every results file the page includes."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert not [line for line in page.splitlines() if line.startswith("|")]
    included = re.findall(r'^--8<-- "(.+?)"$', page, flags=re.M)
    on_disk = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench/results").rglob("*.md"))
    assert sorted(included) == on_disk
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")} - {"record"}
    assert {Path(f).stem for f in included if "/earlier/" not in f} == scripts
    for name in included:
        first = (ROOT / name).read_text().splitlines()[0]
        assert re.search(r"`\.venv/bin/python bench/\w+\.py[^`]*`", first), (name, first)
        assert "|" in (ROOT / name).read_text(), f"{name} holds no table"
