import pytest
import torch


def pytest_collection_modifyitems(config, items):
    # CUDA tests are marked `cuda` and skipped, with a reason, when no device is present.
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="torch.cuda.is_available() is False")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
