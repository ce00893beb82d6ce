"""Batch-1 inference time of a net: the ``latency_ms`` objective and constraint.

:func:`measure` times one sample's forward pass of a freshly built net (its weights do not
change its time) with ``torch.utils.benchmark``: warm-up, CUDA synchronised where the net is on
a GPU, ``blocked_autorange`` over at least :data:`MIN_SECONDS`, and the median of its blocks, on
the run's torch threads. A time is a measurement, not a property of the genome: it moves with
the machine's load (see the several-objectives guide for what was measured), so a run keeps
every time it measured (:class:`neuroevo.search.objectives.Latency`) and a resumed run reads
them back instead of measuring again.
"""

from __future__ import annotations

import networkx as nx
import torch
from torch.utils import benchmark

from neuroevo.genome import graph as G
from neuroevo.training import network

#: the least time each measurement runs for
MIN_SECONDS = 0.02


@torch.no_grad()
def measure(genome: nx.DiGraph, device: torch.device | str = "cpu") -> float:
    """Milliseconds of one forward pass of one sample through ``genome``'s net on ``device``
    (median of ``blocked_autorange``'s blocks)."""
    device = torch.device(device)
    net = network.build(genome, generator=torch.Generator().manual_seed(0)).to(device).eval()
    x = torch.zeros(1, G.n_inputs(genome), device=device)
    timer = benchmark.Timer(
        stmt="net(x)", globals={"net": net, "x": x}, num_threads=torch.get_num_threads()
    )
    return timer.blocked_autorange(min_run_time=MIN_SECONDS).median * 1e3
