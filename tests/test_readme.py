"""The README's commands are the ones CI and users actually run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands():
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_command():
    test_commands = [c for c in _readme_commands() if "pytest" in c and "\n" not in c]
    assert test_commands, "the README has no one-line test command"
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_commands[0] in ci_lines


def test_quick_start_runs_the_logbits_recipe():
    commands = [c for c in _readme_commands() if "\n" not in c]
    assert any(c.endswith("neuroevo evolve recipes/logbits.toml") for c in commands)


def _python_examples():
    return re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_the_readme_python_examples_run(tiny_recipe, tmp_path, monkeypatch, capsys):
    """Every Python example of the README, as written, except two substitutions that keep it
    quick: the search example runs the tiny test recipe instead of recipes/logbits.toml, and
    the mutation example is saved as my_package/ops.py, the module the next example names."""
    from neuroevo import tasks
    from neuroevo.genome import mutations

    search, use, task, genomes, convolutions, mutation, check = _python_examples()
    monkeypatch.chdir(tmp_path)
    assert '"recipes/logbits.toml"' in search
    exec(search.replace('"recipes/logbits.toml"', repr(str(tiny_recipe()))), {})
    assert (tmp_path / "runs" / "api" / "summary.json").exists()
    assert 0.0 <= float(capsys.readouterr().out.strip().splitlines()[-1]) <= 1.0

    exec(use, {})  # loads the run the search example made
    printed = capsys.readouterr().out
    assert printed.startswith("Model(bits, 16 features -> 16 outputs") and "[[" in printed

    try:
        exec(task, {})
        assert tasks.build("parity", 0, n=500).n_inputs == 8
    finally:
        tasks.unregister("parity")

    namespace = {}
    exec(genomes, namespace)
    assert capsys.readouterr().out.strip() == "16-[56 relu]-[56 relu]-16 skip(in>2) lr=3.0e-03"
    exec(convolutions, {})
    printed = capsys.readouterr().out.strip()
    assert printed == "1x8x8-[c16 k3 s1 relu]-[c32 k3 s2 relu]-[32 relu]-10 lr=1.0e-03"

    (tmp_path / "my_package").mkdir()
    (tmp_path / "my_package" / "__init__.py").write_text("")
    (tmp_path / "my_package" / "ops.py").write_text(mutation)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        exec(check, {})
    finally:
        mutations.unregister("double_first_layer")
