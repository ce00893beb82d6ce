"""The README's commands are the ones CI and users actually run, and the README stays short
(the rest is the docs site: tests/test_docs.py)."""

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


def test_the_readme_is_read_in_two_minutes():
    assert len((ROOT / "README.md").read_bytes()) < 10_240
