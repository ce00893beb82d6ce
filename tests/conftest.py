import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    """Tests that draw from global generators (torch.randn in a test body) repeat exactly."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
