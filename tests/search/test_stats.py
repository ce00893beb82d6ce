import random

import pytest

from neuroevo.search import stats


@pytest.mark.parametrize("seed", range(20))
def test_rank_correlations_agree_with_scipy_ties_included(seed):
    # only this test needs SciPy (the oracle, from the test extra): the others run without it
    scipy_stats = pytest.importorskip("scipy.stats", reason="SciPy is the oracle (test extra)")
    rng = random.Random(seed)
    n = rng.randint(2, 25)
    a = [rng.choice([0.1, 0.2, 0.3, rng.random()]) for _ in range(n)]
    b = [x + rng.gauss(0, 0.2) if rng.random() < 0.7 else 0.5 for x in a]
    if len(set(a)) > 1 and len(set(b)) > 1:
        assert stats.kendall_tau_b(a, b) == pytest.approx(scipy_stats.kendalltau(a, b)[0])
        assert stats.spearman_rho(a, b) == pytest.approx(scipy_stats.spearmanr(a, b)[0])


def test_perfect_and_reversed_orders():
    a = [1, 2, 3, 4]
    assert stats.kendall_tau_b(a, [10, 20, 30, 40]) == 1.0
    assert stats.spearman_rho(a, [4, 3, 2, 1]) == -1.0
    assert stats.kendall_tau_b([1, 1, 1], [1, 2, 3]) == 0.0  # undefined: no order in a
    with pytest.raises(ValueError, match="different lengths"):
        stats.spearman_rho([1, 2], [1])
