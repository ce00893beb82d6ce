import random
import textwrap

import pytest

from neuroevo.errors import MutationError, MutationNotApplicable, NeuroevoError, UnknownMutation
from neuroevo.genome import graph as G
from neuroevo.genome import mutations as M
from neuroevo.genome.space import SearchSpace
from neuroevo.genome.testing import check_mutation

CONV_OPERATORS = M.CONV_OPERATORS
SPACE = SearchSpace(width_min=4, width_max=64, layers_min=0, layers_max=4, lr_min=1e-4, lr_max=0.1)


def parent(hidden=(16, 16), lr=1e-2, skip=False, convs=()):
    shape = [2, 4] if convs else None
    g = G.mlp(8, 3, list(hidden), "relu", lr=lr, shape=shape, convs=convs)
    if skip:
        g.add_edge("in", "out")
    g.graph["id"] = 41
    return g


@pytest.mark.parametrize("name", M.BUILTINS)
def test_builtins_keep_the_contract(name):
    """On flat inputs every operator but the convolutions' applies; on inputs with a shape,
    1-D and 2-D, every operator applies."""
    flat = check_mutation(name, space=SPACE)
    assert flat == 0 if name in CONV_OPERATORS else flat > 0
    assert check_mutation(name, space=SPACE, shape=[2, 4]) > 0
    assert check_mutation(name, space=SPACE, n_in=18, shape=[2, 3, 3]) > 0


@pytest.mark.parametrize("name", M.BUILTINS)
def test_builtins_return_a_new_genome_with_lineage_and_leave_the_parent(name):
    p = parent(skip=True, convs=[(8, 3, 1), (8, 3, 2)] if name in CONV_OPERATORS else ())
    before = G.to_json(p)
    child = M.resolve(name)(p, random.Random(0), SPACE)
    assert child is not p
    assert G.to_json(p) == before
    assert child.graph["parent"] == 41
    assert child.graph["mutation"] == name
    assert child.graph["id"] is None


def test_insert_layer_splits_one_edge():
    p = parent()
    child = M.insert_layer(p, random.Random(1), SPACE)
    (new,) = set(child.nodes) - set(p.nodes)
    (u,) = child.predecessors(new)
    (v,) = child.successors(new)
    assert p.has_edge(u, v) and not child.has_edge(u, v)
    assert child.number_of_edges() == p.number_of_edges() + 1
    assert new == "h3"  # the next id, never one in use


def test_node_ids_are_never_reused_after_removal():
    g = parent(hidden=(16, 16, 16))
    g = M.remove_layer(g, random.Random(0), SPACE)
    removed = {"h1", "h2", "h3"} - set(g.nodes)
    g = M.insert_layer(g, random.Random(0), SPACE)
    assert not (set(g.nodes) & removed)
    assert "h4" in g


def test_remove_layer_reconnects_inputs_to_outputs():
    g = parent(hidden=(16, 16))
    g.add_edge("in", "h2")
    child = M.remove_layer(g, random.Random(0), SPACE)
    gone = ({"h1", "h2"} - set(child.nodes)).pop()
    for p_ in g.predecessors(gone):
        for s in g.successors(gone):
            assert child.has_edge(p_, s)


def test_alter_width_always_changes_the_width_within_the_space():
    space = SearchSpace(width_min=4, width_max=5, layers_min=1, layers_max=2)
    for seed in range(50):
        g = G.mlp(8, 3, [5], lr=1e-3)
        child = M.alter_width(g, random.Random(seed), space)
        assert child.nodes["h1"]["width"] == 4
    for seed in range(50):
        g = parent(hidden=(20,))
        child = M.alter_width(g, random.Random(seed), SPACE)
        assert child.nodes["h1"]["width"] != 20
        assert 10 <= child.nodes["h1"]["width"] <= 40


def test_alter_activation_switches_one_layer_to_another_allowed_activation():
    for seed in range(20):
        child = M.alter_activation(parent(), random.Random(seed), SPACE)
        changed = [n for n in ("h1", "h2") if child.nodes[n]["activation"] != "relu"]
        assert len(changed) == 1
        assert child.nodes[changed[0]]["activation"] in SPACE.activations
    with pytest.raises(MutationNotApplicable):
        M.alter_activation(parent(), random.Random(0), SearchSpace(activations=("relu",)))


def test_alter_learning_rate_scales_within_half_and_double_and_clamps():
    for seed in range(50):
        child = M.alter_learning_rate(parent(lr=1e-2), random.Random(seed), SPACE)
        assert 5e-3 <= child.graph["lr"] <= 2e-2
        near_top = M.alter_learning_rate(parent(lr=0.09), random.Random(seed), SPACE)
        assert near_top.graph["lr"] <= 0.1


def test_add_skip_adds_one_forward_edge_and_remove_skip_undoes_it():
    p = parent()
    child = M.add_skip(p, random.Random(0), SPACE)
    ((u, v),) = set(child.edges) - set(p.edges)
    order = G.topological_order(child)
    assert order.index(u) < order.index(v)
    back = M.remove_skip(child, random.Random(0), SPACE)
    assert set(back.edges) == set(p.edges)


@pytest.mark.parametrize(
    "name, genome, space",
    [
        ("remove_layer", G.mlp(8, 3, [16], lr=1e-3), SearchSpace(layers_min=1)),
        ("remove_layer", G.mlp(8, 3, [], lr=1e-3), SearchSpace(layers_min=0)),
        ("insert_layer", G.mlp(8, 3, [16] * 4, lr=1e-3), SearchSpace(layers_max=4)),
        ("remove_skip", G.mlp(8, 3, [16, 16], lr=1e-3), SPACE),
        ("alter_width", G.mlp(8, 3, [16], lr=1e-3), SearchSpace(width_min=16, width_max=16)),
        ("alter_width", G.mlp(8, 3, [], lr=1e-3), SearchSpace(layers_min=0)),
        ("alter_learning_rate", G.mlp(8, 3, [16], lr=1e-3), SearchSpace(lr_min=1e-3, lr_max=1e-3)),
    ],
)
def test_not_applicable_is_its_own_exception(name, genome, space):
    with pytest.raises(MutationNotApplicable):
        M.resolve(name)(genome, random.Random(0), space)


def test_add_skip_not_applicable_when_fully_connected():
    g = G.mlp(8, 3, [16], lr=1e-3)
    g.add_edge("in", "out")
    with pytest.raises(MutationNotApplicable):
        M.add_skip(g, random.Random(0), SPACE)


def test_same_seed_same_child():
    convs = [(8, 3, 1), (8, 3, 2)]
    for name in M.BUILTINS:
        a = M.resolve(name)(parent(skip=True, convs=convs), random.Random(5), SPACE)
        b = M.resolve(name)(parent(skip=True, convs=convs), random.Random(5), SPACE)
        assert G.equal(a, b)


# --------------------------------------------------------------------------- user mutations


def test_decorated_user_mutation_is_applied_by_name():
    def widen_all(genome, rng, space):
        for node in G.hidden_nodes(genome):
            genome.nodes[node]["width"] = min(genome.nodes[node]["width"] * 2, space.width_max)
        return genome

    with M.registered(widen_all) as op:
        assert "widen_all" in M.names()
        child = M.resolve("widen_all")(parent(), random.Random(0), SPACE)
        assert op.name == "widen_all"
    assert [child.nodes[n]["width"] for n in G.hidden_nodes(child)] == [32, 32]
    assert child.graph["mutation"] == "widen_all"
    assert "widen_all" not in M.names()


def test_public_decorator_registers_and_rejects_duplicates():
    import neuroevo

    @neuroevo.register_mutation("tiny_lr")
    def _tiny(genome, rng, space):
        genome.graph["lr"] = space.lr_min
        return genome

    try:
        assert M.resolve("tiny_lr")(parent(), random.Random(0), SPACE).graph["lr"] == 1e-4
        with pytest.raises(NeuroevoError, match="already registered"):
            neuroevo.register_mutation(name="tiny_lr")(lambda g, r, s: g)
        with pytest.raises(NeuroevoError, match="already registered"):
            neuroevo.mutation(lambda g, r, s: g, name="identity")
    finally:
        M.unregister("tiny_lr")


def test_module_function_reference_is_imported_and_applied(tmp_path, monkeypatch):
    (tmp_path / "my_ops.py").write_text(
        textwrap.dedent("""
        def lr_to_max(genome, rng, space):
            genome.graph["lr"] = space.lr_max
            return genome

        def make_cycle(genome, rng, space):
            first, *_ , last = [n for n in genome if n.startswith("h")]
            genome.add_edge(last, first)
            return genome
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    child = M.resolve("my_ops:lr_to_max")(parent(), random.Random(0), SPACE)
    assert child.graph["lr"] == 0.1
    assert child.graph["mutation"] == "my_ops:lr_to_max"
    broke = r"mutation 'my_ops:make_cycle' broke the genome.*cycle"
    with pytest.raises(MutationError, match=broke):
        M.resolve("my_ops:make_cycle")(parent(), random.Random(0), SPACE)
    with pytest.raises(UnknownMutation, match="did you mean 'lr_to_max'"):
        M.resolve("my_ops:lr_to_mx")
    with pytest.raises(UnknownMutation, match="cannot import 'no_such_module'"):
        M.resolve("no_such_module:f")


def test_decorated_mutation_that_creates_a_cycle_names_itself():
    def loop_back(genome, rng, space):
        genome.add_edge("h2", "h1")
        return genome

    with M.registered(loop_back):
        with pytest.raises(MutationError, match="'loop_back'.*acyclic"):
            M.resolve("loop_back")(parent(), random.Random(0), SPACE)


def test_user_mutation_that_raises_or_returns_junk_is_named():
    def crash(genome, rng, space):
        raise KeyError("boom")

    def returns_none(genome, rng, space):
        genome.graph["lr"] = 1.0

    with M.registered(crash), M.registered(returns_none):
        with pytest.raises(MutationError, match="'crash' raised KeyError"):
            M.resolve("crash")(parent(), random.Random(0), SPACE)
        with pytest.raises(MutationError, match="'returns_none' returned NoneType"):
            M.resolve("returns_none")(parent(), random.Random(0), SPACE)


def test_unknown_name_lists_the_nearest_known_names():
    with pytest.raises(UnknownMutation, match="did you mean 'insert_layer'"):
        M.resolve("insert_layr")
