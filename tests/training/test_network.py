import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroevo.errors import MutationNotApplicable
from neuroevo.genome import graph as G
from neuroevo.genome import mutations as M
from neuroevo.genome.space import SearchSpace
from neuroevo.training import network as N

SPACE = SearchSpace(
    width_min=2,
    width_max=24,
    layers_min=0,
    layers_max=5,
    lr_min=1e-4,
    lr_max=0.1,
    activations=("relu", "tanh", "sigmoid", "gelu", "identity"),
)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def trained_parent(hidden=(12, 10), seed=0):
    """A parent whose weights are not the fresh ones (as after training)."""
    g = G.mlp(6, 4, list(hidden), "tanh", lr=1e-2)
    g.graph["id"] = 1
    net = N.build(g, generator=gen(seed))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen(seed + 1)))
    return g, net


def test_forward_shapes_and_stable_parameter_names():
    g = G.mlp(16, 16, [56, 56], "relu")
    g.add_edge("in", "h2")
    net = N.build(g, generator=gen(0))
    assert net(torch.randn(5, 16)).shape == (5, 16)
    assert sorted(net.state_dict()) == sorted(
        [
            "weight.in__h1",
            "weight.h1__h2",
            "weight.in__h2",
            "weight.h2__out",
            "bias.h1",
            "bias.h2",
            "bias.out",
        ]
    )
    assert sum(p.numel() for p in net.parameters()) == G.n_parameters(g)


def test_forward_computes_the_dag():
    g = G.mlp(3, 2, [4], "relu")
    g.add_edge("in", "out")
    net = N.build(g, generator=gen(0))
    x = torch.randn(7, 3)
    w = net.state_dict()
    h = torch.relu(x @ w["weight.in__h1"].T + w["bias.h1"])
    expected = h @ w["weight.h1__out"].T + x @ w["weight.in__out"].T + w["bias.out"]
    torch.testing.assert_close(net(x), expected)


def test_same_generator_seed_same_weights():
    g = G.mlp(6, 4, [8], "relu")
    a, b = N.build(g, generator=gen(3)), N.build(g, generator=gen(3))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_identity_child_computes_what_its_parent_computes():
    g, net = trained_parent()
    child = M.identity(g, random.Random(0), SPACE)
    x = torch.randn(9, 6)
    torch.testing.assert_close(
        N.inherit(child, net.state_dict(), generator=gen(5))(x), net(x), rtol=0, atol=0
    )


@pytest.mark.parametrize("seed", range(10))
def test_add_skip_child_computes_what_its_parent_computes(seed):
    g, net = trained_parent()
    child = M.add_skip(g, random.Random(seed), SPACE)
    ((u, v),) = set(child.edges) - set(g.edges)
    inherited = N.inherit(child, net.state_dict(), generator=gen(5))
    assert torch.count_nonzero(inherited.state_dict()[f"weight.{u}__{v}"]) == 0
    x = torch.randn(9, 6)
    torch.testing.assert_close(inherited(x), net(x), rtol=0, atol=1e-6)


def test_alter_width_keeps_the_overlapping_block():
    g, net = trained_parent(hidden=(12, 10))
    for seed in range(20):
        child = M.alter_width(g, random.Random(seed), SPACE)
        changed = [n for n in G.hidden_nodes(g) if child.nodes[n]["width"] != g.nodes[n]["width"]]
        assert len(changed) == 1
        new = N.inherit(child, net.state_dict(), generator=gen(5)).state_dict()
        old = net.state_dict()
        for key, tensor in new.items():
            block = tuple(slice(0, min(a, b)) for a, b in zip(tensor.shape, old[key].shape))
            assert torch.equal(tensor[block], old[key][block]), key
            if tensor.shape == old[key].shape:
                assert torch.equal(tensor, old[key])


def test_reset_weights_inherits_nothing():
    g, net = trained_parent()
    child = M.reset_weights(g, random.Random(0), SPACE)
    new = N.inherit(child, net.state_dict(), generator=gen(5)).state_dict()
    for key, tensor in net.state_dict().items():
        assert not torch.equal(new[key], tensor), key
    # and a later mutation of that child inherits again
    grandchild = M.identity(child, random.Random(0), SPACE)
    assert not grandchild.graph["fresh_weights"]


def test_insert_layer_keeps_untouched_edges():
    g, net = trained_parent()
    child = M.insert_layer(g, random.Random(0), SPACE)
    new = N.inherit(child, net.state_dict(), generator=gen(5)).state_dict()
    kept = set(new) & set(net.state_dict())
    assert kept and all(torch.equal(new[k], net.state_dict()[k]) for k in kept)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_in=st.integers(1, 12), n_out=st.integers(1, 6))
def test_chains_of_fifty_mutations_keep_every_invariant(seed, n_in, n_out):
    rng = random.Random(seed)
    g = G.random_genome(n_in, n_out, SPACE, rng)
    g.graph["id"] = 0
    net = N.build(g, generator=gen(seed))
    ops = [M.resolve(name) for name in M.BUILTINS]
    for step in range(50):
        op = rng.choice(ops)
        try:
            child = op(g, rng, SPACE)
        except MutationNotApplicable:
            continue
        child.graph["id"] = step + 1
        G.validate(child, SPACE)
        assert G.equal(G.from_json(G.to_json(child)), child)
        net = N.inherit(child, net.state_dict(), generator=gen(step))
        out = net(torch.randn(3, n_in))
        assert out.shape == (3, n_out)
        assert torch.isfinite(out).all()
        g = child
