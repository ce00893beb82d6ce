"""A genome as JSON: networkx node-link data plus a format tag, read back with its structure
checked (:func:`~neuroevo.genome.validation.validate`). Imports no torch."""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from neuroevo.errors import InvalidGenome
from neuroevo.genome.structure import CONV
from neuroevo.genome.validation import validate

FORMAT = "neuroevo.genome"
FORMAT_VERSION = 1

_LINEAGE = ("id", "parent", "mutation", "born")


def to_dict(genome: nx.DiGraph) -> dict[str, Any]:
    """networkx node-link data plus a format tag; plain JSON types only."""
    data = nx.node_link_data(genome, edges="edges")
    return {"format": FORMAT, "version": FORMAT_VERSION, **data}


def from_dict(data: Any, *, source: str = "genome") -> nx.DiGraph:
    """Rebuild a genome from :func:`to_dict`'s output; structural errors name ``source``."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidGenome("format", f"{source}: not a neuroevo genome (format tag missing)")
    if data.get("version") != FORMAT_VERSION:
        raise InvalidGenome(
            "format", f"{source}: genome format version {data.get('version')!r} is not supported"
        )
    if data.get("multigraph") or not data.get("directed"):
        raise InvalidGenome("graph-type", f"{source}: a genome is a simple directed graph")
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    try:
        genome = nx.node_link_graph(body, directed=True, multigraph=False, edges="edges")
    except (KeyError, TypeError, ValueError, AttributeError, nx.NetworkXError) as exc:
        raise InvalidGenome("format", f"{source}: malformed node-link data ({exc})") from None
    for key in ("lr", "next_node", "fresh_weights", *_LINEAGE):
        if key not in genome.graph:
            raise InvalidGenome("format", f"{source}: graph attribute {key!r} is missing")
    for _, attributes in genome.nodes(data=True):
        if attributes.get("kind") == CONV:
            attributes.setdefault("pool", 1)  # written before convolutions could pool
    validate(genome)
    return genome


def to_json(genome: nx.DiGraph, *, indent: int | None = None) -> str:
    return json.dumps(to_dict(genome), indent=indent, sort_keys=True, allow_nan=False)


def from_json(text: str, *, source: str = "genome") -> nx.DiGraph:
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidGenome("format", f"{source}: nests lists or objects too deeply") from None
    except ValueError as exc:  # not JSON, or a number of more than 4,300 digits
        raise InvalidGenome("format", f"{source}: not valid JSON ({exc})") from None
    return from_dict(data, source=source)
