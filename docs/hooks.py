"""MkDocs hooks: the reference pages written from the code, so they cannot drift from it.

``<!-- neuroevo:recipe-keys -->`` in a page becomes the table of every recipe key
(:func:`neuroevo.recipe.schema`: type, default, bounds, help, whether a resume may change it);
``<!-- neuroevo:cli -->`` becomes the help of ``neuroevo`` and each of its commands, as argparse
prints it. The tests render both (``tests/test_docs.py``). The Python API's docstrings use
Sphinx roles, shown as code."""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import os
import re
from typing import Any

RECIPE_KEYS = "<!-- neuroevo:recipe-keys -->"
CLI = "<!-- neuroevo:cli -->"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if RECIPE_KEYS in markdown:
        markdown = markdown.replace(RECIPE_KEYS, recipe_keys())
    if CLI in markdown:
        markdown = markdown.replace(CLI, cli_reference())
    return markdown


#: a Sphinx role in a docstring (``:class:`~neuroevo.x.Y```) as the API page's HTML holds it
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([\w.]+)</code>")


def on_page_content(html_text: str, **kwargs: Any) -> str:
    """The docstrings' Sphinx roles as code: ``~a.b.C`` shows ``C``, as Sphinx would."""
    return ROLE.sub(
        lambda m: f"<code>{m.group(2).rpartition('.')[2] if m.group(1) else m.group(2)}</code>",
        html_text,
    )


def _cell(text: str) -> str:
    """Text for a table cell: markup characters escaped, quotes left as they are."""
    return html.escape(text, quote=False).replace("|", "\\|")


def _default(value: Any) -> str:
    """A default as a recipe writes it (TOML: "auto", [3, 5], true), in a code span."""
    if isinstance(value, tuple):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    return "`" + json.dumps(value).replace("|", "\\|") + "`"


def recipe_keys() -> str:
    """A table per section of every recipe key the schema knows, with the code's defaults."""
    from neuroevo import recipe

    out: list[str] = []
    section = None
    for row in recipe.schema():
        here = row.key.split(".")[0]
        if here != section:
            section = here
            out += [
                "",
                f"### `[{section}]`",
                "",
                "| key | type | default | bounds | what it is | resume |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
        out.append(
            f"| `{row.key}` | {row.type} | {_default(row.default)} | "
            f"{_cell(row.bounds)} | {_cell(row.help)} | {'may change' if row.resume else ''} |"
        )
    return "\n".join(out) + "\n"


def cli_reference() -> str:
    """``neuroevo --help`` and each command's ``--help``, in code blocks."""
    from neuroevo import cli

    parser = cli.parser()
    out = ["## `neuroevo`", "", "```text", _help(parser), "```"]
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        out += ["", f"## `neuroevo {name}`", "", "```text", _help(sub), "```"]
    return "\n".join(out) + "\n"


def _help(parser: argparse.ArgumentParser) -> str:
    """``parser``'s help at 100 columns, whatever the terminal building the docs."""
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help().rstrip()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
