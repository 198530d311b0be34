import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    """Every test starts from the same seed; one thread per xdist worker keeps the 2-core CI machine uncontended."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
