import json
import random

import networkx as nx
import pytest

from neuroevo.errors import InvalidGenome, InvalidSpace
from neuroevo.genome import graph as G
from neuroevo.genome.space import SearchSpace

SPACE = SearchSpace(width_min=4, width_max=64, layers_min=1, layers_max=3, lr_min=1e-4, lr_max=0.1)


def test_signature_of_an_mlp_with_a_skip():
    g = G.mlp(16, 16, [56, 56], "relu", lr=3e-3)
    g.add_edge("in", "h2")
    assert G.signature(g) == "16-[56 relu]-[56 relu]-16 skip(in>2) lr=3.0e-03"


def test_signature_shows_parallel_layers_as_cut_chain():
    g = G.mlp(4, 2, [8], "tanh", lr=0.01)
    h = G.add_hidden(g, 5, "gelu")
    g.add_edge("in", h)
    g.add_edge(h, "out")
    assert G.signature(g) == "4-[8 tanh]-[5 gelu]-2 skip(in>2,1>out) cut(1>2) lr=1.0e-02"


def test_mlp_is_valid_and_counts_parameters():
    g = G.mlp(16, 16, [56, 48], "sigmoid")
    G.validate(g, SearchSpace(width_max=64))
    assert G.hidden_nodes(g) == ["h1", "h2"]
    assert G.n_parameters(g) == 16 * 56 + 56 + 56 * 48 + 48 + 48 * 16 + 16


def _with(g, change):
    g = G.copy(g)
    change(g)
    return g


@pytest.mark.parametrize(
    "invariant, change",
    [
        ("acyclic", lambda g: g.add_edge("h2", "h1")),
        (
            "connected",
            lambda g: (
                g.add_node("h9", width=4, activation="relu"),
                g.add_edge("in", "h9"),
                g.graph.update(next_node=10),
            ),
        ),
        ("connected", lambda g: g.remove_edge("in", "h1")),
        ("endpoints", lambda g: g.add_edge("h1", "in")),
        ("endpoints", lambda g: g.add_edge("out", "h1")),
        ("endpoints", lambda g: g.remove_node("out")),
        ("width", lambda g: g.nodes["h1"].update(width=65)),
        ("width", lambda g: g.nodes["h1"].update(width=0)),
        ("activation", lambda g: g.nodes["h2"].update(activation="swish")),
        (
            "depth",
            lambda g: (
                G.add_hidden(g, 8, "relu"),
                g.add_edge("h2", "h3"),
                g.add_edge("h3", "out"),
                G.add_hidden(g, 8, "relu"),
                g.add_edge("h3", "h4"),
                g.add_edge("h4", "out"),
            ),
        ),
        ("lr", lambda g: g.graph.update(lr=0.5)),
        ("lr", lambda g: g.graph.update(lr=float("nan"))),
        ("node-id", lambda g: nx.relabel_nodes(g, {"h1": "hidden"}, copy=False)),
        ("node-id", lambda g: g.graph.update(next_node=2)),
    ],
)
def test_validate_names_the_broken_invariant(invariant, change):
    g = _with(G.mlp(8, 2, [16, 16], "relu", lr=1e-3), change)
    with pytest.raises(InvalidGenome) as info:
        G.validate(g, SPACE)
    assert info.value.invariant == invariant
    assert invariant in str(info.value)


def test_cycle_error_shows_the_cycle():
    g = _with(G.mlp(8, 2, [16, 16], "relu"), lambda g: g.add_edge("h2", "h1"))
    with pytest.raises(InvalidGenome, match="cycle h1 -> h2 -> h1|cycle h2 -> h1 -> h2"):
        G.validate(g)


def test_json_round_trip_is_exact():
    g = G.random_genome(16, 16, SPACE, random.Random(3))
    g.add_edge("in", "out")
    g.graph.update(id=7, parent=3, mutation="add_skip", born=2, lr=0.0012345678901234567)
    back = G.from_json(G.to_json(g))
    assert G.equal(g, back)
    assert back.graph["lr"] == g.graph["lr"]
    assert G.to_json(back) == G.to_json(g)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ('{"format": "other"}', "not a neuroevo genome"),
        (json.dumps({"format": "neuroevo.genome", "version": 99}), "version 99"),
        ("[" * 100_000 + "]" * 100_000, "nests lists or objects too deeply"),
        ('{"lr": ' + "9" * 5000 + "}", "not valid JSON"),
    ],
)
def test_from_json_rejects_bad_files_with_the_source_name(text, message):
    with pytest.raises(InvalidGenome, match=message) as info:
        G.from_json(text, source="best/genome.json")
    assert "best/genome.json" in str(info.value)


def test_from_json_validates_structure():
    data = G.to_dict(G.mlp(4, 2, [3]))
    data["edges"].append({"source": "h1", "target": "in"})
    with pytest.raises(InvalidGenome, match="endpoints"):
        G.from_dict(data)
    data = G.to_dict(G.mlp(4, 2, [3]))
    del data["graph"]["lr"]
    with pytest.raises(InvalidGenome, match="'lr' is missing"):
        G.from_dict(data)


def test_random_genomes_stay_inside_the_space_and_repeat_by_seed():
    seen = set()
    for seed in range(200):
        g = G.random_genome(16, 16, SPACE, random.Random(seed))
        G.validate(g, SPACE)
        assert G.equal(g, G.random_genome(16, 16, SPACE, random.Random(seed)))
        seen.add(G.depth(g))
    assert seen == {1, 2, 3}


def test_largest_parameters_bounds_every_random_net_and_counts_the_built_one():
    from neuroevo.training import network

    space = SearchSpace(
        width_min=4, width_max=24, layers_max=3, conv_layers_max=2, channels_max=6,
        strides=(2, 1), pools=(2, 1),
    )  # fmt: skip
    largest = G.largest_parameters(space, 64, 5, shape=[1, 8, 8])
    widest = G.mlp(64, 5, [24] * 3, shape=[1, 8, 8], convs=[(6, 5, 1, 1)] * 2)
    assert largest == sum(p.numel() for p in network.build(widest).parameters())
    for seed in range(100):
        g = G.random_genome(64, 5, space, random.Random(seed), shape=[1, 8, 8])
        assert G.n_parameters(g) <= largest
    assert G.largest_parameters(space, 64, 5) == 64 * 24 + 24 + 2 * (24 * 24 + 24) + 24 * 5 + 5


def test_search_space_rejects_contradictions():
    with pytest.raises(InvalidSpace, match="width_max"):
        SearchSpace(width_min=10, width_max=5)
    with pytest.raises(InvalidSpace, match="space.activations: each must be one of .*got 'swish'"):
        SearchSpace(activations=("relu", "swish"))
    with pytest.raises(InvalidSpace, match="lr_min"):
        SearchSpace(lr_min=0.0)
